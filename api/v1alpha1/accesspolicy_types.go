package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AccessPolicySpec declares roles, authentication and session rules shared
// by every tenant that references the policy.
type AccessPolicySpec struct {
	// roles lists every role a person may hold, with what it may do.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Roles []Role `json:"roles"`

	// stepUp lists actions that need a fresh second factor.
	// +optional
	// +kubebuilder:default={}
	StepUp StepUp `json:"stepUp,omitzero"`

	// adminConsoleCIDRs lists source ranges allowed to reach the admin
	// console; empty allows none.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="adminConsoleCIDRs entries must be CIDRs like 192.0.2.0/24"
	AdminConsoleCIDRs []string `json:"adminConsoleCIDRs,omitempty"`

	// privilegedHours confines privileged actions to a daily window.
	// +optional
	PrivilegedHours *TimeWindow `json:"privilegedHours,omitempty"`

	// downloadsPerHour caps record downloads per person; 0 means no cap.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	DownloadsPerHour int32 `json:"downloadsPerHour,omitempty"`

	// breakGlass governs emergency access to one patient's record.
	// +optional
	// +kubebuilder:default={}
	BreakGlass BreakGlass `json:"breakGlass,omitzero"`

	// proxies governs access by a patient's documented proxy.
	// +optional
	// +kubebuilder:default={}
	Proxies Proxies `json:"proxies,omitzero"`

	// entitlementReviewInterval is how often role grants must be reviewed,
	// from 24h to 8760h. Default 2160h (90 days).
	// +optional
	// +kubebuilder:default="2160h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('24h') && duration(self) <= duration('8760h')",message="entitlementReviewInterval must be between 24h and 8760h"
	EntitlementReviewInterval metav1.Duration `json:"entitlementReviewInterval,omitzero"`
}

// Role is what one role may do and how its people authenticate.
type Role struct {
	// name is the role's name, e.g. "pulmonologist" or "patient".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z][-a-z0-9]*$`
	Name string `json:"name"`

	// grants lists what the role may do per kind of record.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Grants []Grant `json:"grants,omitempty"`

	// mfa is the role's second-factor rule.
	// +optional
	// +kubebuilder:default={}
	MFA MFA `json:"mfa,omitzero"`

	// session bounds the role's sessions.
	// +optional
	// +kubebuilder:default={}
	Session Session `json:"session,omitzero"`
}

// Grant allows actions on one kind of record, optionally limited to fields.
type Grant struct {
	// record is the kind of record.
	// +required
	// +kubebuilder:validation:Enum=spirometry;imaging;oxygenOrder;message;upload;demographics;auditLog;account
	Record string `json:"record"`
	// actions are the actions allowed on it.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=5
	// +kubebuilder:validation:items:Enum=read;write;sign;download;share
	Actions []string `json:"actions"`
	// fields, when set, are the only fields of the record the role sees.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=63
	Fields []string `json:"fields,omitempty"`
}

// MFA is a role's second-factor rule.
// +kubebuilder:validation:XValidation:rule="!has(self.required) || !self.required || (has(self.factors) && size(self.factors) > 0)",message="mfa.factors must list a factor when mfa.required is true"
// +kubebuilder:validation:XValidation:rule="!has(self.phishingResistant) || !self.phishingResistant || (has(self.factors) && 'webauthn' in self.factors)",message="mfa.phishingResistant needs webauthn in mfa.factors"
type MFA struct {
	// required makes a second factor mandatory; otherwise it is offered.
	// +optional
	// +kubebuilder:default=false
	Required bool `json:"required"`
	// factors are the factors the role may use.
	// +optional
	// +listType=set
	// +kubebuilder:default={totp,webauthn}
	// +kubebuilder:validation:MaxItems=2
	// +kubebuilder:validation:items:Enum=totp;webauthn
	Factors []string `json:"factors"`
	// phishingResistant demands WebAuthn for this role.
	// +optional
	// +kubebuilder:default=false
	PhishingResistant bool `json:"phishingResistant"`
}

// Session bounds a role's sessions.
// +kubebuilder:validation:XValidation:rule="!has(self.idle) || !has(self.absolute) || duration(self.idle) <= duration(self.absolute)",message="session.idle must not exceed session.absolute"
type Session struct {
	// idle ends a session after this long without a request (1m to 24h,
	// default 15m).
	// +optional
	// +kubebuilder:default="15m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m') && duration(self) <= duration('24h')",message="session.idle must be between 1m and 24h"
	Idle metav1.Duration `json:"idle,omitzero"`
	// absolute ends a session this long after sign-in (5m to 720h,
	// default 12h).
	// +optional
	// +kubebuilder:default="12h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('5m') && duration(self) <= duration('720h')",message="session.absolute must be between 5m and 720h"
	Absolute metav1.Duration `json:"absolute,omitzero"`
}

// StepUp lists actions that need a fresh second factor.
type StepUp struct {
	// actions need a second factor within window.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=6
	// +kubebuilder:validation:items:Enum=changeContact;changeNotifications;changeAuthenticators;shareRecord;bulkDownload;breakGlass
	Actions []string `json:"actions,omitempty"`
	// window is how long a step-up stays valid (30s to 1h, default 5m).
	// +optional
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('30s') && duration(self) <= duration('1h')",message="stepUp.window must be between 30s and 1h"
	Window metav1.Duration `json:"window,omitzero"`
}

// TimeWindow is a daily window in a time zone.
type TimeWindow struct {
	// start is "HH:MM", 24-hour.
	// +required
	// +kubebuilder:validation:Pattern=`^([01][0-9]|2[0-3]):[0-5][0-9]$`
	Start string `json:"start"`
	// end is "HH:MM", 24-hour.
	// +required
	// +kubebuilder:validation:Pattern=`^([01][0-9]|2[0-3]):[0-5][0-9]$`
	End string `json:"end"`
	// timeZone is an IANA zone name, e.g. "America/Chicago".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	TimeZone string `json:"timeZone"`
}

// BreakGlass governs emergency access.
type BreakGlass struct {
	// roles may break the glass; empty disables break-glass.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=63
	Roles []string `json:"roles,omitempty"`
	// reasonCodes are the reasons a person must choose from.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=63
	ReasonCodes []string `json:"reasonCodes,omitempty"`
	// maxDuration bounds one break-glass grant (5m to 24h, default 1h).
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('5m') && duration(self) <= duration('24h')",message="breakGlass.maxDuration must be between 5m and 24h"
	MaxDuration metav1.Duration `json:"maxDuration,omitzero"`
	// notify lists who is alerted (role names or addresses).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	Notify []string `json:"notify,omitempty"`
}

// Proxies governs proxy access.
type Proxies struct {
	// allowed permits proxy grants at all.
	// +optional
	// +kubebuilder:default=false
	Allowed bool `json:"allowed"`
	// maxGrant bounds one proxy grant (1h to 8760h, default 8760h).
	// +optional
	// +kubebuilder:default="8760h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1h') && duration(self) <= duration('8760h')",message="proxies.maxGrant must be between 1h and 8760h"
	MaxGrant metav1.Duration `json:"maxGrant,omitzero"`
	// documentationRequired demands a document recording the authority.
	// +optional
	// +kubebuilder:default=true
	DocumentationRequired *bool `json:"documentationRequired,omitempty"`
}

// AccessPolicyStatus reports which tenants enforce the policy.
type AccessPolicyStatus struct {
	// observedGeneration is the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions report whether the policy compiles.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// enforcedBy lists the tenants referencing the policy and the
	// generation each has loaded.
	// +optional
	// +listType=map
	// +listMapKey=tenant
	// +kubebuilder:validation:MaxItems=10000
	EnforcedBy []PolicyEnforcement `json:"enforcedBy,omitempty"`
}

// PolicyEnforcement is one tenant's loaded generation of a policy.
type PolicyEnforcement struct {
	// tenant is the PortalTenant's name.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Tenant string `json:"tenant"`
	// loadedGeneration is the policy generation in the tenant's ConfigMap;
	// 0 means not loaded yet.
	// +optional
	LoadedGeneration int64 `json:"loadedGeneration"`
}

// AccessPolicy is a set of roles, authentication and session rules that
// tenants enforce.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ap,categories=pleura
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="Generation",type=integer,JSONPath=`.metadata.generation`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AccessPolicy struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the policy.
	// +required
	Spec AccessPolicySpec `json:"spec"`

	// status reports where the policy is enforced.
	// +optional
	Status AccessPolicyStatus `json:"status,omitempty"`
}

// AccessPolicyList is a list of AccessPolicies.
//
// +kubebuilder:object:root=true
type AccessPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the list's metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the policies.
	Items []AccessPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AccessPolicy{}, &AccessPolicyList{})
}
