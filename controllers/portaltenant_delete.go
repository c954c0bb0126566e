package controllers

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
)

// reconcileDelete removes a tenant. Both policies withdraw exposure, remove
// the workload and the Vault role and policy at once. Retain keeps the keys
// and the namespace (which holds the database Secret) and only lets go of
// the namespace's owner reference; CryptoShred, once confirmed by
// annotation, destroys both keys and deletes the namespace.
func (r *PortalTenantReconciler) reconcileDelete(ctx context.Context,
	t *portalv1.PortalTenant) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(t, portalv1.TenantFinalizer) {
		return ctrl.Result{}, nil
	}
	shred := t.DeletionPolicyOrDefault() == portalv1.DeletionCryptoShred
	if shred && !t.ConfirmedCryptoShred() {
		// Nothing is destroyed; the annotation's arrival triggers a
		// reconcile.
		return ctrl.Result{}, r.markDeleting(ctx, t, portalv1.ReasonCryptoShredNotConfirmed,
			fmt.Sprintf("deletionPolicy CryptoShred destroys the keys; annotate the tenant "+
				"with %s=%s to confirm, or set deletionPolicy to Retain",
				portalv1.ConfirmCryptoShredAnnotation, t.Name))
	}
	ns := t.Spec.Namespace
	var errs []error
	for _, obj := range []client.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: serviceName, Namespace: ns}},
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: policyAllowIngress,
			Namespace: ns}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: deploymentName, Namespace: ns}},
		&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: pdbName,
			Namespace: ns}},
	} {
		errs = append(errs, remove(ctx, r, t, obj))
	}
	n := VaultNamesFor(t.Name)
	errs = append(errs,
		r.Vault.DeleteKubernetesRole(ctx, t.Spec.Encryption.KubernetesAuthMount, n.Role),
		r.Vault.DeletePolicy(ctx, n.Policy))
	if shred {
		logf.FromContext(ctx).Info("Crypto-shredding tenant keys", "dataKey", n.DataKey,
			"signingKey", n.SigningKey)
		mount := t.Spec.Encryption.TransitMount
		errs = append(errs, r.Vault.DestroyTransitKey(ctx, mount, n.DataKey),
			r.Vault.DestroyTransitKey(ctx, mount, n.SigningKey),
			remove(ctx, r, t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	} else {
		errs = append(errs, r.releaseNamespace(ctx, t))
	}
	if err := errors.Join(errs...); err != nil {
		_ = r.markDeleting(ctx, t, portalv1.ReasonDeleting, err.Error())
		return ctrl.Result{}, fmt.Errorf("removing PortalTenant %s: %w", t.Name, err)
	}
	if r.Recorder != nil {
		r.Recorder.Eventf(t, nil, corev1.EventTypeNormal, "Deleted", "Delete",
			"PortalTenant %s removed with deletionPolicy %s", t.Name,
			t.DeletionPolicyOrDefault())
	}
	patch := client.MergeFrom(t.DeepCopy())
	controllerutil.RemoveFinalizer(t, portalv1.TenantFinalizer)
	if err := r.Patch(ctx, t, patch, client.FieldOwner(FieldOwner)); err != nil {
		return ctrl.Result{}, fmt.Errorf("removing finalizer from PortalTenant %s: %w",
			t.Name, err)
	}
	return ctrl.Result{}, nil
}

// releaseNamespace drops the tenant's owner reference from its namespace so
// the garbage collector keeps it (and the data Secrets in it).
func (r *PortalTenantReconciler) releaseNamespace(ctx context.Context,
	t *portalv1.PortalTenant) error {
	ns := &corev1.Namespace{}
	if err := r.Get(ctx, client.ObjectKey{Name: t.Spec.Namespace}, ns); err != nil {
		return client.IgnoreNotFound(err)
	}
	if metav1.GetControllerOf(ns) == nil {
		return nil
	}
	patch := client.MergeFrom(ns.DeepCopy())
	var refs []metav1.OwnerReference
	for _, ref := range ns.OwnerReferences {
		if ref.UID != t.UID {
			refs = append(refs, ref)
		}
	}
	ns.OwnerReferences = refs
	return wrapWrite("releasing", "Namespace", client.ObjectKeyFromObject(ns),
		r.Patch(ctx, ns, patch, client.FieldOwner(FieldOwner)))
}

// markDeleting records the deletion's progress in Ready and the phase, only
// when they change.
func (r *PortalTenantReconciler) markDeleting(ctx context.Context, t *portalv1.PortalTenant,
	reason, msg string) error {
	old := t.DeepCopy()
	t.Status.Phase = portalv1.PhaseDeleting
	changed := meta.SetStatusCondition(&t.Status.Conditions, metav1.Condition{
		Type: portalv1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason,
		Message: msg, ObservedGeneration: t.Generation})
	if !changed && old.Status.Phase == portalv1.PhaseDeleting {
		return nil
	}
	if err := r.Status().Patch(ctx, t, client.MergeFrom(old),
		client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("writing status of PortalTenant %s: %w", t.Name, err)
	}
	if reason == portalv1.ReasonCryptoShredNotConfirmed && r.Recorder != nil {
		r.Recorder.Eventf(t, nil, corev1.EventTypeWarning, reason, "Delete", "%s", msg)
	}
	return nil
}
