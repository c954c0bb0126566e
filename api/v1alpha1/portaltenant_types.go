package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DeletionPolicy says what happens to a tenant's keys when it is deleted.
// +kubebuilder:validation:Enum=Retain;CryptoShred
type DeletionPolicy string

const (
	// DeletionRetain removes the workload, Vault role and policy and keeps
	// the keys, so data encrypted under them stays recoverable.
	DeletionRetain DeletionPolicy = "Retain"
	// DeletionCryptoShred also destroys the keys, so data encrypted under
	// them can never be decrypted again. It needs
	// ConfirmCryptoShredAnnotation.
	DeletionCryptoShred DeletionPolicy = "CryptoShred"
)

// PortalTenantSpec declares one clinic's portal.
type PortalTenantSpec struct {
	// displayName is the clinic's name as patients see it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	DisplayName string `json:"displayName"`

	// namespace is the namespace the tenant owns; the operator creates it
	// and nothing else may live there. Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="namespace is immutable: create a new PortalTenant to move a clinic"
	Namespace string `json:"namespace"`

	// portal describes the workload.
	// +required
	Portal PortalSpec `json:"portal"`

	// accessPolicyRef names the cluster-scoped AccessPolicy the tenant
	// enforces.
	// +required
	AccessPolicyRef PolicyReference `json:"accessPolicyRef"`

	// database names the Secret holding the tenant's PostgreSQL connection.
	// +optional
	Database *DatabaseSpec `json:"database,omitempty"`

	// encryption configures the tenant's keys in Vault.
	// +optional
	// +kubebuilder:default={}
	Encryption EncryptionSpec `json:"encryption,omitzero"`

	// tls configures the portal's certificate.
	// +optional
	// +kubebuilder:default={}
	TLS TLSSpec `json:"tls,omitzero"`

	// network declares who may reach the portal and what it may reach.
	// +optional
	Network NetworkSpec `json:"network,omitzero"`

	// deletionPolicy is Retain (default: keys are kept) or CryptoShred
	// (keys are destroyed; needs the confirm-crypto-shred annotation).
	// +optional
	// +kubebuilder:default=Retain
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// PortalSpec describes the portal workload.
type PortalSpec struct {
	// image is the portal's container image reference.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image"`

	// replicas is how many portal pods run; 2 or more survive a
	// disruption.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=20
	Replicas int32 `json:"replicas,omitempty"`

	// hostname is the portal's public DNS name, put in its certificate.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Hostname string `json:"hostname"`

	// resources are each portal container's requests and limits; the
	// tenant's quota is sized from them.
	// +optional
	// +kubebuilder:default={requests: {cpu: "100m", memory: "128Mi"}, limits: {cpu: "1", memory: "512Mi"}}
	Resources PortalResources `json:"resources,omitzero"`
}

// PortalResources are the portal container's requests and limits.
// +kubebuilder:validation:XValidation:rule="!isQuantity(self.requests.cpu) || !isQuantity(self.limits.cpu) || quantity(self.requests.cpu).compareTo(quantity(self.limits.cpu)) <= 0",message="resources.requests.cpu must not exceed resources.limits.cpu"
// +kubebuilder:validation:XValidation:rule="!isQuantity(self.requests.memory) || !isQuantity(self.limits.memory) || quantity(self.requests.memory).compareTo(quantity(self.limits.memory)) <= 0",message="resources.requests.memory must not exceed resources.limits.memory"
type PortalResources struct {
	// requests are the guaranteed CPU and memory.
	// +required
	Requests ComputeResources `json:"requests"`
	// limits are the most CPU and memory a container may use.
	// +required
	Limits ComputeResources `json:"limits"`
}

// ComputeResources is an amount of CPU and memory.
type ComputeResources struct {
	// cpu is a CPU quantity, e.g. "250m".
	// +required
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",message="cpu must be a positive quantity like 250m or 1"
	CPU string `json:"cpu"`
	// memory is a memory quantity, e.g. "256Mi".
	// +required
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",message="memory must be a positive quantity like 256Mi"
	Memory string `json:"memory"`
}

// PolicyReference names a cluster-scoped AccessPolicy.
type PolicyReference struct {
	// name is the AccessPolicy's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// DatabaseSpec locates the tenant's PostgreSQL connection.
type DatabaseSpec struct {
	// secretName is a Secret in the tenant namespace whose key holds a
	// PostgreSQL connection string.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	SecretName string `json:"secretName"`
	// key is the Secret key holding the connection string.
	// +optional
	// +kubebuilder:default=dsn
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
}

// EncryptionSpec configures the tenant's Vault transit keys.
type EncryptionSpec struct {
	// transitMount is the path of Vault's transit engine.
	// +optional
	// +kubebuilder:default=transit
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_-]+(/[a-zA-Z0-9_-]+)*$`
	TransitMount string `json:"transitMount,omitempty"`

	// kubernetesAuthMount is the path of Vault's Kubernetes auth method the
	// portal logs in with.
	// +optional
	// +kubebuilder:default=kubernetes
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_-]+(/[a-zA-Z0-9_-]+)*$`
	KubernetesAuthMount string `json:"kubernetesAuthMount,omitempty"`

	// rotationPeriod is how often Vault rotates the data key by itself,
	// from 1h to 8760h (365 days). Default 2160h (90 days).
	// +optional
	// +kubebuilder:default="2160h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1h') && duration(self) <= duration('8760h')",message="rotationPeriod must be between 1h and 8760h (365 days)"
	RotationPeriod metav1.Duration `json:"rotationPeriod,omitzero"`

	// rewrapAfterRotation asks the portal to rewrap stored data keys under
	// the newest key version after each rotation.
	// +optional
	// +kubebuilder:default=true
	RewrapAfterRotation *bool `json:"rewrapAfterRotation,omitempty"`
}

// TLSSpec configures the portal's certificate and protocol.
// +kubebuilder:validation:XValidation:rule="!has(self.renewBefore) || !has(self.duration) || duration(self.renewBefore) < duration(self.duration)",message="renewBefore must be shorter than duration"
type TLSSpec struct {
	// issuerRef names the cert-manager issuer; empty uses the operator's
	// default issuer (flag --default-issuer).
	// +optional
	IssuerRef *IssuerReference `json:"issuerRef,omitempty"`

	// duration is the certificate's lifetime, from 1h to 8760h.
	// +optional
	// +kubebuilder:default="2160h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1h') && duration(self) <= duration('8760h')",message="duration must be between 1h and 8760h"
	Duration metav1.Duration `json:"duration,omitzero"`

	// renewBefore is how long before expiry cert-manager renews it; the
	// private key is rotated on every renewal.
	// +optional
	// +kubebuilder:default="360h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('5m')",message="renewBefore must be at least 5m"
	RenewBefore metav1.Duration `json:"renewBefore,omitzero"`

	// minVersion is the oldest TLS version the portal accepts: "1.3"
	// (default) or "1.2" for legacy clients.
	// +optional
	// +kubebuilder:default="1.3"
	// +kubebuilder:validation:Enum="1.2";"1.3"
	MinVersion string `json:"minVersion,omitempty"`
}

// IssuerReference names a cert-manager Issuer or ClusterIssuer.
type IssuerReference struct {
	// name is the issuer's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// kind is ClusterIssuer (default) or Issuer (in the tenant namespace).
	// +optional
	// +kubebuilder:default=ClusterIssuer
	// +kubebuilder:validation:Enum=ClusterIssuer;Issuer
	Kind string `json:"kind,omitempty"`
}

// NetworkSpec declares the tenant's allowed traffic; everything else is
// denied.
type NetworkSpec struct {
	// ingressFrom lists who may reach the portal's HTTPS port. Empty means
	// nobody outside the tenant namespace.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	IngressFrom []Peer `json:"ingressFrom,omitempty"`

	// adminConsoleCIDRs lists the source ranges allowed to reach the admin
	// console; empty allows none.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="adminConsoleCIDRs entries must be CIDRs like 192.0.2.0/24"
	AdminConsoleCIDRs []string `json:"adminConsoleCIDRs,omitempty"`

	// egress lists what the portal may reach besides DNS: Vault, the
	// database and audit sinks.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Egress []EgressRule `json:"egress,omitempty"`
}

// Peer is a source or destination of traffic: a CIDR, or pods selected by
// namespace and pod labels.
// +kubebuilder:validation:XValidation:rule="has(self.cidr) != (has(self.namespaceSelector) || has(self.podSelector))",message="set either cidr or namespaceSelector/podSelector, not both and not neither"
type Peer struct {
	// cidr is an IP range, e.g. 10.0.0.0/8.
	// +optional
	// +kubebuilder:validation:MaxLength=43
	// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="cidr must be a CIDR like 192.0.2.0/24"
	CIDR string `json:"cidr,omitempty"`
	// namespaceSelector selects namespaces; with podSelector, pods in them.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// podSelector selects pods (in the tenant namespace unless
	// namespaceSelector is set).
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
}

// EgressPurpose says why the portal needs an egress rule.
// +kubebuilder:validation:Enum=Vault;Database;AuditSink
type EgressPurpose string

// The purposes an egress rule may serve.
const (
	// EgressVault reaches Vault.
	EgressVault EgressPurpose = "Vault"
	// EgressDatabase reaches PostgreSQL.
	EgressDatabase EgressPurpose = "Database"
	// EgressAuditSink reaches an audit sink.
	EgressAuditSink EgressPurpose = "AuditSink"
)

// EgressRule allows the portal to reach one destination.
type EgressRule struct {
	// name identifies the rule, e.g. "vault".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// purpose is Vault, Database or AuditSink.
	// +required
	Purpose EgressPurpose `json:"purpose"`
	// to is the destination.
	// +required
	To Peer `json:"to"`
	// ports are the destination TCP ports.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=65535
	Ports []int32 `json:"ports"`
}

// PortalTenantStatus is what the operator observed and proved.
type PortalTenantStatus struct {
	// observedGeneration is the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is a one-word summary for printer columns.
	// +optional
	Phase TenantPhase `json:"phase,omitempty"`

	// conditions are Ready and one per safeguard.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// encryption reports the tenant's keys.
	// +optional
	Encryption *EncryptionStatus `json:"encryption,omitempty"`

	// tls reports the portal's certificate.
	// +optional
	TLS *TLSStatus `json:"tls,omitempty"`

	// accessPolicy reports the policy loaded into the tenant ConfigMap.
	// +optional
	AccessPolicy *LoadedPolicy `json:"accessPolicy,omitempty"`

	// exposed is true while the portal Service and ingress policy exist.
	// +optional
	Exposed bool `json:"exposed,omitempty"`
}

// EncryptionStatus reports the tenant's transit keys as read from Vault.
type EncryptionStatus struct {
	// dataKey is the aes256-gcm96 transit key's name.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	DataKey string `json:"dataKey,omitempty"`
	// signingKey is the ed25519 transit key's name.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	SigningKey string `json:"signingKey,omitempty"`
	// keyVersion is the data key's latest version.
	// +optional
	KeyVersion int64 `json:"keyVersion,omitempty"`
	// minDecryptionVersion is the oldest version that still decrypts.
	// +optional
	MinDecryptionVersion int64 `json:"minDecryptionVersion,omitempty"`
	// lastRotation is when the latest version was created.
	// +optional
	LastRotation *metav1.Time `json:"lastRotation,omitempty"`
	// nextRotationDue is lastRotation plus the rotation period.
	// +optional
	NextRotationDue *metav1.Time `json:"nextRotationDue,omitempty"`
	// rotateKeyAcknowledged is the last rotate-key annotation value acted
	// on.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	RotateKeyAcknowledged string `json:"rotateKeyAcknowledged,omitempty"`
}

// TLSStatus reports the portal's certificate.
type TLSStatus struct {
	// secretName is the Secret holding the certificate and key.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	SecretName string `json:"secretName,omitempty"`
	// notAfter is when the certificate expires.
	// +optional
	NotAfter *metav1.Time `json:"notAfter,omitempty"`
	// renewalTime is when cert-manager will renew it.
	// +optional
	RenewalTime *metav1.Time `json:"renewalTime,omitempty"`
}

// LoadedPolicy names the AccessPolicy generation in the tenant ConfigMap.
type LoadedPolicy struct {
	// name is the AccessPolicy's name.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`
	// generation is the AccessPolicy generation compiled into the
	// ConfigMap.
	// +optional
	Generation int64 `json:"generation,omitempty"`
}

// PortalTenant is one clinic's isolated, keyed, TLS-protected portal.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=pt,categories=pleura
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Key Version",type=integer,JSONPath=`.status.encryption.keyVersion`
// +kubebuilder:printcolumn:name="Cert Expiry",type=string,JSONPath=`.status.tls.notAfter`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PortalTenant struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the tenant.
	// +required
	Spec PortalTenantSpec `json:"spec"`

	// status is what the operator observed.
	// +optional
	Status PortalTenantStatus `json:"status,omitempty"`
}

// PortalTenantList is a list of PortalTenants.
//
// +kubebuilder:object:root=true
type PortalTenantList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the list's metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the tenants.
	Items []PortalTenant `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PortalTenant{}, &PortalTenantList{})
}

// ResourceList renders c as a core resource list.
func (c ComputeResources) ResourceList() (corev1.ResourceList, error) {
	return parseResources(c)
}
