package controllers

import (
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
	"github.com/pleura-dev/pleura/internal/tenantconfig"
)

// configMapName is the tenant ConfigMap the portal mounts.
const configMapName = "portal-config"

// reconcileConfig compiles the tenant's AccessPolicy and settings into the
// ConfigMap the portal reads. The pod template does not reference the
// content, so a policy change reaches running pods through the mounted file
// without a restart.
func (r *PortalTenantReconciler) reconcileConfig(ctx context.Context,
	t *portalv1.PortalTenant, o *observation) {
	const typ = portalv1.ConditionAccessPolicyLoaded
	if !o.isTrue(portalv1.ConditionNamespaceReady) {
		o.set(typ, false, portalv1.ReasonReconciling, "waiting for the namespace")
		return
	}
	ref := t.Spec.AccessPolicyRef.Name
	ap := &portalv1.AccessPolicy{}
	if err := r.Get(ctx, client.ObjectKey{Name: ref}, ap); err != nil {
		if apierrors.IsNotFound(err) {
			o.set(typ, false, portalv1.ReasonAccessPolicyNotFound, "AccessPolicy %q does "+
				"not exist; create it or fix spec.accessPolicyRef.name", ref)
			return
		}
		o.fail(typ, portalv1.ReasonReconciling, fmt.Errorf("reading AccessPolicy %s: %w",
			ref, err))
		return
	}
	policy, err := CompilePolicy(ap)
	if err != nil {
		o.set(typ, false, portalv1.ReasonAccessPolicyInvalid, "%v", err)
		return
	}
	data, err := r.tenantConfig(t, policy).Marshal()
	if err != nil {
		o.fail(typ, portalv1.ReasonReconciling, fmt.Errorf("rendering tenant config: %w", err))
		return
	}
	cm := configMapFor(t, data)
	err = ensure(ctx, r, t, cm, func(got *corev1.ConfigMap) bool {
		return maps.Equal(got.Data, cm.Data) && len(got.BinaryData) == 0
	}, func(got *corev1.ConfigMap) { got.Data, got.BinaryData = cm.Data, nil })
	if err != nil {
		o.fail(typ, portalv1.ReasonReconciling, err)
		return
	}
	o.policy = &portalv1.LoadedPolicy{Name: ap.Name, Generation: ap.Generation}
	o.set(typ, true, portalv1.ReasonAccessPolicyLoaded, "AccessPolicy %s generation %d "+
		"is in ConfigMap %s/%s", ap.Name, ap.Generation, t.Spec.Namespace, configMapName)
}

func configMapFor(t *portalv1.PortalTenant, data []byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: configMapName, Namespace: t.Spec.Namespace,
			Labels: tenantLabels(t, "config")},
		Data: map[string]string{tenantconfig.ConfigMapKey: string(data)},
	}
}

// tenantConfig renders the document the portal reads.
func (r *PortalTenantReconciler) tenantConfig(t *portalv1.PortalTenant,
	p tenantconfig.Policy) *tenantconfig.Config {
	n := VaultNamesFor(t.Name)
	return &tenantconfig.Config{
		SchemaVersion: tenantconfig.SchemaVersion,
		Tenant: tenantconfig.Tenant{Name: t.Name, DisplayName: t.Spec.DisplayName,
			Namespace: t.Spec.Namespace, Hostname: t.Spec.Portal.Hostname},
		Vault: tenantconfig.Vault{
			Address:      r.Settings.VaultAddressForPortal,
			AuthMount:    t.Spec.Encryption.KubernetesAuthMount,
			Role:         n.Role,
			TransitMount: t.Spec.Encryption.TransitMount,
			DataKey:      n.DataKey,
			SigningKey:   n.SigningKey,
		},
		Policy: p,
		Settings: tenantconfig.Settings{
			MinTLSVersion:       t.Spec.TLS.MinVersion,
			RewrapAfterRotation: ptr.Deref(t.Spec.Encryption.RewrapAfterRotation, true),
			TLSDir:              tenantconfig.DefaultTLSDir,
			VaultTokenPath:      tenantconfig.DefaultVaultTokenPath,
		},
	}
}
