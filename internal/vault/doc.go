// Package vault is the operator's Vault client: transit keys, ACL policies
// and Kubernetes auth roles, spoken over Vault's HTTP API with
// github.com/hashicorp/vault/api (OpenBao serves the same API). Every Ensure
// method reads first and writes only what differs, so a converged tenant
// costs Vault reads only. Nothing here logs or returns a token.
package vault
