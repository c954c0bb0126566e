package tenantconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

const (
	// SchemaVersion names this file format; a portal refuses other versions.
	SchemaVersion = "tenantconfig.pleura.dev/v1"
	// ConfigMapKey is the ConfigMap key (and file name in the portal's
	// mount) that holds the JSON document.
	ConfigMapKey = "tenant.json"
)

// Config is everything a tenant's portal needs to know from the operator.
type Config struct {
	// SchemaVersion must equal SchemaVersion.
	SchemaVersion string `json:"schemaVersion"`
	// Tenant identifies the clinic.
	Tenant Tenant `json:"tenant"`
	// Vault says where the tenant's keys live and how the portal logs in.
	Vault Vault `json:"vault"`
	// Policy is the compiled AccessPolicy the tenant enforces.
	Policy Policy `json:"policy"`
	// Settings are the portal settings from the PortalTenant's spec.
	Settings Settings `json:"settings,omitzero"`
}

// Where the operator mounts things into the portal container. The portal
// finds the file through EnvConfigPath and may rely on these defaults.
const (
	// EnvConfigPath is the environment variable holding this file's path;
	// the portal reads it (portal/config).
	EnvConfigPath = "PLEURA_TENANT_FILE"
	// DefaultConfigPath is where the operator mounts this file.
	DefaultConfigPath = "/etc/pleura/config/" + ConfigMapKey
	// DefaultTLSDir holds tls.crt, tls.key and ca.crt from cert-manager;
	// the files are replaced in place on renewal.
	DefaultTLSDir = "/etc/pleura/tls"
	// DefaultVaultTokenPath holds a short-lived service account token with
	// audience "vault" for Kubernetes auth login; it is refreshed in place.
	DefaultVaultTokenPath = "/var/run/secrets/pleura/vault/token"
)

// Settings are the tenant's portal settings.
type Settings struct {
	// MinTLSVersion is the oldest TLS version to accept: "1.3" or "1.2".
	MinTLSVersion string `json:"minTLSVersion,omitempty"`
	// RewrapAfterRotation asks the portal to rewrap stored data keys under
	// the newest key version after each rotation.
	RewrapAfterRotation bool `json:"rewrapAfterRotation,omitempty"`
	// TLSDir is the directory holding tls.crt and tls.key.
	TLSDir string `json:"tlsDir,omitempty"`
	// VaultTokenPath is the service account token file for Vault login.
	VaultTokenPath string `json:"vaultTokenPath,omitempty"`
}

// Tenant identifies the PortalTenant the portal serves.
type Tenant struct {
	// Name is the PortalTenant's name.
	Name string `json:"name"`
	// DisplayName is the clinic's name as patients see it.
	DisplayName string `json:"displayName"`
	// Namespace is the namespace the tenant owns.
	Namespace string `json:"namespace"`
	// Hostname is the portal's public host name.
	Hostname string `json:"hostname"`
}

// Vault locates the tenant's keys.
type Vault struct {
	// Address is Vault's URL.
	Address string `json:"address"`
	// AuthMount is the Kubernetes auth mount path, e.g. "kubernetes".
	AuthMount string `json:"authMount"`
	// Role is the Kubernetes auth role bound to the portal's service account.
	Role string `json:"role"`
	// TransitMount is the transit engine's mount path.
	TransitMount string `json:"transitMount"`
	// DataKey is the aes256-gcm96 transit key that wraps data keys.
	DataKey string `json:"dataKey"`
	// SigningKey is the ed25519 transit key that signs audit checkpoints.
	SigningKey string `json:"signingKey"`
}

// Parse decodes a Config, rejecting unknown fields, and validates it.
func Parse(data []byte) (*Config, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decoding tenant configuration: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Load reads and parses the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading tenant configuration: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Marshal renders c as the stable, indented JSON the ConfigMap holds.
func (c *Config) Marshal() ([]byte, error) {
	return json.MarshalIndent(c, "", "  ")
}

// Validate reports every problem at once, each naming the field by its JSON
// path and what to do about it.
func (c *Config) Validate() error {
	var errs []error
	need := func(field, value string) {
		if value == "" {
			errs = append(errs, fmt.Errorf("%s: required, set it", field))
		}
	}
	if c.SchemaVersion != SchemaVersion {
		errs = append(errs, fmt.Errorf("schemaVersion: got %q, this portal reads %q; "+
			"upgrade the portal or the operator so they match", c.SchemaVersion, SchemaVersion))
	}
	need("tenant.name", c.Tenant.Name)
	need("tenant.namespace", c.Tenant.Namespace)
	need("vault.address", c.Vault.Address)
	need("vault.transitMount", c.Vault.TransitMount)
	need("vault.dataKey", c.Vault.DataKey)
	need("vault.signingKey", c.Vault.SigningKey)
	errs = append(errs, c.Policy.validate("policy")...)
	return errors.Join(errs...)
}

// Duration is a time.Duration written as a Go duration string ("15m").
type Duration struct {
	time.Duration
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.String()), nil
}

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q: write it like 15m or 12h", b)
	}
	d.Duration = v
	return nil
}
