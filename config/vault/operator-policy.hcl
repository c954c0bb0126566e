# Least-privilege Vault policy for the Pleura operator (see README.md here).
# It manages only objects whose names Pleura derives from a tenant's name:
# transit keys pleura-<tenant>-data and pleura-<tenant>-signing, ACL policies
# pleura-tenant-<tenant> and Kubernetes auth roles pleura-<tenant>. It can
# neither use the keys (no encrypt, decrypt, sign) nor export, back up or
# trim them. Replace "transit" and "kubernetes" if you mount them elsewhere.

# Create, read, configure, rotate and (for CryptoShred) delete tenant keys.
path "transit/keys/pleura-*" {
  capabilities = ["create", "read", "update", "delete"]
}

# ...but never trim old versions or import key material.
path "transit/keys/+/trim" {
  capabilities = ["deny"]
}
path "transit/keys/+/import" {
  capabilities = ["deny"]
}
path "transit/keys/+/import_version" {
  capabilities = ["deny"]
}

# Tenant ACL policies.
path "sys/policies/acl/pleura-tenant-*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "sys/policy/pleura-tenant-*" {
  capabilities = ["create", "read", "update", "delete"]
}

# Kubernetes auth roles for tenant portals.
path "auth/kubernetes/role/pleura-*" {
  capabilities = ["create", "read", "update", "delete"]
}
