// Package crypto is the portal's encryption at rest: envelope encryption
// with data keys wrapped by the tenant's Vault transit key, AES-256-GCM
// with associated data that binds each value to its tenant, table, row and
// column, a keyed blind index (HMAC-SHA256) for exact lookups on encrypted
// identifiers, and a background rewrap of stored data keys after the
// transit key rotates.
package crypto
