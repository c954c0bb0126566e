// Package tenantconfig is the contract between the operator and the portal:
// the compiled AccessPolicy and tenant settings that the operator writes into
// each tenant's ConfigMap (key ConfigMapKey) and the portal loads at start
// and reloads when the file changes, without a restart.
//
// The operator builds a Config from a PortalTenant and its AccessPolicy; the
// portal calls Load (or Parse) and then Validate, and asks Policy.Effective
// which rules apply to a person holding several roles.
package tenantconfig
