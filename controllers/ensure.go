package controllers

import (
	"context"
	"fmt"
	"maps"
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
)

// tenantLabels are the labels on every object a tenant owns.
func tenantLabels(t *portalv1.PortalTenant, component string) map[string]string {
	return map[string]string{
		portalv1.TenantLabel:    t.Name,
		portalv1.ComponentLabel: component,
		portalv1.ManagedByLabel: portalv1.ManagedByValue,
		portalv1.NameLabel:      "pleura-portal",
		portalv1.InstanceLabel:  t.Name,
	}
}

// ensure makes the object named by desired carry desired's labels, a
// controller reference to t and whatever inSync checks, creating it when
// missing. It writes only when something differs, so a converged tenant
// costs no API writes; merge copies desired's content onto the existing
// object before the update.
func ensure[T client.Object](ctx context.Context, r *PortalTenantReconciler,
	t *portalv1.PortalTenant, desired T, inSync func(got T) bool, merge func(got T)) error {
	kind := reflect.TypeOf(desired).Elem().Name()
	key := client.ObjectKeyFromObject(desired)
	if err := controllerutil.SetControllerReference(t, desired, r.Scheme()); err != nil {
		return fmt.Errorf("owning %s %s: %w", kind, key, err)
	}
	got := reflect.New(reflect.TypeOf(desired).Elem()).Interface().(T)
	err := r.Get(ctx, key, got)
	if apierrors.IsNotFound(err) {
		logf.FromContext(ctx).V(1).Info("Creating", kind, key)
		err = r.Create(ctx, desired, client.FieldOwner(FieldOwner))
		if !apierrors.IsAlreadyExists(err) {
			return wrapWrite("creating", kind, key, err)
		}
		// It exists but the cache, which selects on the tenant label, does
		// not hold it: someone removed the label. Read it directly.
		err = r.APIReader.Get(ctx, key, got)
	}
	if err != nil {
		return fmt.Errorf("reading %s %s: %w", kind, key, err)
	}
	if metaInSync(got, desired) && inSync(got) {
		return nil
	}
	labels := got.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, desired.GetLabels())
	got.SetLabels(labels)
	if err := controllerutil.SetControllerReference(t, got, r.Scheme()); err != nil {
		return fmt.Errorf("owning %s %s: %w", kind, key, err)
	}
	merge(got)
	logf.FromContext(ctx).V(1).Info("Updating", kind, key)
	return wrapWrite("updating", kind, key, r.Update(ctx, got, client.FieldOwner(FieldOwner)))
}

func metaInSync(got, desired client.Object) bool {
	for k, v := range desired.GetLabels() {
		if got.GetLabels()[k] != v {
			return false
		}
	}
	ref := metav1.GetControllerOf(desired)
	have := metav1.GetControllerOf(got)
	return ref != nil && have != nil && have.UID == ref.UID
}

// remove deletes obj if it exists and t controls it; a missing object, or
// one that belongs to someone else, is left alone without error.
func remove(ctx context.Context, r *PortalTenantReconciler, t *portalv1.PortalTenant,
	obj client.Object) error {
	kind := reflect.TypeOf(obj).Elem().Name()
	key := client.ObjectKeyFromObject(obj)
	if err := r.Get(ctx, key, obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !obj.GetDeletionTimestamp().IsZero() || !metav1.IsControlledBy(obj, t) {
		return nil
	}
	logf.FromContext(ctx).V(1).Info("Deleting", kind, key)
	err := client.IgnoreNotFound(r.Delete(ctx, obj, client.PropagationPolicy(
		metav1.DeletePropagationBackground)))
	return wrapWrite("deleting", kind, key, err)
}

func wrapWrite(doing, kind string, key client.ObjectKey, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s %s: %w", doing, kind, key, err)
}
