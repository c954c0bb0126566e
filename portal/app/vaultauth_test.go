package app_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pleura-dev/pleura/internal/testenv"
	"github.com/pleura-dev/pleura/portal/app"
	"github.com/pleura-dev/pleura/portal/config"
	pcrypto "github.com/pleura-dev/pleura/portal/crypto"
)

// TestVaultKubernetesAuth logs in the way a pod does: with its
// service-account token, against a Vault role bound to that account whose
// policy allows only the tenant's transit key.
func TestVaultKubernetesAuth(t *testing.T) {
	f := setup(t)
	g := NewWithT(t)
	ctx := context.Background()
	vc := f.env.Vault.Client
	cs, err := kubernetes.NewForConfig(f.env.Config)
	g.Expect(err).NotTo(HaveOccurred())

	ns := "clinic-kauth"
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	token := func(sa string) string {
		_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
			ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa,
			&authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		path := filepath.Join(t.TempDir(), sa+".token")
		g.Expect(os.WriteFile(path, []byte(tr.Status.Token), 0o600)).To(Succeed())
		return path
	}
	portalToken, otherToken := token("portal"), token("intruder")

	_, err = vc.Logical().Write("transit/keys/kauth-data",
		map[string]any{"type": "aes256-gcm96"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(vc.Sys().PutPolicy("kauth-portal", `
path "transit/datakey/wrapped/kauth-data" { capabilities = ["update"] }
path "transit/decrypt/kauth-data" { capabilities = ["update"] }
path "transit/rewrap/kauth-data" { capabilities = ["update"] }
path "transit/keys/kauth-data" { capabilities = ["read"] }
`)).To(Succeed())
	_, err = vc.Logical().Write("auth/"+testenv.VaultKubernetesAuthMount+"/role/kauth-portal",
		map[string]any{"bound_service_account_names": "portal",
			"bound_service_account_namespaces": ns, "token_policies": "kauth-portal",
			"token_ttl": "1h"})
	g.Expect(err).NotTo(HaveOccurred())

	tenant := *f.app.Config.Tenant
	tenant.Vault.Role = "kauth-portal"
	cfg := &config.Config{VaultAuth: config.VaultAuthKubernetes,
		VaultAddress: f.env.Vault.Addr, ServiceAccountTokenFile: portalToken, Tenant: &tenant}
	client, err := app.VaultClient(ctx, cfg)
	g.Expect(err).NotTo(HaveOccurred())
	own := pcrypto.NewVaultTransit(client, "transit", "kauth-data")
	_, wrapped, err := own.NewDataKey(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(wrapped).To(HavePrefix("vault:v1:"))

	other := pcrypto.NewVaultTransit(client, "transit", "north-data")
	_, _, err = other.NewDataKey(ctx)
	g.Expect(err).To(MatchError(ContainSubstring("permission denied")),
		"another tenant's key is out of reach")

	t.Run("the login outlives its token's maximum TTL", func(t *testing.T) {
		g := NewWithT(t)
		_, err = vc.Logical().Write("auth/"+testenv.VaultKubernetesAuthMount+
			"/role/kauth-short", map[string]any{"bound_service_account_names": "portal",
			"bound_service_account_namespaces": ns, "token_policies": "kauth-portal",
			"token_ttl": "1s", "token_max_ttl": "2s"})
		g.Expect(err).NotTo(HaveOccurred())
		short := *cfg
		st := tenant
		st.Vault.Role = "kauth-short"
		short.Tenant = &st
		client, login, err := app.VaultLogin(ctx, &short)
		g.Expect(err).NotTo(HaveOccurred())
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go app.KeepVaultLogin(wctx, &short, client, login, f.app.Log)
		// Well past the first token's maximum TTL: only a fresh login works.
		// Without KeepVaultLogin this fails with "permission denied".
		time.Sleep(4 * time.Second)
		_, _, err = pcrypto.NewVaultTransit(client, "transit", "kauth-data").NewDataKey(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(client.Token()).NotTo(Equal(login.Auth.ClientToken))
	})

	cfg.ServiceAccountTokenFile = otherToken
	_, err = app.VaultClient(ctx, cfg)
	g.Expect(err).To(HaveOccurred(), "a service account the role does not name")
}
