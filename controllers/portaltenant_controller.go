package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
)

// Named requeue intervals. Watches drive everything in the cluster; these
// cover what cannot be watched.
const (
	// VaultResyncPeriod bounds how long a Vault object deleted or changed out
	// of band stays missing, and how stale key version and rotation dates in
	// status may be.
	VaultResyncPeriod = 2 * time.Minute
	// VaultRetryInterval is how soon a tenant is retried after Vault could
	// not be reached.
	VaultRetryInterval = 10 * time.Second
	// certificateRecheck is how soon TLS is looked at again while
	// cert-manager issues; Certificate updates also trigger reconciles.
	certificateRecheck = 30 * time.Second
)

// FieldOwner is the field manager name of the operator's writes.
const FieldOwner = "pleura-operator"

// Index keys for the manager's field indexer.
const (
	indexAccessPolicy = "spec.accessPolicyRef.name"
	indexIssuer       = "spec.tls.issuerRef"
	indexHostname     = "spec.portal.hostname"
)

// Settings are the operator-wide defaults a tenant may leave unset.
type Settings struct {
	// DefaultIssuer is the ClusterIssuer used when spec.tls.issuerRef is
	// empty.
	DefaultIssuer string
	// VaultAddressForPortal is the Vault URL written into tenant ConfigMaps,
	// as the portal pods reach it.
	VaultAddressForPortal string
	// VaultResyncPeriod overrides VaultResyncPeriod when positive (tests
	// shorten it).
	VaultResyncPeriod time.Duration
	// Workers is how many tenants reconcile at once; 0 means DefaultWorkers.
	Workers int
}

// DefaultWorkers is how many tenants reconcile at once by default. Most of
// a reconcile waits on Vault and the API server, not on CPU.
const DefaultWorkers = 4

func (s Settings) workers() int {
	if s.Workers > 0 {
		return s.Workers
	}
	return DefaultWorkers
}

func (s Settings) resyncPeriod() time.Duration {
	if s.VaultResyncPeriod > 0 {
		return s.VaultResyncPeriod
	}
	return VaultResyncPeriod
}

// PortalTenantReconciler reconciles PortalTenant objects.
type PortalTenantReconciler struct {
	client.Client
	// APIReader reads objects the cache does not hold, e.g. a namespace
	// someone else created.
	APIReader client.Reader
	// Vault manages transit keys, policies and roles.
	Vault VaultClient
	// Recorder emits events.k8s.io events on condition transitions.
	Recorder recorder.EventRecorder
	// Settings are operator-wide defaults.
	Settings Settings
	// Now returns the current time; tests may fix it.
	Now func() time.Time
}

// +kubebuilder:rbac:groups=portal.pleura.dev,resources=portaltenants,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=portal.pleura.dev,resources=portaltenants/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=portal.pleura.dev,resources=portaltenants/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=namespaces;serviceaccounts;resourcequotas;limitranges;configmaps;services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificates,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=cert-manager.io,resources=issuers;clusterissuers,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile converges one PortalTenant. It reads as the list of steps; each
// step records its safeguard's condition in the observation, and status is
// written once, at the end, only if it changed.
func (r *PortalTenantReconciler) Reconcile(ctx context.Context, req ctrl.Request) (
	ctrl.Result, error) {
	t := &portalv1.PortalTenant{}
	if err := r.Get(ctx, req.NamespacedName, t); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	ctx = logf.IntoContext(ctx, logf.FromContext(ctx).WithValues("PortalTenant", t.Name))

	if !t.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, t)
	}
	if !controllerutil.ContainsFinalizer(t, portalv1.TenantFinalizer) {
		return ctrl.Result{}, r.addFinalizer(ctx, t)
	}

	obs := newObservation(t)
	// Isolation comes first: nothing else is created outside it.
	r.reconcileNamespace(ctx, t, obs)
	r.reconcileNetwork(ctx, t, obs)
	// Keys, certificate and policy can proceed in any order.
	r.reconcileVault(ctx, t, obs)
	r.reconcileTLS(ctx, t, obs)
	r.reconcileConfig(ctx, t, obs)
	// The workload runs unexposed; exposure follows the safeguards.
	r.reconcileWorkload(ctx, t, obs)
	r.reconcileExposure(ctx, t, obs)

	return r.writeStatus(ctx, t, obs)
}

func (r *PortalTenantReconciler) addFinalizer(ctx context.Context, t *portalv1.PortalTenant) error {
	patch := client.MergeFromWithOptions(t.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.AddFinalizer(t, portalv1.TenantFinalizer)
	if err := r.Patch(ctx, t, patch, client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("adding finalizer to PortalTenant %s: %w", t.Name, err)
	}
	return nil
}

// SetupWithManager registers the reconciler, its indexes and its watches.
func (r *PortalTenantReconciler) SetupWithManager(mgr ctrl.Manager) error {
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	err := idx.IndexField(ctx, &portalv1.PortalTenant{}, indexAccessPolicy,
		func(o client.Object) []string {
			return []string{o.(*portalv1.PortalTenant).Spec.AccessPolicyRef.Name}
		})
	if err != nil {
		return fmt.Errorf("indexing tenants by access policy: %w", err)
	}
	err = idx.IndexField(ctx, &portalv1.PortalTenant{}, indexIssuer,
		func(o client.Object) []string {
			return []string{r.issuerOf(o.(*portalv1.PortalTenant)).Name}
		})
	if err != nil {
		return fmt.Errorf("indexing tenants by issuer: %w", err)
	}
	err = idx.IndexField(ctx, &portalv1.PortalTenant{}, indexHostname,
		func(o client.Object) []string {
			return []string{strings.ToLower(o.(*portalv1.PortalTenant).Spec.Portal.Hostname)}
		})
	if err != nil {
		return fmt.Errorf("indexing tenants by hostname: %w", err)
	}
	if r.Now == nil {
		r.Now = time.Now
	}

	// Owned objects carry a controller reference to their tenant; an edit or
	// deletion of any of them triggers a reconcile that restores it.
	return ctrl.NewControllerManagedBy(mgr).
		For(&portalv1.PortalTenant{}).
		Owns(&corev1.Namespace{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&corev1.ResourceQuota{}).
		Owns(&corev1.LimitRange{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.Service{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Owns(&appsv1.Deployment{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&cmapi.Certificate{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(byTenantLabel)).
		// A tenant that gives up a hostname hands it to the next claimant.
		Watches(&portalv1.PortalTenant{}, handler.EnqueueRequestsFromMapFunc(r.sameHostname)).
		Watches(&portalv1.AccessPolicy{}, r.enqueueByIndex(indexAccessPolicy)).
		Watches(&cmapi.ClusterIssuer{}, r.enqueueByIndex(indexIssuer)).
		Watches(&cmapi.Issuer{}, r.enqueueByIndex(indexIssuer)).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.allTenants),
			builder.WithPredicates(predicate.Funcs{
				// Only a node appearing or going matters to availability.
				UpdateFunc: func(e event.UpdateEvent) bool { return false },
			})).
		Named("portaltenant").
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Settings.workers()}).
		Complete(r)
}

// byTenantLabel maps an object labelled with its tenant to that tenant.
func byTenantLabel(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[portalv1.TenantLabel]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
}

// enqueueByIndex maps an object to every tenant whose index key is its name.
func (r *PortalTenantReconciler) enqueueByIndex(index string) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(
		func(ctx context.Context, o client.Object) []reconcile.Request {
			return r.tenantsMatching(ctx, index, o.GetName())
		})
}

// sameHostname maps a tenant to the other tenants claiming its hostname. The
// tenant itself is left out: its own watch enqueues it, and a second request
// would reconcile it again from a cache that may not hold its last status.
func (r *PortalTenantReconciler) sameHostname(ctx context.Context,
	o client.Object) []reconcile.Request {
	host := strings.ToLower(o.(*portalv1.PortalTenant).Spec.Portal.Hostname)
	reqs := r.tenantsMatching(ctx, indexHostname, host)
	return slices.DeleteFunc(reqs, func(req reconcile.Request) bool {
		return req.Name == o.GetName()
	})
}

// tenantsMatching returns a request for every tenant whose index key is key.
func (r *PortalTenantReconciler) tenantsMatching(ctx context.Context, index,
	key string) []reconcile.Request {
	list := &portalv1.PortalTenantList{}
	if err := r.List(ctx, list, client.MatchingFields{index: key}); err != nil {
		logf.FromContext(ctx).Error(err, "Listing tenants to enqueue", "index", index)
		return nil
	}
	return requests(list)
}

func (r *PortalTenantReconciler) allTenants(ctx context.Context,
	_ client.Object) []reconcile.Request {
	list := &portalv1.PortalTenantList{}
	if err := r.List(ctx, list); err != nil {
		logf.FromContext(ctx).Error(err, "Listing tenants to enqueue")
		return nil
	}
	return requests(list)
}

func requests(list *portalv1.PortalTenantList) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, t := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: t.Name}})
	}
	return out
}
