package config

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
)

const tenantJSON = `{"schemaVersion":"tenantconfig.pleura.dev/v1",
"tenant":{"name":"north","namespace":"clinic-north","hostname":"portal.north.example"},
"vault":{"address":"http://127.0.0.1:8200","transitMount":"transit","dataKey":"k",
"signingKey":"s","role":"portal"},
"policy":{"name":"p","roles":[{"name":"patient","mfa":{"factors":["totp"]},
"session":{"idle":"30m","absolute":"12h"}}],"stepUp":{"actions":[],"window":"5m"},
"breakGlass":{"maxDuration":"1h"},"proxies":{"allowed":false,"maxGrant":"24h",
"documentationRequired":false},"entitlementReviewInterval":"2160h"}}`

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFromEnvLoadsAValidConfig(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	tenant := filepath.Join(dir, "tenant.json")
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for _, f := range []string{cert, key} {
		g.Expect(os.WriteFile(f, []byte("x"), 0o600)).To(Succeed())
	}
	g.Expect(os.WriteFile(tenant, []byte(tenantJSON), 0o600)).To(Succeed())
	c, err := FromEnv(env(map[string]string{"PLEURA_TENANT_FILE": tenant,
		"PLEURA_DATABASE_DSN": "postgres://u:p@db/north", "PLEURA_TLS_CERT": cert,
		"PLEURA_TLS_KEY": key}))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.VaultAuth).To(Equal(VaultAuthKubernetes))
	g.Expect(c.VaultAddress).To(Equal("http://127.0.0.1:8200"))
	g.Expect(c.PublicURL).To(Equal("https://portal.north.example"))
	g.Expect(c.Listen).To(Equal(":8443"))
}

func TestFromEnvNamesEveryBadField(t *testing.T) {
	g := NewWithT(t)
	_, err := FromEnv(env(map[string]string{"PLEURA_DATABASE_DSN": "mysql://x",
		"PLEURA_VAULT_AUTH": "ldap", "PLEURA_LISTEN": "8443", "PLEURA_TLS_CERT": "/nope",
		"PLEURA_SMTP_RELAY": "relay", "PLEURA_PUBLIC_URL": "http://portal"}))
	g.Expect(err).To(HaveOccurred())
	for _, field := range []string{"PLEURA_TENANT_FILE", "PLEURA_DATABASE_DSN",
		"PLEURA_VAULT_AUTH", "PLEURA_LISTEN", "PLEURA_TLS_CERT", "PLEURA_TLS_KEY",
		"PLEURA_SMTP_RELAY", "PLEURA_PUBLIC_URL"} {
		g.Expect(err.Error()).To(ContainSubstring(field))
	}
	g.Expect(err.Error()).NotTo(ContainSubstring("mysql://x"), "a DSN is never echoed")
}

func TestFromEnvRejectsABadTenantFile(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	tenant := filepath.Join(dir, "tenant.json")
	g.Expect(os.WriteFile(tenant, []byte(`{"schemaVersion":"v0"}`), 0o600)).To(Succeed())
	_, err := FromEnv(env(map[string]string{"PLEURA_TENANT_FILE": tenant,
		"PLEURA_VAULT_AUTH": "token"}))
	g.Expect(err).To(MatchError(ContainSubstring("schemaVersion")))
	g.Expect(err).To(MatchError(ContainSubstring("PLEURA_VAULT_TOKEN")))
}
