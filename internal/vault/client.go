package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// ErrUnavailable wraps every failure to reach Vault or to be allowed by it,
// as opposed to a missing object.
var ErrUnavailable = errors.New("vault unavailable")

// Client talks to one Vault server with one token.
type Client struct {
	api *vaultapi.Client
}

// KeyOptions declares a transit key.
type KeyOptions struct {
	// Type is the transit key type, e.g. "aes256-gcm96" or "ed25519".
	Type string
	// AutoRotatePeriod makes Vault rotate the key by itself; 0 disables it.
	AutoRotatePeriod time.Duration
}

// KeyInfo is a transit key as Vault reports it.
type KeyInfo struct {
	// Type is the key type.
	Type string
	// Exportable reports whether the key may leave Vault.
	Exportable bool
	// DeletionAllowed reports whether the key may be deleted.
	DeletionAllowed bool
	// AutoRotatePeriod is Vault's automatic rotation period.
	AutoRotatePeriod time.Duration
	// LatestVersion is the newest key version.
	LatestVersion int64
	// MinDecryptionVersion is the oldest version that still decrypts.
	MinDecryptionVersion int64
	// LatestCreated is when LatestVersion was created.
	LatestCreated time.Time
}

// KubernetesRole declares a Kubernetes auth role.
type KubernetesRole struct {
	// ServiceAccounts are the bound service account names.
	ServiceAccounts []string
	// Namespaces are the bound namespaces.
	Namespaces []string
	// Policies are the token policies granted at login.
	Policies []string
	// Audience is the audience the service account token must carry.
	Audience string
	// TokenTTL is the lifetime of tokens issued at login.
	TokenTTL time.Duration
}

// NewWithToken returns a client for addr authenticated with token.
func NewWithToken(addr, token string) (*Client, error) {
	cfg := vaultapi.DefaultConfig()
	cfg.Address = addr
	cfg.Timeout = 10 * time.Second
	// The reconciler retries with backoff; the client must fail fast so an
	// outage shows in status instead of stalling a worker.
	cfg.MaxRetries = 0
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating Vault client for %s: %w", addr, err)
	}
	c.SetToken(token)
	return &Client{api: c}, nil
}

// NewWithKubernetesAuth logs in at auth/<mount>/login with the service
// account token in jwtPath and role, as the operator does inside a cluster.
func NewWithKubernetesAuth(ctx context.Context, addr, mount, role, jwtPath string) (
	*Client, error) {
	c, err := NewWithToken(addr, "")
	if err != nil {
		return nil, err
	}
	jwt, err := os.ReadFile(jwtPath)
	if err != nil {
		return nil, fmt.Errorf("reading service account token %s: %w", jwtPath, err)
	}
	s, err := c.api.Logical().WriteWithContext(ctx, "auth/"+mount+"/login",
		map[string]any{"role": role, "jwt": strings.TrimSpace(string(jwt))})
	if err != nil {
		return nil, fmt.Errorf("%w: logging in with role %s: %w", ErrUnavailable, role, err)
	}
	if s == nil || s.Auth == nil {
		return nil, fmt.Errorf("%w: login with role %s returned no token", ErrUnavailable, role)
	}
	c.api.SetToken(s.Auth.ClientToken)
	return c, nil
}

func keyPath(mount, name string) string { return mount + "/keys/" + name }

// ReadTransitKey returns the key, or nil when it does not exist.
func (c *Client) ReadTransitKey(ctx context.Context, mount, name string) (*KeyInfo, error) {
	s, err := c.api.Logical().ReadWithContext(ctx, keyPath(mount, name))
	if err != nil {
		return nil, unavailable("reading transit key "+name, err)
	}
	if s == nil || s.Data == nil {
		return nil, nil
	}
	return parseKey(s.Data)
}

// EnsureTransitKey creates the key if missing (never exportable) and makes
// its configuration match: deletion not allowed, rotation as declared.
func (c *Client) EnsureTransitKey(ctx context.Context, mount, name string,
	opts KeyOptions) (*KeyInfo, error) {
	key, err := c.ReadTransitKey(ctx, mount, name)
	if err != nil {
		return nil, err
	}
	period := int64(opts.AutoRotatePeriod / time.Second)
	if key == nil {
		// exportable and allow_plaintext_backup default to false; the
		// operator's Vault policy refuses them as parameters.
		_, err := c.api.Logical().WriteWithContext(ctx, keyPath(mount, name), map[string]any{
			"type": opts.Type, "auto_rotate_period": period,
		})
		if err != nil {
			return nil, unavailable("creating transit key "+name, err)
		}
		return c.ReadTransitKey(ctx, mount, name)
	}
	if key.Type != opts.Type {
		return nil, fmt.Errorf("transit key %s has type %s, want %s: it was created "+
			"outside Pleura; rename or remove it", name, key.Type, opts.Type)
	}
	if !key.DeletionAllowed && key.AutoRotatePeriod == opts.AutoRotatePeriod {
		return key, nil
	}
	_, err = c.api.Logical().WriteWithContext(ctx, keyPath(mount, name)+"/config",
		map[string]any{"deletion_allowed": false, "auto_rotate_period": period})
	if err != nil {
		return nil, unavailable("configuring transit key "+name, err)
	}
	return c.ReadTransitKey(ctx, mount, name)
}

// RotateTransitKey adds a new key version now.
func (c *Client) RotateTransitKey(ctx context.Context, mount, name string) error {
	_, err := c.api.Logical().WriteWithContext(ctx, keyPath(mount, name)+"/rotate", nil)
	return unavailable("rotating transit key "+name, err)
}

// DestroyTransitKey allows deletion of the key and deletes it, so that no
// ciphertext under it can be decrypted again. A missing key is no error.
func (c *Client) DestroyTransitKey(ctx context.Context, mount, name string) error {
	key, err := c.ReadTransitKey(ctx, mount, name)
	if err != nil || key == nil {
		return err
	}
	_, err = c.api.Logical().WriteWithContext(ctx, keyPath(mount, name)+"/config",
		map[string]any{"deletion_allowed": true})
	if err != nil {
		return unavailable("allowing deletion of transit key "+name, err)
	}
	_, err = c.api.Logical().DeleteWithContext(ctx, keyPath(mount, name))
	return unavailable("deleting transit key "+name, err)
}

// EnsurePolicy writes the ACL policy when its rules differ.
func (c *Client) EnsurePolicy(ctx context.Context, name, rules string) error {
	got, err := c.api.Sys().GetPolicyWithContext(ctx, name)
	if err != nil && !isNotFound(err) {
		return unavailable("reading policy "+name, err)
	}
	if strings.TrimSpace(got) == strings.TrimSpace(rules) {
		return nil
	}
	return unavailable("writing policy "+name, c.api.Sys().PutPolicyWithContext(ctx, name, rules))
}

// DeletePolicy deletes the ACL policy; a missing one is no error.
func (c *Client) DeletePolicy(ctx context.Context, name string) error {
	return unavailable("deleting policy "+name, c.api.Sys().DeletePolicyWithContext(ctx, name))
}

func rolePath(mount, name string) string { return "auth/" + mount + "/role/" + name }

// EnsureKubernetesRole writes the role when it is missing or differs.
func (c *Client) EnsureKubernetesRole(ctx context.Context, mount, name string,
	role KubernetesRole) error {
	s, err := c.api.Logical().ReadWithContext(ctx, rolePath(mount, name))
	if err != nil {
		return unavailable("reading Kubernetes auth role "+name, err)
	}
	if s != nil && roleMatches(s.Data, role) {
		return nil
	}
	_, err = c.api.Logical().WriteWithContext(ctx, rolePath(mount, name), map[string]any{
		"bound_service_account_names":      role.ServiceAccounts,
		"bound_service_account_namespaces": role.Namespaces,
		"token_policies":                   role.Policies,
		"audience":                         role.Audience,
		"token_ttl":                        int64(role.TokenTTL / time.Second),
		"token_max_ttl":                    int64(role.TokenTTL / time.Second),
	})
	return unavailable("writing Kubernetes auth role "+name, err)
}

// KubernetesRoleExists reports whether the role exists.
func (c *Client) KubernetesRoleExists(ctx context.Context, mount, name string) (bool, error) {
	s, err := c.api.Logical().ReadWithContext(ctx, rolePath(mount, name))
	if err != nil {
		return false, unavailable("reading Kubernetes auth role "+name, err)
	}
	return s != nil, nil
}

// DeleteKubernetesRole deletes the role; a missing one is no error.
func (c *Client) DeleteKubernetesRole(ctx context.Context, mount, name string) error {
	_, err := c.api.Logical().DeleteWithContext(ctx, rolePath(mount, name))
	return unavailable("deleting Kubernetes auth role "+name, err)
}

func roleMatches(data map[string]any, want KubernetesRole) bool {
	return sameStrings(data["bound_service_account_names"], want.ServiceAccounts) &&
		sameStrings(data["bound_service_account_namespaces"], want.Namespaces) &&
		sameStrings(data["token_policies"], want.Policies) &&
		fmt.Sprint(data["audience"]) == want.Audience &&
		number(data["token_ttl"]) == int64(want.TokenTTL/time.Second)
}

func sameStrings(v any, want []string) bool {
	list, _ := v.([]any)
	got := make([]string, 0, len(list))
	for _, x := range list {
		got = append(got, fmt.Sprint(x))
	}
	a, b := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	return slices.Equal(a, b)
}

func parseKey(d map[string]any) (*KeyInfo, error) {
	k := &KeyInfo{
		Type:                 fmt.Sprint(d["type"]),
		Exportable:           d["exportable"] == true,
		DeletionAllowed:      d["deletion_allowed"] == true,
		AutoRotatePeriod:     time.Duration(number(d["auto_rotate_period"])) * time.Second,
		LatestVersion:        number(d["latest_version"]),
		MinDecryptionVersion: number(d["min_decryption_version"]),
	}
	keys, _ := d["keys"].(map[string]any)
	switch v := keys[strconv.FormatInt(k.LatestVersion, 10)].(type) {
	case json.Number: // symmetric keys: Unix seconds
		sec, _ := v.Int64()
		k.LatestCreated = time.Unix(sec, 0).UTC()
	case map[string]any: // asymmetric keys: an object with creation_time
		t, err := time.Parse(time.RFC3339Nano, fmt.Sprint(v["creation_time"]))
		if err == nil {
			k.LatestCreated = t.UTC()
		}
	}
	return k, nil
}

func number(v any) int64 {
	switch n := v.(type) {
	case json.Number:
		i, _ := n.Int64()
		return i
	case float64:
		return int64(n)
	case int64:
		return n
	case int:
		return int64(n)
	}
	return 0
}

func isNotFound(err error) bool {
	var re *vaultapi.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// unavailable wraps err as ErrUnavailable with what was being done; nil
// stays nil.
func unavailable(doing string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, doing, err)
}

// RenewTokenEvery renews the client's own token every interval until ctx
// ends, so a periodic token (the local stack's) never expires while the
// operator runs. Failures are returned on errs, never the token.
func (c *Client) RenewTokenEvery(ctx context.Context, interval time.Duration,
	errs func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := c.api.Auth().Token().RenewSelfWithContext(ctx, 0); err != nil {
				errs(unavailable("renewing the operator's token", err))
			}
		}
	}
}
