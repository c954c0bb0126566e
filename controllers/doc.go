// Package controllers holds Pleura's reconcilers: PortalTenantReconciler
// turns a PortalTenant into an isolated namespace, network policies, a
// cert-manager Certificate, Vault transit keys with a policy and a
// Kubernetes auth role, the tenant ConfigMap and the portal workload, and
// exposes the portal only while every safeguard holds (fail closed).
// AccessPolicyReconciler reports which tenants enforce each AccessPolicy.
//
// One file per concern: portaltenant_controller.go is the table of contents,
// the _namespace, _network, _tls, _vault, _config, _workload, _status and
// _delete files hold the steps.
package controllers
