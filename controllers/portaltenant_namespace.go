package controllers

import (
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
)

// Names of the objects in a tenant's namespace.
const (
	serviceAccountName = "portal"
	quotaName          = "portal-quota"
	limitRangeName     = "portal-limits"
)

// restrictedPodSecurity are the Pod Security Admission labels that enforce,
// audit and warn at the restricted level.
var restrictedPodSecurity = map[string]string{
	"pod-security.kubernetes.io/enforce":         "restricted",
	"pod-security.kubernetes.io/enforce-version": "latest",
	"pod-security.kubernetes.io/audit":           "restricted",
	"pod-security.kubernetes.io/audit-version":   "latest",
	"pod-security.kubernetes.io/warn":            "restricted",
	"pod-security.kubernetes.io/warn-version":    "latest",
}

// reconcileNamespace creates the tenant's namespace with the restricted Pod
// Security labels, its service account, quota and limits.
func (r *PortalTenantReconciler) reconcileNamespace(ctx context.Context,
	t *portalv1.PortalTenant, o *observation) {
	const typ = portalv1.ConditionNamespaceReady
	if err := r.checkNamespaceOwner(ctx, t); err != nil {
		o.set(typ, false, portalv1.ReasonNamespaceConflict, "%v", err)
		return
	}
	ns := namespaceFor(t)
	err := ensure(ctx, r, t, ns, func(*corev1.Namespace) bool { return true },
		func(*corev1.Namespace) {})
	if err != nil {
		o.fail(typ, portalv1.ReasonReconciling, err)
		return
	}
	if err := r.Get(ctx, client.ObjectKeyFromObject(ns), ns); err == nil && ns.Status.Phase ==
		corev1.NamespaceTerminating {
		o.set(typ, false, portalv1.ReasonNamespaceTerminating,
			"namespace %s is being deleted; it is recreated once it is gone", ns.Name)
		o.retryAfter(certificateRecheck)
		return
	}
	for _, step := range []func(context.Context, *portalv1.PortalTenant) error{
		r.ensureServiceAccount, r.ensureQuota, r.ensureLimitRange,
	} {
		if err := step(ctx, t); err != nil {
			o.fail(typ, portalv1.ReasonReconciling, err)
			return
		}
	}
	o.set(typ, true, portalv1.ReasonProvisioned, "namespace %s is restricted, with a "+
		"service account, quota and limits", t.Spec.Namespace)
}

// checkNamespaceOwner refuses a namespace that exists and belongs to
// something other than this tenant.
func (r *PortalTenantReconciler) checkNamespaceOwner(ctx context.Context,
	t *portalv1.PortalTenant) error {
	ns := &corev1.Namespace{}
	key := client.ObjectKey{Name: t.Spec.Namespace}
	err := r.Get(ctx, key, ns)
	if apierrors.IsNotFound(err) {
		// The cache holds only labelled namespaces; ask the API server
		// whether an unlabelled one exists before creating it.
		err = r.APIReader.Get(ctx, key, ns)
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading namespace %s: %w", t.Spec.Namespace, err)
	}
	if owner := ns.Labels[portalv1.TenantLabel]; owner != t.Name {
		if owner == "" {
			owner = "something outside Pleura"
		} else {
			owner = "PortalTenant " + owner
		}
		return fmt.Errorf("namespace %s already exists and belongs to %s; set "+
			"spec.namespace to a namespace that does not exist yet", t.Spec.Namespace, owner)
	}
	return nil
}

func namespaceFor(t *portalv1.PortalTenant) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: t.Spec.Namespace,
		Labels: tenantLabels(t, "namespace")}}
	maps.Copy(ns.Labels, restrictedPodSecurity)
	return ns
}

func serviceAccountFor(t *portalv1.PortalTenant) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: serviceAccountName, Namespace: t.Spec.Namespace,
			Labels: tenantLabels(t, "portal")},
		// The portal gets a short-lived projected token for Vault instead.
		AutomountServiceAccountToken: ptr.To(false),
	}
}

func (r *PortalTenantReconciler) ensureServiceAccount(ctx context.Context,
	t *portalv1.PortalTenant) error {
	sa := serviceAccountFor(t)
	return ensure(ctx, r, t, sa, func(got *corev1.ServiceAccount) bool {
		return ptr.Deref(got.AutomountServiceAccountToken, true) == false
	}, func(got *corev1.ServiceAccount) {
		got.AutomountServiceAccountToken = ptr.To(false)
	})
}

// quotaFor sizes the tenant's quota for its replicas plus one surge pod.
func quotaFor(t *portalv1.PortalTenant) (corev1.ResourceList, error) {
	req, err := t.Spec.Portal.Resources.Requests.ResourceList()
	if err != nil {
		return nil, fmt.Errorf("spec.portal.resources.requests: %w", err)
	}
	lim, err := t.Spec.Portal.Resources.Limits.ResourceList()
	if err != nil {
		return nil, fmt.Errorf("spec.portal.resources.limits: %w", err)
	}
	pods := int64(replicas(t) + 1)
	scale := func(q resource.Quantity) resource.Quantity {
		out := q.DeepCopy()
		out.Mul(pods)
		return out
	}
	return corev1.ResourceList{
		corev1.ResourcePods:                   *resource.NewQuantity(pods, resource.DecimalSI),
		corev1.ResourceRequestsCPU:            scale(req[corev1.ResourceCPU]),
		corev1.ResourceRequestsMemory:         scale(req[corev1.ResourceMemory]),
		corev1.ResourceLimitsCPU:              scale(lim[corev1.ResourceCPU]),
		corev1.ResourceLimitsMemory:           scale(lim[corev1.ResourceMemory]),
		corev1.ResourceServices:               resource.MustParse("2"),
		corev1.ResourceServicesLoadBalancers:  resource.MustParse("0"),
		corev1.ResourceServicesNodePorts:      resource.MustParse("0"),
		corev1.ResourcePersistentVolumeClaims: resource.MustParse("4"),
		corev1.ResourceConfigMaps:             resource.MustParse("16"),
		corev1.ResourceSecrets:                resource.MustParse("16"),
	}, nil
}

func (r *PortalTenantReconciler) ensureQuota(ctx context.Context, t *portalv1.PortalTenant) error {
	hard, err := quotaFor(t)
	if err != nil {
		return err
	}
	q := quotaObject(t, hard)
	return ensure(ctx, r, t, q, func(got *corev1.ResourceQuota) bool {
		return equality.Semantic.DeepEqual(got.Spec.Hard, q.Spec.Hard)
	}, func(got *corev1.ResourceQuota) { got.Spec = q.Spec })
}

func quotaObject(t *portalv1.PortalTenant, hard corev1.ResourceList) *corev1.ResourceQuota {
	return &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: quotaName, Namespace: t.Spec.Namespace,
			Labels: tenantLabels(t, "isolation")},
		Spec: corev1.ResourceQuotaSpec{Hard: hard},
	}
}

func limitRangeFor(t *portalv1.PortalTenant) (*corev1.LimitRange, error) {
	req, err := t.Spec.Portal.Resources.Requests.ResourceList()
	if err != nil {
		return nil, fmt.Errorf("spec.portal.resources.requests: %w", err)
	}
	lim, err := t.Spec.Portal.Resources.Limits.ResourceList()
	if err != nil {
		return nil, fmt.Errorf("spec.portal.resources.limits: %w", err)
	}
	return &corev1.LimitRange{
		ObjectMeta: metav1.ObjectMeta{Name: limitRangeName, Namespace: t.Spec.Namespace,
			Labels: tenantLabels(t, "isolation")},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type:           corev1.LimitTypeContainer,
			Default:        lim,
			DefaultRequest: req,
			Max:            lim,
		}}},
	}, nil
}

func (r *PortalTenantReconciler) ensureLimitRange(ctx context.Context,
	t *portalv1.PortalTenant) error {
	lr, err := limitRangeFor(t)
	if err != nil {
		return err
	}
	return ensure(ctx, r, t, lr, func(got *corev1.LimitRange) bool {
		return equality.Semantic.DeepDerivative(lr.Spec, got.Spec)
	}, func(got *corev1.LimitRange) { got.Spec = lr.Spec })
}

func replicas(t *portalv1.PortalTenant) int32 {
	if t.Spec.Portal.Replicas < 1 {
		return 1
	}
	return t.Spec.Portal.Replicas
}
