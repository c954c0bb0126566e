// Package portaltest starts what the portal's integration tests need:
// a database owned by an unprivileged role (as in production), a tenant
// transit key in the harness's Vault, a tenant file, a TLS key pair and an
// SMTP server on loopback that keeps what it receives.
package portaltest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pleura-dev/pleura/internal/tenantconfig"
	"github.com/pleura-dev/pleura/internal/testenv"
)

// Database creates a database owned by a fresh login role without
// superuser rights and returns that role's DSN.
func Database(t testing.TB, env *testenv.Env, name string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, env.Postgres.DSN("postgres"))
	if err != nil {
		t.Fatalf("connecting to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	pw := randHex(t, 16)
	role := pgx.Identifier{name + "_portal"}.Sanitize()
	for _, q := range []string{
		"CREATE ROLE " + role + " LOGIN PASSWORD '" + pw + "'",
		"CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " OWNER " + role,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("preparing database %s: %v", name, err)
		}
	}
	return "postgres://" + name + "_portal:" + pw + "@" + net.JoinHostPort(env.Postgres.Host,
		itoa(env.Postgres.Port)) + "/" + name + "?sslmode=disable"
}

// TransitKey creates an aes256-gcm96 transit key named name.
func TransitKey(t testing.TB, env *testenv.Env, name string) {
	t.Helper()
	_, err := env.Vault.Client.Logical().Write(testenv.VaultTransitMount+"/keys/"+name,
		map[string]any{"type": "aes256-gcm96"})
	if err != nil {
		t.Fatalf("creating transit key %s: %v", name, err)
	}
}

// RotateTransitKey rotates the named transit key.
func RotateTransitKey(t testing.TB, env *testenv.Env, name string) {
	t.Helper()
	_, err := env.Vault.Client.Logical().Write(testenv.VaultTransitMount+"/keys/"+name+
		"/rotate", nil)
	if err != nil {
		t.Fatalf("rotating transit key %s: %v", name, err)
	}
}

// Policy is a policy with every role the portal knows: staff need MFA,
// patients are offered it; step-up covers contact, notification and
// authenticator changes.
func Policy() tenantconfig.Policy {
	d := func(s string) tenantconfig.Duration {
		v, _ := time.ParseDuration(s)
		return tenantconfig.Duration{Duration: v}
	}
	both := []tenantconfig.Factor{tenantconfig.FactorTOTP, tenantconfig.FactorWebAuthn}
	staff := func(name string, g ...tenantconfig.Grant) tenantconfig.Role {
		return tenantconfig.Role{Name: name, Grants: g,
			MFA:     tenantconfig.MFA{Required: true, Factors: both},
			Session: tenantconfig.SessionLimits{Idle: d("15m"), Absolute: d("10h")}}
	}
	write := []tenantconfig.Action{tenantconfig.ActionRead, tenantconfig.ActionWrite}
	return tenantconfig.Policy{
		Name: "lung-clinics", Generation: 1,
		Roles: []tenantconfig.Role{
			{Name: "patient", MFA: tenantconfig.MFA{Factors: both},
				Session: tenantconfig.SessionLimits{Idle: d("30m"), Absolute: d("12h")}},
			{Name: "proxy", MFA: tenantconfig.MFA{Factors: both},
				Session: tenantconfig.SessionLimits{Idle: d("30m"), Absolute: d("12h")}},
			staff("pulmonologist", tenantconfig.Grant{Record: tenantconfig.RecordDemographic,
				Actions: write}),
			staff("respiratoryTherapist"),
			staff("scheduler", tenantconfig.Grant{Record: tenantconfig.RecordDemographic,
				Actions: write}),
			staff("billing"),
			staff("admin", tenantconfig.Grant{Record: tenantconfig.RecordAccount,
				Actions: write}, tenantconfig.Grant{Record: tenantconfig.RecordDemographic,
				Actions: write}),
		},
		StepUp: tenantconfig.StepUp{Window: d("5m"), Actions: []tenantconfig.StepUpAction{
			tenantconfig.StepUpChangeContact, tenantconfig.StepUpChangeNotifications,
			tenantconfig.StepUpChangeAuthenticator}},
	}
}

// TenantFile writes a tenant file for tenant using key and returns its path.
func TenantFile(t testing.TB, env *testenv.Env, dir, tenant, key string,
	p tenantconfig.Policy) string {
	t.Helper()
	c := tenantconfig.Config{SchemaVersion: tenantconfig.SchemaVersion,
		Tenant: tenantconfig.Tenant{Name: tenant, DisplayName: "North Lung Clinic",
			Namespace: "clinic-" + tenant, Hostname: "localhost"},
		Vault: tenantconfig.Vault{Address: env.Vault.Addr, AuthMount: "kubernetes",
			Role: "portal", TransitMount: testenv.VaultTransitMount, DataKey: key,
			SigningKey: key + "-signing"},
		Policy: p}
	data, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tenant.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// KeyPair writes a self-signed ECDSA certificate for localhost and
// 127.0.0.1 and returns the pool that trusts it.
func KeyPair(t testing.TB, certFile, keyFile string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial,
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(path, typ string, b []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}),
			0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(certFile, "CERTIFICATE", der)
	write(keyFile, "EC PRIVATE KEY", kder)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

func randHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func itoa(i int) string {
	return big.NewInt(int64(i)).String()
}
