// Package config loads the portal's start-up configuration: the tenant file
// the operator writes, the database DSN, how to reach and log in to Vault,
// the TLS key pair and the SMTP relay. Invalid configuration stops start-up
// with an error naming each bad field and how to fix it.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/pleura-dev/pleura/internal/tenantconfig"
)

// Vault auth methods the portal speaks.
const (
	// VaultAuthKubernetes logs in with the pod's service-account token.
	VaultAuthKubernetes = "kubernetes"
	// VaultAuthToken uses a token from a file or PLEURA_VAULT_TOKEN, for
	// local runs.
	VaultAuthToken = "token"
)

// DefaultServiceAccountTokenPath is where Kubernetes mounts the pod's token.
const DefaultServiceAccountTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// Config is the portal's start-up configuration. Each field is read from an
// environment variable named in its comment.
type Config struct {
	// TenantFile is the tenant file's path (PLEURA_TENANT_FILE).
	TenantFile string
	// DatabaseDSN is the tenant database's connection string
	// (PLEURA_DATABASE_DSN). Never log it.
	DatabaseDSN string
	// Listen is the HTTPS address (PLEURA_LISTEN, default ":8443").
	Listen string
	// OpsListen is the health, readiness and metrics address
	// (PLEURA_OPS_LISTEN, default ":9090").
	OpsListen string
	// TLSCertFile and TLSKeyFile are the PEM key pair (PLEURA_TLS_CERT,
	// PLEURA_TLS_KEY); a renewed pair on disk is picked up without restart.
	TLSCertFile string
	TLSKeyFile  string
	// VaultAuth is VaultAuthKubernetes or VaultAuthToken
	// (PLEURA_VAULT_AUTH, default kubernetes).
	VaultAuth string
	// VaultToken is the token for VaultAuthToken (PLEURA_VAULT_TOKEN, or
	// the file in PLEURA_VAULT_TOKEN_FILE). Never log it.
	VaultToken string
	// ServiceAccountTokenFile is read for VaultAuthKubernetes
	// (PLEURA_SA_TOKEN_FILE, default DefaultServiceAccountTokenPath).
	ServiceAccountTokenFile string
	// VaultAddress overrides the tenant file's vault.address
	// (PLEURA_VAULT_ADDR), for local runs.
	VaultAddress string
	// SMTPRelay is host:port of the relay notifications go through
	// (PLEURA_SMTP_RELAY); empty keeps them queued in the outbox.
	SMTPRelay string
	// SMTPFrom is the sender address (PLEURA_SMTP_FROM).
	SMTPFrom string
	// PublicURL is the portal's origin as browsers see it, used for
	// WebAuthn and CSRF origin checks (PLEURA_PUBLIC_URL; default
	// https://<tenant hostname>).
	PublicURL string

	// Tenant is the loaded tenant file.
	Tenant *tenantconfig.Config
}

// FromEnv reads the configuration from getenv (os.Getenv in production),
// loads the tenant file and validates everything, naming every bad field.
func FromEnv(getenv func(string) string) (*Config, error) {
	c := &Config{
		TenantFile:  getenv("PLEURA_TENANT_FILE"),
		DatabaseDSN: getenv("PLEURA_DATABASE_DSN"),
		Listen:      or(getenv("PLEURA_LISTEN"), ":8443"),
		OpsListen:   or(getenv("PLEURA_OPS_LISTEN"), ":9090"),
		TLSCertFile: getenv("PLEURA_TLS_CERT"),
		TLSKeyFile:  getenv("PLEURA_TLS_KEY"),
		VaultAuth:   or(getenv("PLEURA_VAULT_AUTH"), VaultAuthKubernetes),
		VaultToken:  getenv("PLEURA_VAULT_TOKEN"),
		ServiceAccountTokenFile: or(getenv("PLEURA_SA_TOKEN_FILE"),
			DefaultServiceAccountTokenPath),
		VaultAddress: getenv("PLEURA_VAULT_ADDR"),
		SMTPRelay:    getenv("PLEURA_SMTP_RELAY"),
		SMTPFrom:     or(getenv("PLEURA_SMTP_FROM"), "portal@localhost"),
		PublicURL:    getenv("PLEURA_PUBLIC_URL"),
	}
	var errs []error
	if f := getenv("PLEURA_VAULT_TOKEN_FILE"); f != "" && c.VaultToken == "" {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("PLEURA_VAULT_TOKEN_FILE: %w", err))
		}
		c.VaultToken = strings.TrimSpace(string(b))
	}
	if c.TenantFile == "" {
		errs = append(errs, errors.New("PLEURA_TENANT_FILE: required; set it to the "+
			"tenant.json the operator mounts"))
	} else {
		t, err := tenantconfig.Load(c.TenantFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("PLEURA_TENANT_FILE: %w", err))
		}
		c.Tenant = t
	}
	if c.Tenant != nil {
		if c.VaultAddress == "" {
			c.VaultAddress = c.Tenant.Vault.Address
		}
		if c.PublicURL == "" && c.Tenant.Tenant.Hostname != "" {
			c.PublicURL = "https://" + c.Tenant.Tenant.Hostname
		}
	}
	errs = append(errs, c.validate()...)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("invalid portal configuration:\n%w", err)
	}
	return c, nil
}

func (c *Config) validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if c.DatabaseDSN == "" {
		add("PLEURA_DATABASE_DSN", "required; set it to the tenant database's postgres:// URL")
	} else if u, err := url.Parse(c.DatabaseDSN); err != nil ||
		(u.Scheme != "postgres" && u.Scheme != "postgresql") {
		add("PLEURA_DATABASE_DSN", "not a postgres:// URL")
	}
	for field, addr := range map[string]string{"PLEURA_LISTEN": c.Listen,
		"PLEURA_OPS_LISTEN": c.OpsListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			add(field, "%q is not host:port, e.g. :8443", addr)
		}
	}
	if c.Listen == c.OpsListen {
		add("PLEURA_OPS_LISTEN", "must differ from PLEURA_LISTEN")
	}
	for field, path := range map[string]string{"PLEURA_TLS_CERT": c.TLSCertFile,
		"PLEURA_TLS_KEY": c.TLSKeyFile} {
		if path == "" {
			add(field, "required; point it at the PEM file cert-manager writes")
		} else if _, err := os.Stat(path); err != nil {
			add(field, "cannot read %s: %v", path, errors.Unwrap(err))
		}
	}
	switch c.VaultAuth {
	case VaultAuthToken:
		if c.VaultToken == "" {
			add("PLEURA_VAULT_TOKEN", "required when PLEURA_VAULT_AUTH=token "+
				"(or set PLEURA_VAULT_TOKEN_FILE)")
		}
	case VaultAuthKubernetes:
		if c.Tenant != nil && c.Tenant.Vault.Role == "" {
			add("PLEURA_TENANT_FILE", "vault.role: required for kubernetes auth")
		}
	default:
		add("PLEURA_VAULT_AUTH", "%q is not %q or %q", c.VaultAuth,
			VaultAuthKubernetes, VaultAuthToken)
	}
	if c.VaultAddress != "" {
		if u, err := url.Parse(c.VaultAddress); err != nil || u.Host == "" {
			add("PLEURA_VAULT_ADDR", "%q is not a URL like https://vault:8200", c.VaultAddress)
		}
	}
	if c.SMTPRelay != "" {
		if _, _, err := net.SplitHostPort(c.SMTPRelay); err != nil {
			add("PLEURA_SMTP_RELAY", "%q is not host:port", c.SMTPRelay)
		}
	}
	if c.PublicURL == "" {
		add("PLEURA_PUBLIC_URL", "required when the tenant file has no tenant.hostname")
	} else if u, err := url.Parse(c.PublicURL); err != nil || u.Scheme != "https" ||
		u.Host == "" || u.Path != "" {
		add("PLEURA_PUBLIC_URL", "%q must be an https origin like https://portal.example",
			c.PublicURL)
	}
	return errs
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
