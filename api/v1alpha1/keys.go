package v1alpha1

// Every label, annotation and finalizer key Pleura reads or writes, built from
// one prefix. Users set only the annotations marked "set by users".
const (
	// KeyPrefix is the domain every Pleura key starts with.
	KeyPrefix = "portal.pleura.dev/"

	// TenantLabel is set on every object the operator creates for a tenant;
	// its value is the PortalTenant's name. The operator's cache selects on
	// it, so an object without it is invisible to the operator.
	TenantLabel = KeyPrefix + "tenant"

	// ComponentLabel names the part of a tenant an object belongs to, e.g.
	// "portal" for the Deployment and its pods.
	ComponentLabel = KeyPrefix + "component"

	// RotateKeyAnnotation, set by users on a PortalTenant, rotates the
	// tenant's data key now whenever its value changes (any new value, for
	// example a timestamp). status.encryption.rotateKeyAcknowledged repeats
	// the value once the rotation happened.
	RotateKeyAnnotation = KeyPrefix + "rotate-key"

	// ConfirmCryptoShredAnnotation, set by users on a PortalTenant, must
	// equal the tenant's name before spec.deletionPolicy CryptoShred
	// destroys the tenant's keys. Without it the tenant is marked
	// CryptoShredNotConfirmed and deletion waits; nothing is destroyed.
	ConfirmCryptoShredAnnotation = KeyPrefix + "confirm-crypto-shred"

	// TenantFinalizer holds a PortalTenant until its workload, Vault role
	// and policy (and, for CryptoShred, its keys) are removed.
	TenantFinalizer = KeyPrefix + "tenant-cleanup"

	// ManagedByLabel is the app.kubernetes.io recommended label the
	// operator sets, with ManagedByValue, on everything it creates.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of ManagedByLabel.
	ManagedByValue = "pleura"
	// NameLabel is the app.kubernetes.io recommended name label.
	NameLabel = "app.kubernetes.io/name"
	// InstanceLabel is the app.kubernetes.io recommended instance label.
	InstanceLabel = "app.kubernetes.io/instance"
)
