package controllers_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
	"github.com/pleura-dev/pleura/controllers"
)

var safeguardTypes = []string{portalv1.ConditionNamespaceReady,
	portalv1.ConditionNetworkIsolated, portalv1.ConditionEncryptionKeyReady,
	portalv1.ConditionTLSReady, portalv1.ConditionAccessPolicyLoaded}

func newPolicy(name string) *portalv1.AccessPolicy {
	return &portalv1.AccessPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: portalv1.AccessPolicySpec{
			Roles: []portalv1.Role{
				{Name: "patient", Grants: []portalv1.Grant{
					{Record: "spirometry", Actions: []string{"read"}}}},
				{Name: "pulmonologist", MFA: portalv1.MFA{Required: true,
					Factors: []string{"webauthn"}, PhishingResistant: true}},
			},
			BreakGlass: portalv1.BreakGlass{Roles: []string{"pulmonologist"}},
		},
	}
}

func newTenant(name, policy string) *portalv1.PortalTenant {
	return &portalv1.PortalTenant{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: portalv1.PortalTenantSpec{
			DisplayName:     "Clinic " + name,
			Namespace:       "tenant-" + name,
			AccessPolicyRef: portalv1.PolicyReference{Name: policy},
			Portal: portalv1.PortalSpec{Image: "pleura/portal:test",
				Hostname: name + ".portal.example"},
			Network: portalv1.NetworkSpec{Egress: []portalv1.EgressRule{{Name: "vault",
				Purpose: portalv1.EgressVault, To: portalv1.Peer{CIDR: "198.18.0.10/32"},
				Ports: []int32{8200}}}},
		},
	}
}

func getTenant(ctx context.Context, g Gomega, name string) *portalv1.PortalTenant {
	t := &portalv1.PortalTenant{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, t)).To(Succeed())
	return t
}

func condition(t *portalv1.PortalTenant, typ string) metav1.Condition {
	if c := meta.FindStatusCondition(t.Status.Conditions, typ); c != nil {
		return *c
	}
	return metav1.Condition{Type: typ}
}

// haveCondition matches a tenant whose condition typ has status and reason.
func expectCondition(g Gomega, t *portalv1.PortalTenant, typ string, status metav1.ConditionStatus,
	reason string) {
	c := condition(t, typ)
	g.ExpectWithOffset(1, c.Status).To(Equal(status), "%s: %s %s", typ, c.Reason, c.Message)
	g.ExpectWithOffset(1, c.Reason).To(Equal(reason), "%s: %s", typ, c.Message)
	g.ExpectWithOffset(1, c.ObservedGeneration).To(Equal(t.Generation))
}

// waitSafeguards waits until every safeguard of the tenant is True.
func waitSafeguards(ctx context.Context, name string) *portalv1.PortalTenant {
	var t *portalv1.PortalTenant
	EventuallyWithOffset(1, func(g Gomega) {
		t = getTenant(ctx, g, name)
		for _, typ := range safeguardTypes {
			c := condition(t, typ)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "%s: %s %s", typ, c.Reason,
				c.Message)
		}
		g.Expect(t.Status.Exposed).To(BeTrue())
	}, convergeBound, poll).Should(Succeed())
	return t
}

// tenantVault logs in as the tenant's portal would: a TokenRequest token
// for its service account with audience "vault", exchanged at the
// tenant's Kubernetes auth role.
func tenantVault(ctx context.Context, tenant, namespace string) (*vaultapi.Client, error) {
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		return nil, err
	}
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, "portal",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			Audiences: []string{controllers.VaultAudience}}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("requesting token: %w", err)
	}
	c, err := vaultapi.NewClient(&vaultapi.Config{Address: env.Vault.Addr,
		Timeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	s, err := c.Logical().WriteWithContext(ctx, "auth/kubernetes/login", map[string]any{
		"role": controllers.VaultNamesFor(tenant).Role, "jwt": tr.Status.Token})
	if err != nil {
		return nil, fmt.Errorf("logging in: %w", err)
	}
	c.SetToken(s.Auth.ClientToken)
	return c, nil
}

func encrypt(ctx context.Context, c *vaultapi.Client, key, text string) (string, error) {
	s, err := c.Logical().WriteWithContext(ctx, "transit/encrypt/"+key,
		map[string]any{"plaintext": base64.StdEncoding.EncodeToString([]byte(text))})
	if err != nil {
		return "", err
	}
	return s.Data["ciphertext"].(string), nil
}

func decrypt(ctx context.Context, c *vaultapi.Client, key, ciphertext string) (string, error) {
	s, err := c.Logical().WriteWithContext(ctx, "transit/decrypt/"+key,
		map[string]any{"ciphertext": ciphertext})
	if err != nil {
		return "", err
	}
	b, err := base64.StdEncoding.DecodeString(s.Data["plaintext"].(string))
	return string(b), err
}

func readKey(ctx context.Context, g Gomega, name string) map[string]any {
	s, err := root.Logical().ReadWithContext(ctx, "transit/keys/"+name)
	g.Expect(err).NotTo(HaveOccurred())
	if s == nil {
		return nil
	}
	return s.Data
}
