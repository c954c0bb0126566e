package v1alpha1

// Condition types on a PortalTenant. Ready summarises the safeguards; each
// other type reports one safeguard. Every condition carries the generation
// it was computed from in observedGeneration.
const (
	// ConditionReady is True when every safeguard below is True and the
	// portal is exposed. Its reason names the first safeguard that is not.
	ConditionReady = "Ready"
	// ConditionNamespaceReady is True when the tenant's namespace, service
	// account, ResourceQuota and LimitRange exist as declared.
	ConditionNamespaceReady = "NamespaceReady"
	// ConditionEncryptionKeyReady is True when the tenant's transit keys,
	// Vault policy and Kubernetes auth role exist as declared.
	ConditionEncryptionKeyReady = "EncryptionKeyReady"
	// ConditionTLSReady is True when the portal's certificate is issued and
	// its Secret exists.
	ConditionTLSReady = "TLSReady"
	// ConditionNetworkIsolated is True when default-deny, DNS and egress
	// network policies are in place.
	ConditionNetworkIsolated = "NetworkIsolated"
	// ConditionAccessPolicyLoaded is True when the referenced AccessPolicy
	// exists and is compiled into the tenant's ConfigMap.
	ConditionAccessPolicyLoaded = "AccessPolicyLoaded"
	// ConditionPortalAvailable is True when at least one portal replica is
	// available.
	ConditionPortalAvailable = "PortalAvailable"
)

// Condition reasons on a PortalTenant. Each names what happened in words a
// person can act on; the condition's message says what to do.
const (
	// ReasonProvisioned means the safeguard is in place as declared.
	ReasonProvisioned = "Provisioned"
	// ReasonReconciling means the operator is still creating the safeguard.
	ReasonReconciling = "Reconciling"
	// ReasonNamespaceConflict means the namespace exists and belongs to
	// something else; pick another spec.namespace.
	ReasonNamespaceConflict = "NamespaceConflict"
	// ReasonHostnameConflict means an older PortalTenant already serves
	// spec.portal.hostname; no certificate is requested for it twice.
	ReasonHostnameConflict = "HostnameConflict"
	// ReasonNamespaceTerminating means the namespace is being deleted.
	ReasonNamespaceTerminating = "NamespaceTerminating"
	// ReasonVaultUnavailable means Vault could not be reached or refused the
	// operator; the operator retries by itself.
	ReasonVaultUnavailable = "VaultUnavailable"
	// ReasonKeyRotated means the data key was rotated on request.
	ReasonKeyRotated = "KeyRotated"
	// ReasonIssuerNotFound means the certificate's issuer does not exist.
	ReasonIssuerNotFound = "IssuerNotFound"
	// ReasonIssuerNotReady means the issuer exists but cannot sign yet.
	ReasonIssuerNotReady = "IssuerNotReady"
	// ReasonCertificateIssuing means cert-manager is issuing the certificate.
	ReasonCertificateIssuing = "CertificateIssuing"
	// ReasonCertificateIssued means the certificate is valid and its Secret
	// exists.
	ReasonCertificateIssued = "CertificateIssued"
	// ReasonPoliciesApplied means every network policy is in place.
	ReasonPoliciesApplied = "PoliciesApplied"
	// ReasonAccessPolicyNotFound means spec.accessPolicyRef names no
	// AccessPolicy; create it or fix the reference.
	ReasonAccessPolicyNotFound = "AccessPolicyNotFound"
	// ReasonAccessPolicyInvalid means the AccessPolicy does not compile.
	ReasonAccessPolicyInvalid = "AccessPolicyInvalid"
	// ReasonAccessPolicyLoaded means the policy is in the tenant ConfigMap.
	ReasonAccessPolicyLoaded = "Loaded"
	// ReasonNoNodes means no node can run pods yet, so no replica can start.
	ReasonNoNodes = "NoNodeCanRunPods"
	// ReasonReplicasUnavailable means nodes exist but no replica is
	// available; see the Deployment's events.
	ReasonReplicasUnavailable = "ReplicasUnavailable"
	// ReasonNotExposed means the workload runs but exposure is withheld
	// because a safeguard is not True (fail closed).
	ReasonNotExposed = "ExposureWithheld"
	// ReasonReplicasAvailable means at least one replica is available.
	ReasonReplicasAvailable = "ReplicasAvailable"
	// ReasonAllSafeguardsReady is Ready's reason when everything is True.
	ReasonAllSafeguardsReady = "AllSafeguardsReady"
	// ReasonCryptoShredNotConfirmed means spec.deletionPolicy is CryptoShred
	// but the ConfirmCryptoShredAnnotation does not name the tenant.
	ReasonCryptoShredNotConfirmed = "CryptoShredNotConfirmed"
	// ReasonDeleting means the tenant is being removed.
	ReasonDeleting = "Deleting"
)

// Condition types and reasons on an AccessPolicy.
const (
	// ConditionValid is True when the policy compiles into the tenant
	// configuration the portal reads.
	ConditionValid = "Valid"
	// ReasonCompiled means the policy compiled.
	ReasonCompiled = "Compiled"
	// ReasonInvalid means the policy does not compile; the message names
	// each field.
	ReasonInvalid = "Invalid"
)

// TenantPhase is a one-word summary of a PortalTenant for printer columns.
// +kubebuilder:validation:Enum=Pending;Provisioning;Ready;Degraded;Deleting
type TenantPhase string

// The phases of a PortalTenant.
const (
	// PhasePending means the operator has not acted on the tenant yet.
	PhasePending TenantPhase = "Pending"
	// PhaseProvisioning means safeguards are being created.
	PhaseProvisioning TenantPhase = "Provisioning"
	// PhaseReady means every safeguard is True; the portal is exposed.
	PhaseReady TenantPhase = "Ready"
	// PhaseDegraded means a safeguard that was True is no longer, or an
	// error the user must fix blocks progress.
	PhaseDegraded TenantPhase = "Degraded"
	// PhaseDeleting means the tenant is being removed.
	PhaseDeleting TenantPhase = "Deleting"
)
