# Least-privilege Vault policy for the Pleura operator (see README.md here).
# It manages only objects whose names Pleura derives from a tenant's name:
# transit keys pleura-<tenant>-data and pleura-<tenant>-signing, ACL policies
# pleura-tenant-<tenant> and Kubernetes auth roles pleura-<tenant>. It can
# neither use the keys (no encrypt, decrypt, sign) nor export, back up or
# trim them. Replace "transit" and "kubernetes" if you mount them elsewhere.

# Create, read, configure, rotate and (for CryptoShred) delete tenant keys.
# The glob also covers the keys' sub-paths (config, rotate, trim, import), so
# the allowed request parameters are what keeps this least-privilege: a key
# can be created with a type and rotation period and have deletion allowed,
# nothing else. Trimming old versions (min_available_version), raising
# min_decryption_version, importing key material (ciphertext) or making a
# key exportable is refused. Deny rules on "transit/keys/+/trim" would not
# work here: Vault gives this glob, whose first wildcard comes later, priority.
path "transit/keys/pleura-*" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "type"               = []
    "auto_rotate_period" = []
    "deletion_allowed"   = []
  }
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
