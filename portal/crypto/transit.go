package crypto

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

// Transit is the narrow view of Vault's transit engine the portal needs:
// wrapped data keys under the tenant's key, unwrap, rewrap, and the key's
// latest version.
type Transit interface {
	// NewDataKey returns a fresh 256-bit key and its wrapped form.
	NewDataKey(ctx context.Context) (plaintext []byte, wrapped string, err error)
	// Unwrap returns the plaintext of a wrapped data key.
	Unwrap(ctx context.Context, wrapped string) ([]byte, error)
	// Rewrap re-encrypts a wrapped key under the transit key's latest version.
	Rewrap(ctx context.Context, wrapped string) (string, error)
	// LatestVersion is the transit key's newest version.
	LatestVersion(ctx context.Context) (int, error)
}

// VaultTransit is Transit over a Vault (or OpenBao) client.
type VaultTransit struct {
	client *vaultapi.Client
	mount  string
	key    string
}

// NewVaultTransit uses key under mount through an authenticated client.
func NewVaultTransit(client *vaultapi.Client, mount, key string) *VaultTransit {
	return &VaultTransit{client: client, mount: strings.Trim(mount, "/"), key: key}
}

// NewDataKey asks transit for a wrapped 256-bit data key
// (datakey/wrapped, so Vault never returns it in the clear unasked) and then
// unwraps it for use.
func (v *VaultTransit) NewDataKey(ctx context.Context) ([]byte, string, error) {
	s, err := v.client.Logical().WriteWithContext(ctx,
		v.mount+"/datakey/wrapped/"+v.key, map[string]any{"bits": 256})
	if err != nil {
		return nil, "", fmt.Errorf("creating data key under transit key %s: %w", v.key, err)
	}
	if s == nil {
		return nil, "", fmt.Errorf("transit returned no data key")
	}
	wrapped, _ := s.Data["ciphertext"].(string)
	if wrapped == "" {
		return nil, "", fmt.Errorf("transit returned no wrapped data key")
	}
	pt, err := v.Unwrap(ctx, wrapped)
	if err != nil {
		return nil, "", err
	}
	if len(pt) != 32 {
		return nil, "", fmt.Errorf("transit returned a %d-byte data key, want 32", len(pt))
	}
	return pt, wrapped, nil
}

// Unwrap decrypts a wrapped data key.
func (v *VaultTransit) Unwrap(ctx context.Context, wrapped string) ([]byte, error) {
	s, err := v.client.Logical().WriteWithContext(ctx, v.mount+"/decrypt/"+v.key,
		map[string]any{"ciphertext": wrapped})
	if err != nil {
		return nil, fmt.Errorf("unwrapping data key with transit key %s: %w", v.key, err)
	}
	return b64(s, "plaintext")
}

// Rewrap re-encrypts a wrapped key under the latest key version; the data
// key itself never leaves Vault in the clear.
func (v *VaultTransit) Rewrap(ctx context.Context, wrapped string) (string, error) {
	s, err := v.client.Logical().WriteWithContext(ctx, v.mount+"/rewrap/"+v.key,
		map[string]any{"ciphertext": wrapped})
	if err != nil {
		return "", fmt.Errorf("rewrapping data key with transit key %s: %w", v.key, err)
	}
	out, _ := s.Data["ciphertext"].(string)
	if out == "" {
		return "", fmt.Errorf("transit rewrap returned no ciphertext")
	}
	return out, nil
}

// LatestVersion reads the transit key's latest version.
func (v *VaultTransit) LatestVersion(ctx context.Context) (int, error) {
	s, err := v.client.Logical().ReadWithContext(ctx, v.mount+"/keys/"+v.key)
	if err != nil {
		return 0, fmt.Errorf("reading transit key %s: %w", v.key, err)
	}
	if s == nil {
		return 0, fmt.Errorf("transit key %s does not exist", v.key)
	}
	switch n := s.Data["latest_version"].(type) {
	case json.Number:
		i, err := n.Int64()
		return int(i), err
	case float64:
		return int(n), nil
	}
	return 0, fmt.Errorf("transit key %s has no latest_version", v.key)
}

// WrappedVersion returns the transit key version a wrapped value
// ("vault:v3:...") was made with.
func WrappedVersion(wrapped string) (int, error) {
	parts := strings.SplitN(wrapped, ":", 3)
	if len(parts) != 3 || parts[0] != "vault" || !strings.HasPrefix(parts[1], "v") {
		return 0, fmt.Errorf("not a transit ciphertext")
	}
	return strconv.Atoi(parts[1][1:])
}

func b64(s *vaultapi.Secret, field string) ([]byte, error) {
	if s == nil {
		return nil, fmt.Errorf("transit returned nothing")
	}
	str, _ := s.Data[field].(string)
	b, err := base64.StdEncoding.DecodeString(str)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("transit returned no %s", field)
	}
	return b, nil
}
