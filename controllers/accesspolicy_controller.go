package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
)

// AccessPolicyReconciler keeps each AccessPolicy's status: whether it
// compiles, and which tenants enforce it at which generation. Tenants load
// the policy themselves (PortalTenantReconciler watches AccessPolicies).
type AccessPolicyReconciler struct {
	client.Client
}

// +kubebuilder:rbac:groups=portal.pleura.dev,resources=accesspolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=portal.pleura.dev,resources=accesspolicies/status,verbs=get;update;patch

// Reconcile recomputes one AccessPolicy's status and writes it if changed.
func (r *AccessPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (
	ctrl.Result, error) {
	ap := &portalv1.AccessPolicy{}
	if err := r.Get(ctx, req.NamespacedName, ap); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	tenants := &portalv1.PortalTenantList{}
	if err := r.List(ctx, tenants, client.MatchingFields{indexAccessPolicy: ap.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing tenants of AccessPolicy %s: %w", ap.Name, err)
	}
	next := ap.Status.DeepCopy()
	next.ObservedGeneration = ap.Generation
	next.EnforcedBy = enforcements(ap.Name, tenants.Items)
	valid := metav1.Condition{Type: portalv1.ConditionValid, Status: metav1.ConditionTrue,
		Reason: portalv1.ReasonCompiled, ObservedGeneration: ap.Generation,
		Message: "the policy compiles into the tenant configuration"}
	if _, err := CompilePolicy(ap); err != nil {
		valid.Status, valid.Reason, valid.Message = metav1.ConditionFalse,
			portalv1.ReasonInvalid, err.Error()
	}
	meta.SetStatusCondition(&next.Conditions, valid)
	if equality.Semantic.DeepEqual(&ap.Status, next) {
		return ctrl.Result{}, nil
	}
	patch := client.MergeFrom(ap.DeepCopy())
	ap.Status = *next
	if err := r.Status().Patch(ctx, ap, patch, client.FieldOwner(FieldOwner)); err != nil {
		return ctrl.Result{}, fmt.Errorf("writing status of AccessPolicy %s: %w", ap.Name, err)
	}
	return ctrl.Result{}, nil
}

// enforcements lists the tenants referencing policy, sorted by name, with the
// generation each reports loaded (0 when not loaded yet).
func enforcements(policy string, tenants []portalv1.PortalTenant) []portalv1.PolicyEnforcement {
	var out []portalv1.PolicyEnforcement
	for _, t := range tenants {
		if t.Spec.AccessPolicyRef.Name != policy || !t.DeletionTimestamp.IsZero() {
			continue
		}
		e := portalv1.PolicyEnforcement{Tenant: t.Name}
		if l := t.Status.AccessPolicy; l != nil && l.Name == policy {
			e.LoadedGeneration = l.Generation
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b portalv1.PolicyEnforcement) int {
		return strings.Compare(a.Tenant, b.Tenant)
	})
	return out
}

// SetupWithManager registers the reconciler; a tenant's change re-reads the
// policy it references now and the one it referenced before.
func (r *AccessPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&portalv1.AccessPolicy{}).
		Watches(&portalv1.PortalTenant{}, handler.Funcs{
			CreateFunc: func(_ context.Context, e event.CreateEvent,
				q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				q.Add(policyRequest(e.Object))
			},
			UpdateFunc: func(_ context.Context, e event.UpdateEvent,
				q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				q.Add(policyRequest(e.ObjectOld))
				q.Add(policyRequest(e.ObjectNew))
			},
			DeleteFunc: func(_ context.Context, e event.DeleteEvent,
				q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				q.Add(policyRequest(e.Object))
			},
		}).
		Named("accesspolicy").
		Complete(r)
}

func policyRequest(o client.Object) reconcile.Request {
	t, _ := o.(*portalv1.PortalTenant)
	if t == nil {
		return reconcile.Request{}
	}
	return reconcile.Request{NamespacedName: types.NamespacedName{
		Name: t.Spec.AccessPolicyRef.Name}}
}
