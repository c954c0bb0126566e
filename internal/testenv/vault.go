package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

const (
	// VaultTransitMount is where the harness mounts the transit engine.
	VaultTransitMount = "transit"
	// VaultKubernetesAuthMount is where the harness mounts Kubernetes auth.
	VaultKubernetesAuthMount = "kubernetes"
	// VaultReviewerNamespace holds the service account whose token Vault
	// uses to review the tokens that clients log in with.
	VaultReviewerNamespace = "vault-system"
	// VaultReviewerServiceAccount is that service account.
	VaultReviewerServiceAccount = "vault-token-reviewer"

	// reviewerTokenLifetime bounds the token Vault reviews logins with; a
	// local stack lives far shorter.
	reviewerTokenLifetime = 30 * 24 * time.Hour
)

// Vault is a running Vault dev server on loopback.
type Vault struct {
	// Addr is the server's URL, http://127.0.0.1:PORT.
	Addr string
	// Token is the dev server's root token. Tests use it to act as the
	// operator would; never log it.
	Token string
	// Client is an API client authenticated with Token.
	Client *vaultapi.Client
}

// startVault runs `vault server -dev` on a free loopback port with a random
// root token, and mounts transit and Kubernetes auth.
func (e *Env) startVault(ctx context.Context) error {
	bin, err := toolPath(e.root, "vault")
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	token, err := randomHex(16)
	if err != nil {
		return err
	}
	home := filepath.Join(e.Dir, "vault-home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("creating Vault home: %w", err)
	}
	// The root token travels in the environment, not argv, so `ps` does
	// not show it.
	p, err := startProcess(e.Dir, command{name: "vault", bin: bin,
		args: []string{"server", "-dev", "-dev-no-store-token",
			"-dev-listen-address=" + loopback(port), "-log-level=info"},
		env:            []string{"HOME=" + home, "VAULT_DEV_ROOT_TOKEN_ID=" + token},
		secrets:        []string{token},
		secretPrefixes: []string{"Unseal Key:", "Root Token:"}})
	if err != nil {
		return err
	}
	e.processes = append(e.processes, p)

	cfg := vaultapi.DefaultConfig()
	cfg.Address = "http://" + loopback(port)
	client, err := vaultapi.NewClient(cfg)
	if err != nil {
		return fmt.Errorf("creating Vault client: %w", err)
	}
	client.SetToken(token)
	e.Vault = &Vault{Addr: cfg.Address, Token: token, Client: client}

	err = p.waitFor(ctx, startTimeout, func(ctx context.Context) error {
		h, err := client.Sys().HealthWithContext(ctx)
		if err != nil {
			return err
		}
		if !h.Initialized || h.Sealed {
			return errors.New("vault is sealed or not initialized")
		}
		return nil
	})
	if err != nil {
		return err
	}
	return e.Vault.mountEngines(ctx)
}

func (v *Vault) mountEngines(ctx context.Context) error {
	mounts, err := v.Client.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return fmt.Errorf("listing Vault mounts: %w", err)
	}
	if _, ok := mounts[VaultTransitMount+"/"]; !ok {
		err := v.Client.Sys().MountWithContext(ctx, VaultTransitMount,
			&vaultapi.MountInput{Type: "transit"})
		if err != nil {
			return fmt.Errorf("mounting transit engine: %w", err)
		}
	}
	auths, err := v.Client.Sys().ListAuthWithContext(ctx)
	if err != nil {
		return fmt.Errorf("listing Vault auth methods: %w", err)
	}
	if _, ok := auths[VaultKubernetesAuthMount+"/"]; !ok {
		err := v.Client.Sys().EnableAuthWithOptionsWithContext(ctx, VaultKubernetesAuthMount,
			&vaultapi.EnableAuthOptions{Type: "kubernetes"})
		if err != nil {
			return fmt.Errorf("enabling kubernetes auth: %w", err)
		}
	}
	return nil
}

// configureKubernetesAuth points Vault's Kubernetes auth at the local API
// server, with a dedicated reviewer service account allowed to review tokens
// and nothing else.
func (e *Env) configureKubernetesAuth(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return fmt.Errorf("creating Kubernetes client: %w", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: VaultReviewerNamespace}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil &&
		!apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", VaultReviewerNamespace, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Name: VaultReviewerServiceAccount, Namespace: VaultReviewerNamespace}}
	_, err = cs.CoreV1().ServiceAccounts(VaultReviewerNamespace).Create(ctx, sa,
		metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating reviewer service account: %w", err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "vault-token-reviewer"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole",
			Name: "system:auth-delegator"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind,
			Name: VaultReviewerServiceAccount, Namespace: VaultReviewerNamespace}},
	}
	_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("binding reviewer service account: %w", err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(VaultReviewerNamespace).CreateToken(ctx,
		VaultReviewerServiceAccount, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{
				ExpirationSeconds: ptr.To(int64(reviewerTokenLifetime.Seconds())),
			},
		}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("requesting reviewer token: %w", err)
	}
	_, err = e.Vault.Client.Logical().WriteWithContext(ctx,
		"auth/"+VaultKubernetesAuthMount+"/config", map[string]any{
			"kubernetes_host":        e.Config.Host,
			"kubernetes_ca_cert":     string(e.Config.CAData),
			"token_reviewer_jwt":     tr.Status.Token,
			"disable_local_ca_jwt":   true,
			"disable_iss_validation": true,
		})
	if err != nil {
		return fmt.Errorf("configuring Vault kubernetes auth: %w", err)
	}
	return nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}
