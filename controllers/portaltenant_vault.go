package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
	"github.com/pleura-dev/pleura/internal/vault"
)

// VaultClient is what the reconciler needs from Vault. *vault.Client
// implements it against a real server.
type VaultClient interface {
	// EnsureTransitKey creates the key if missing and makes its
	// configuration match opts, returning the key as Vault reports it.
	EnsureTransitKey(ctx context.Context, mount, name string,
		opts vault.KeyOptions) (*vault.KeyInfo, error)
	// RotateTransitKey adds a key version now.
	RotateTransitKey(ctx context.Context, mount, name string) error
	// DestroyTransitKey deletes the key and every version of it.
	DestroyTransitKey(ctx context.Context, mount, name string) error
	// EnsurePolicy writes the ACL policy if its rules differ.
	EnsurePolicy(ctx context.Context, name, rules string) error
	// DeletePolicy deletes the ACL policy.
	DeletePolicy(ctx context.Context, name string) error
	// EnsureKubernetesRole writes the Kubernetes auth role if it differs.
	EnsureKubernetesRole(ctx context.Context, mount, name string,
		role vault.KubernetesRole) error
	// DeleteKubernetesRole deletes the Kubernetes auth role.
	DeleteKubernetesRole(ctx context.Context, mount, name string) error
}

// Key and token settings.
const (
	dataKeyType    = "aes256-gcm96"
	signingKeyType = "ed25519"
	// VaultAudience is the audience of the projected service account token
	// the portal logs in to Vault with; the role accepts no other.
	VaultAudience = "vault"
	// portalTokenTTL bounds the Vault tokens the portal gets at login.
	portalTokenTTL = time.Hour
)

// VaultNames are the names of a tenant's objects in Vault.
type VaultNames struct {
	// DataKey is the aes256-gcm96 transit key.
	DataKey string
	// SigningKey is the ed25519 transit key for audit checkpoints.
	SigningKey string
	// Policy is the ACL policy granting use of both keys.
	Policy string
	// Role is the Kubernetes auth role bound to the portal's account.
	Role string
}

// VaultNamesFor derives a tenant's Vault names from its name alone, so a
// restarted operator finds what it created before.
func VaultNamesFor(tenant string) VaultNames {
	return VaultNames{
		DataKey:    "pleura-" + tenant + "-data",
		SigningKey: "pleura-" + tenant + "-signing",
		Policy:     "pleura-tenant-" + tenant,
		Role:       "pleura-" + tenant,
	}
}

// TenantPolicy renders the tenant's ACL policy: encrypt, decrypt, datakey,
// rewrap and hmac on the data key; sign and verify on the signing key;
// nothing else. The transit paths all take "update".
func TenantPolicy(mount string, n VaultNames) string {
	var b strings.Builder
	path := func(p string) {
		fmt.Fprintf(&b, "path %q {\n  capabilities = [\"update\"]\n}\n\n", mount+"/"+p)
	}
	for _, op := range []string{"encrypt", "decrypt", "rewrap", "hmac"} {
		path(op + "/" + n.DataKey)
	}
	path("hmac/" + n.DataKey + "/*")
	path("datakey/plaintext/" + n.DataKey)
	path("datakey/wrapped/" + n.DataKey)
	for _, op := range []string{"sign", "verify"} {
		path(op + "/" + n.SigningKey)
		path(op + "/" + n.SigningKey + "/*")
	}
	return strings.TrimSpace(b.String()) + "\n"
}

// reconcileVault makes the tenant's keys, policy and role exist as
// declared, rotates the data key when the rotate-key annotation changed,
// and reports the key's version and dates.
func (r *PortalTenantReconciler) reconcileVault(ctx context.Context, t *portalv1.PortalTenant,
	o *observation) {
	const typ = portalv1.ConditionEncryptionKeyReady
	if !o.isTrue(portalv1.ConditionNamespaceReady) {
		o.set(typ, false, portalv1.ReasonReconciling, "waiting for the namespace")
		return
	}
	n := VaultNamesFor(t.Name)
	mount := t.Spec.Encryption.TransitMount
	period := t.Spec.Encryption.RotationPeriod.Duration
	err := r.ensureVaultObjects(ctx, t, n)
	var key *vault.KeyInfo
	if err == nil {
		key, err = r.rotateIfAsked(ctx, t, n, o)
	}
	if err == nil {
		key, err = r.Vault.EnsureTransitKey(ctx, mount, n.DataKey,
			vault.KeyOptions{Type: dataKeyType, AutoRotatePeriod: period})
	}
	if err != nil {
		o.set(typ, false, portalv1.ReasonVaultUnavailable, "%v; retrying every %s",
			err, VaultRetryInterval)
		o.retryAfter(VaultRetryInterval)
		if !errors.Is(err, vault.ErrUnavailable) {
			logf.FromContext(ctx).Error(err, "Reconciling Vault objects")
		}
		return
	}
	if o.encryption == nil {
		o.encryption = &portalv1.EncryptionStatus{}
	}
	e := o.encryption
	e.DataKey, e.SigningKey = n.DataKey, n.SigningKey
	e.KeyVersion, e.MinDecryptionVersion = key.LatestVersion, key.MinDecryptionVersion
	if !key.LatestCreated.IsZero() {
		last := metav1.NewTime(key.LatestCreated)
		next := metav1.NewTime(key.LatestCreated.Add(period))
		e.LastRotation, e.NextRotationDue = &last, &next
	}
	o.set(typ, true, portalv1.ReasonProvisioned, "transit keys %s (v%d) and %s, policy %s "+
		"and role %s are in place", n.DataKey, key.LatestVersion, n.SigningKey, n.Policy, n.Role)
}

func (r *PortalTenantReconciler) ensureVaultObjects(ctx context.Context,
	t *portalv1.PortalTenant, n VaultNames) error {
	mount := t.Spec.Encryption.TransitMount
	_, err := r.Vault.EnsureTransitKey(ctx, mount, n.SigningKey,
		vault.KeyOptions{Type: signingKeyType})
	if err != nil {
		return err
	}
	if err := r.Vault.EnsurePolicy(ctx, n.Policy, TenantPolicy(mount, n)); err != nil {
		return err
	}
	return r.Vault.EnsureKubernetesRole(ctx, t.Spec.Encryption.KubernetesAuthMount, n.Role,
		vault.KubernetesRole{
			ServiceAccounts: []string{serviceAccountName},
			Namespaces:      []string{t.Spec.Namespace},
			Policies:        []string{n.Policy},
			Audience:        VaultAudience,
			TokenTTL:        portalTokenTTL,
		})
}

// rotateIfAsked rotates the data key once per new value of the rotate-key
// annotation and records the value as acknowledged.
func (r *PortalTenantReconciler) rotateIfAsked(ctx context.Context, t *portalv1.PortalTenant,
	n VaultNames, o *observation) (*vault.KeyInfo, error) {
	asked := t.Annotations[portalv1.RotateKeyAnnotation]
	if asked == "" || (o.encryption != nil && o.encryption.RotateKeyAcknowledged == asked) {
		return nil, nil
	}
	mount := t.Spec.Encryption.TransitMount
	// Make sure the key exists before rotating it.
	_, err := r.Vault.EnsureTransitKey(ctx, mount, n.DataKey, vault.KeyOptions{
		Type: dataKeyType, AutoRotatePeriod: t.Spec.Encryption.RotationPeriod.Duration})
	if err != nil {
		return nil, err
	}
	logf.FromContext(ctx).Info("Rotating data key on request", "key", n.DataKey)
	if err := r.Vault.RotateTransitKey(ctx, mount, n.DataKey); err != nil {
		return nil, err
	}
	if o.encryption == nil {
		o.encryption = &portalv1.EncryptionStatus{}
	}
	o.encryption.RotateKeyAcknowledged = asked
	if r.Recorder != nil {
		r.Recorder.Eventf(t, nil, "Normal", portalv1.ReasonKeyRotated, "RotateKey",
			"PortalTenant %s: data key %s rotated on request %q", t.Name, n.DataKey, asked)
	}
	return nil, nil
}
