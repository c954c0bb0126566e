package controllers_test

import (
	"encoding/json"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	vaultapi "github.com/hashicorp/vault/api"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
	"github.com/pleura-dev/pleura/controllers"
	"github.com/pleura-dev/pleura/internal/tenantconfig"
)

var _ = Describe("PortalTenant", Ordered, func() {
	const policy = "shared"
	BeforeAll(func(ctx SpecContext) {
		Expect(k8s.Create(ctx, newPolicy(policy))).To(Succeed())
		Expect(k8s.Create(ctx, newTenant("alpha", policy))).To(Succeed())
		Expect(k8s.Create(ctx, newTenant("beta", policy))).To(Succeed())
		waitSafeguards(ctx, "alpha")
		waitSafeguards(ctx, "beta")
	})

	It("creates every object with its settings", func(ctx SpecContext) {
		t := waitSafeguards(ctx, "alpha")
		ns := t.Spec.Namespace
		get := func(name string, obj client.Object) {
			GinkgoHelper()
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj)).To(Succeed())
			Expect(metav1.IsControlledBy(obj, t)).To(BeTrue(), "%T %s not owned", obj, name)
		}

		nsObj := &corev1.Namespace{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: ns}, nsObj)).To(Succeed())
		Expect(nsObj.Labels).To(HaveKeyWithValue("pod-security.kubernetes.io/enforce", "restricted"))
		Expect(nsObj.Labels).To(HaveKeyWithValue(portalv1.TenantLabel, "alpha"))

		sa := &corev1.ServiceAccount{}
		get("portal", sa)
		Expect(sa.AutomountServiceAccountToken).To(Equal(ptr.To(false)))
		quota := &corev1.ResourceQuota{}
		get("portal-quota", quota)
		Expect(quota.Spec.Hard.Pods().Value()).To(Equal(int64(3)))
		Expect(quota.Spec.Hard).To(HaveKey(corev1.ResourceServicesNodePorts))
		get("portal-limits", &corev1.LimitRange{})

		deny := &networkingv1.NetworkPolicy{}
		get("default-deny", deny)
		Expect(deny.Spec.PodSelector.MatchLabels).To(BeEmpty())
		Expect(deny.Spec.PolicyTypes).To(ConsistOf(networkingv1.PolicyTypeIngress,
			networkingv1.PolicyTypeEgress))
		Expect(deny.Spec.Ingress).To(BeEmpty())
		Expect(deny.Spec.Egress).To(BeEmpty())
		dns := &networkingv1.NetworkPolicy{}
		get("allow-dns", dns)
		Expect(dns.Spec.Egress[0].Ports).To(HaveLen(2))
		egress := &networkingv1.NetworkPolicy{}
		get("allow-egress", egress)
		Expect(egress.Spec.Egress).To(HaveLen(1))
		Expect(egress.Spec.Egress[0].To[0].IPBlock.CIDR).To(Equal("198.18.0.10/32"))
		ingress := &networkingv1.NetworkPolicy{}
		get("allow-portal-ingress", ingress)
		Expect(ingress.Spec.PolicyTypes).To(ConsistOf(networkingv1.PolicyTypeIngress))

		cert := &cmapi.Certificate{}
		get("portal-tls", cert)
		Expect(cert.Spec.PrivateKey.RotationPolicy).To(Equal(cmapi.RotationPolicyAlways))
		Expect(cert.Spec.IssuerRef.Name).To(Equal("pleura-local-ca"))
		Expect(cert.Spec.DNSNames).To(ContainElement("alpha.portal.example"))
		Expect(t.Status.TLS.NotAfter).NotTo(BeNil())
		Expect(t.Status.TLS.RenewalTime).NotTo(BeNil())

		cm := &corev1.ConfigMap{}
		get("portal-config", cm)
		cfg, err := tenantconfig.Parse([]byte(cm.Data[tenantconfig.ConfigMapKey]))
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.Tenant.Namespace).To(Equal(ns))
		Expect(cfg.Vault.DataKey).To(Equal("pleura-alpha-data"))
		Expect(cfg.Policy.Name).To(Equal(policy))
		Expect(cfg.Settings.MinTLSVersion).To(Equal("1.3"), "TLS 1.3 by default")

		dep := &appsv1.Deployment{}
		get("portal", dep)
		c := dep.Spec.Template.Spec.Containers[0]
		Expect(c.SecurityContext.ReadOnlyRootFilesystem).To(Equal(ptr.To(true)))
		Expect(c.SecurityContext.AllowPrivilegeEscalation).To(Equal(ptr.To(false)))
		Expect(c.SecurityContext.Capabilities.Drop).To(ConsistOf(corev1.Capability("ALL")))
		Expect(dep.Spec.Template.Spec.SecurityContext.SeccompProfile.Type).To(
			Equal(corev1.SeccompProfileTypeRuntimeDefault))
		Expect(*dep.Spec.Replicas).To(Equal(int32(2)), "defaulted by the CRD")
		get("portal", &policyv1.PodDisruptionBudget{})
		get("portal", &corev1.Service{})

		By("reporting keys and availability in status")
		Expect(t.Status.Encryption.KeyVersion).To(Equal(int64(1)))
		Expect(t.Status.Encryption.MinDecryptionVersion).To(Equal(int64(1)))
		Expect(t.Status.Encryption.NextRotationDue.Sub(t.Status.Encryption.LastRotation.Time)).
			To(Equal(2160 * time.Hour))
		Expect(t.Status.AccessPolicy.Name).To(Equal(policy))
		Expect(t.Status.Phase).To(Equal(portalv1.PhaseProvisioning))
		expectCondition(Default, t, portalv1.ConditionPortalAvailable, metav1.ConditionFalse,
			portalv1.ReasonNoNodes)
		expectCondition(Default, t, portalv1.ConditionReady, metav1.ConditionFalse,
			portalv1.ReasonNoNodes)

		By("configuring the Vault keys, policy and role")
		data := readKey(ctx, Default, "pleura-alpha-data")
		Expect(data["type"]).To(Equal("aes256-gcm96"))
		Expect(data["exportable"]).To(BeFalse())
		Expect(data["deletion_allowed"]).To(BeFalse())
		Expect(data["auto_rotate_period"]).To(BeEquivalentTo(json.Number("7776000")))
		Expect(readKey(ctx, Default, "pleura-alpha-signing")["type"]).To(Equal("ed25519"))
		rules, err := root.Sys().GetPolicyWithContext(ctx, "pleura-tenant-alpha")
		Expect(err).NotTo(HaveOccurred())
		Expect(rules).To(Equal(controllers.TenantPolicy("transit",
			controllers.VaultNamesFor("alpha"))))
		role, err := root.Logical().ReadWithContext(ctx, "auth/kubernetes/role/pleura-alpha")
		Expect(err).NotTo(HaveOccurred())
		Expect(role.Data["bound_service_account_namespaces"]).To(ConsistOf("tenant-alpha"))
		Expect(role.Data["bound_service_account_names"]).To(ConsistOf("portal"))
	})

	It("lets a tenant's portal use its own keys and refuses another tenant's", func(ctx SpecContext) {
		c, err := tenantVault(ctx, "alpha", "tenant-alpha")
		Expect(err).NotTo(HaveOccurred())
		ct, err := encrypt(ctx, c, "pleura-alpha-data", "FEV1 2.31 L")
		Expect(err).NotTo(HaveOccurred())
		Expect(decrypt(ctx, c, "pleura-alpha-data", ct)).To(Equal("FEV1 2.31 L"))
		_, err = c.Logical().WriteWithContext(ctx, "transit/sign/pleura-alpha-signing",
			map[string]any{"input": "Y2hlY2twb2ludA=="})
		Expect(err).NotTo(HaveOccurred())

		_, err = encrypt(ctx, c, "pleura-beta-data", "FEV1 2.31 L")
		Expect(err).To(MatchError(ContainSubstring("permission denied")))
		_, err = c.Logical().ReadWithContext(ctx, "transit/keys/pleura-alpha-data")
		Expect(err).To(MatchError(ContainSubstring("permission denied")))
		_, err = c.Logical().WriteWithContext(ctx, "transit/keys/pleura-alpha-data/rotate", nil)
		Expect(err).To(MatchError(ContainSubstring("permission denied")))

		By("refusing beta's service account at alpha's role")
		_, err = tenantVault(ctx, "alpha", "tenant-beta")
		Expect(err).To(HaveOccurred())
	})

	It("gives the operator's own Vault token no use of tenant keys", func(ctx SpecContext) {
		tok, err := root.Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{
			Policies: []string{"pleura-operator"}, TTL: "5m", NoDefaultPolicy: true})
		Expect(err).NotTo(HaveOccurred())
		op, err := root.Clone()
		Expect(err).NotTo(HaveOccurred())
		op.SetToken(tok.Auth.ClientToken)
		_, err = encrypt(ctx, op, "pleura-alpha-data", "FEV1 2.31 L")
		Expect(err).To(MatchError(ContainSubstring("permission denied")))
		_, err = op.Logical().WriteWithContext(ctx, "transit/keys/pleura-alpha-data/trim",
			map[string]any{"min_available_version": 1})
		Expect(err).To(MatchError(ContainSubstring("permission denied")))
		_, err = op.Logical().ReadWithContext(ctx, "transit/export/encryption-key/pleura-alpha-data")
		Expect(err).To(MatchError(ContainSubstring("permission denied")))
		_, err = op.Logical().WriteWithContext(ctx, "transit/keys/pleura-alpha-data/config",
			map[string]any{"min_decryption_version": 2})
		Expect(err).To(MatchError(ContainSubstring("permission denied")))
		_, err = op.Logical().WriteWithContext(ctx, "transit/keys/someone-else",
			map[string]any{"type": "aes256-gcm96"})
		Expect(err).To(MatchError(ContainSubstring("permission denied")))
	})

	It("restores an owned object that is deleted or edited", func(ctx SpecContext) {
		deny := &networkingv1.NetworkPolicy{}
		key := client.ObjectKey{Namespace: "tenant-alpha", Name: "default-deny"}
		Expect(k8s.Get(ctx, key, deny)).To(Succeed())
		uid := deny.UID
		Expect(k8s.Delete(ctx, deny)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, key, deny)).To(Succeed())
			g.Expect(deny.UID).NotTo(Equal(uid))
		}, convergeBound, poll).Should(Succeed())

		dep := &appsv1.Deployment{}
		dkey := client.ObjectKey{Namespace: "tenant-alpha", Name: "portal"}
		Expect(k8s.Get(ctx, dkey, dep)).To(Succeed())
		dep.Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = ptr.To(false)
		Expect(k8s.Update(ctx, dep)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, dkey, dep)).To(Succeed())
			g.Expect(dep.Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem).
				To(Equal(ptr.To(true)))
		}, convergeBound, poll).Should(Succeed())
	})

	It("restores Vault objects deleted out of band within the resync period", func(ctx SpecContext) {
		_, err := root.Logical().DeleteWithContext(ctx, "auth/kubernetes/role/pleura-beta")
		Expect(err).NotTo(HaveOccurred())
		Expect(root.Sys().DeletePolicyWithContext(ctx, "pleura-tenant-beta")).To(Succeed())
		Eventually(func(g Gomega) {
			role, err := root.Logical().ReadWithContext(ctx, "auth/kubernetes/role/pleura-beta")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(role).NotTo(BeNil())
			rules, err := root.Sys().GetPolicyWithContext(ctx, "pleura-tenant-beta")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(rules).NotTo(BeEmpty())
		}, convergeBound, poll).Should(Succeed())
	})

	It("rotates the data key when the rotate-key annotation changes", func(ctx SpecContext) {
		t := getTenant(ctx, Default, "alpha")
		before := t.Status.Encryption.KeyVersion
		patch := client.MergeFrom(t.DeepCopy())
		t.Annotations = map[string]string{portalv1.RotateKeyAnnotation: "first"}
		Expect(k8s.Patch(ctx, t, patch)).To(Succeed())
		Eventually(func(g Gomega) {
			t := getTenant(ctx, g, "alpha")
			g.Expect(t.Status.Encryption.RotateKeyAcknowledged).To(Equal("first"))
			g.Expect(t.Status.Encryption.KeyVersion).To(Equal(before + 1))
		}, convergeBound, poll).Should(Succeed())
		Expect(readKey(ctx, Default, "pleura-alpha-data")["latest_version"]).
			To(BeEquivalentTo(json.Number(itoa(before + 1))))
	})

	It("propagates a policy change to every tenant without touching pods", func(ctx SpecContext) {
		dep := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: "tenant-alpha", Name: "portal"},
			dep)).To(Succeed())
		template := dep.Spec.Template.DeepCopy()
		ap := &portalv1.AccessPolicy{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: policy}, ap)).To(Succeed())
		ap.Spec.DownloadsPerHour = 7
		Expect(k8s.Update(ctx, ap)).To(Succeed())
		gen := ap.Generation
		Eventually(func(g Gomega) {
			for _, name := range []string{"alpha", "beta"} {
				cm := &corev1.ConfigMap{}
				g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: "tenant-" + name,
					Name: "portal-config"}, cm)).To(Succeed())
				cfg, err := tenantconfig.Parse([]byte(cm.Data[tenantconfig.ConfigMapKey]))
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(cfg.Policy.Generation).To(Equal(gen))
				g.Expect(cfg.Policy.DownloadsPerHour).To(Equal(int32(7)))
			}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: policy}, ap)).To(Succeed())
			g.Expect(ap.Status.EnforcedBy).To(ConsistOf(
				portalv1.PolicyEnforcement{Tenant: "alpha", LoadedGeneration: gen},
				portalv1.PolicyEnforcement{Tenant: "beta", LoadedGeneration: gen}))
		}, convergeBound, poll).Should(Succeed())
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: "tenant-alpha", Name: "portal"},
			dep)).To(Succeed())
		Expect(dep.Spec.Template).To(Equal(*template))
	})

	It("withdraws exposure when TLS fails and restores it when the issuer returns",
		func(ctx SpecContext) {
			t := getTenant(ctx, Default, "beta")
			patch := client.MergeFrom(t.DeepCopy())
			t.Spec.TLS.IssuerRef = &portalv1.IssuerReference{Name: "beta-ca"}
			Expect(k8s.Patch(ctx, t, patch)).To(Succeed())
			svc := client.ObjectKey{Namespace: "tenant-beta", Name: "portal"}
			Eventually(func(g Gomega) {
				t := getTenant(ctx, g, "beta")
				expectCondition(g, t, portalv1.ConditionTLSReady, metav1.ConditionFalse,
					portalv1.ReasonIssuerNotFound)
				g.Expect(t.Status.Exposed).To(BeFalse())
				g.Expect(t.Status.Phase).To(Equal(portalv1.PhaseDegraded))
				err := k8s.Get(ctx, svc, &corev1.Service{})
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
				err = k8s.Get(ctx, client.ObjectKey{Namespace: "tenant-beta",
					Name: "allow-portal-ingress"}, &networkingv1.NetworkPolicy{})
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
			}, convergeBound, poll).Should(Succeed())

			By("creating the issuer, which the tenant picks up by itself")
			Expect(k8s.Create(ctx, &cmapi.ClusterIssuer{
				ObjectMeta: metav1.ObjectMeta{Name: "beta-ca"},
				Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{
					CA: &cmapi.CAIssuer{SecretName: "pleura-local-ca"}}},
			})).To(Succeed())
			waitSafeguards(ctx, "beta")
			Expect(k8s.Get(ctx, svc, &corev1.Service{})).To(Succeed())
		})

	It("shows a Vault outage as a reason, fails closed and recovers by itself",
		func(ctx SpecContext) {
			opVault.setOutage(true)
			DeferCleanup(func() { opVault.setOutage(false) })
			Eventually(func(g Gomega) {
				t := getTenant(ctx, g, "alpha")
				expectCondition(g, t, portalv1.ConditionEncryptionKeyReady,
					metav1.ConditionFalse, portalv1.ReasonVaultUnavailable)
				g.Expect(t.Status.Exposed).To(BeFalse())
				// The last known key facts survive the outage.
				g.Expect(t.Status.Encryption.KeyVersion).To(BeNumerically(">=", 1))
			}, convergeBound, poll).Should(Succeed())
			opVault.setOutage(false)
			waitSafeguards(ctx, "alpha")
		})

	It("exports tenants by phase, conditions, key age and certificate expiry",
		func(ctx SpecContext) {
			waitSafeguards(ctx, "alpha")
			families, err := ctrlmetrics.Registry.Gather()
			Expect(err).NotTo(HaveOccurred())
			byName := map[string]*dto.MetricFamily{}
			for _, f := range families {
				byName[f.GetName()] = f
			}
			value := func(name string, labels map[string]string) float64 {
				GinkgoHelper()
				Expect(byName).To(HaveKey(name))
			next:
				for _, m := range byName[name].GetMetric() {
					for _, l := range m.GetLabel() {
						if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
							continue next
						}
					}
					return m.GetGauge().GetValue()
				}
				Fail("no sample of " + name)
				return 0
			}
			Expect(value("pleura_tenant_condition", map[string]string{"tenant": "alpha",
				"type": "TLSReady", "status": "True"})).To(Equal(1.0))
			Expect(value("pleura_tenants", map[string]string{"phase": "Provisioning"})).
				To(BeNumerically(">=", 2))
			Expect(value("pleura_tenant_key_age_seconds",
				map[string]string{"tenant": "alpha"})).To(BeNumerically(">=", 0))
			t := getTenant(ctx, Default, "alpha")
			Expect(value("pleura_tenant_certificate_expiry_timestamp_seconds",
				map[string]string{"tenant": "alpha"})).
				To(Equal(float64(t.Status.TLS.NotAfter.Unix())))
		})

	It("makes no API writes once converged", func(ctx SpecContext) {
		waitSafeguards(ctx, "alpha")
		waitSafeguards(ctx, "beta")
		// Let queued events drain, then watch a window longer than two
		// Vault resyncs.
		Eventually(func() int64 {
			before := writes.n.Load()
			time.Sleep(2 * testResync)
			return writes.n.Load() - before
		}, convergeBound, time.Millisecond).Should(BeZero())
		before := writes.n.Load()
		time.Sleep(3 * testResync)
		Expect(writes.n.Load() - before).To(BeZero())
	})
})

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
