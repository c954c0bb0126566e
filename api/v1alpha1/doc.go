// Package v1alpha1 holds Pleura's API, group portal.pleura.dev: the
// cluster-scoped PortalTenant (one isolated, keyed, TLS-protected portal per
// clinic) and AccessPolicy (roles, authentication and session rules shared by
// many tenants), with the label, annotation and finalizer keys and the
// condition types and reasons the operator writes.
//
// +kubebuilder:object:generate=true
// +groupName=portal.pleura.dev
package v1alpha1
