package controllers_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
)

var _ = Describe("PortalTenant lifecycle", func() {
	It("waits for a missing AccessPolicy and recovers when it appears", func(ctx SpecContext) {
		Expect(k8s.Create(ctx, newTenant("gamma", "late-policy"))).To(Succeed())
		Eventually(func(g Gomega) {
			t := getTenant(ctx, g, "gamma")
			expectCondition(g, t, portalv1.ConditionAccessPolicyLoaded, metav1.ConditionFalse,
				portalv1.ReasonAccessPolicyNotFound)
			g.Expect(t.Status.Exposed).To(BeFalse())
		}, convergeBound, poll).Should(Succeed())
		Expect(k8s.Create(ctx, newPolicy("late-policy"))).To(Succeed())
		waitSafeguards(ctx, "gamma")
	})

	BeforeEach(func(ctx SpecContext) {
		// Every spec below but the first shares one policy, created once.
		err := k8s.Create(ctx, newPolicy("lifecycle"))
		if !apierrors.IsAlreadyExists(err) {
			Expect(err).NotTo(HaveOccurred())
		}
	})

	It("keeps keys and namespace on Retain deletion and removes role, policy and workload",
		func(ctx SpecContext) {
			Expect(k8s.Create(ctx, newTenant("retained", "lifecycle"))).To(Succeed())
			waitSafeguards(ctx, "retained")
			t := getTenant(ctx, Default, "retained")
			Expect(k8s.Delete(ctx, t)).To(Succeed())
			Eventually(func() bool {
				return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Name: "retained"}, t))
			}, convergeBound, poll).Should(BeTrue())

			Expect(readKey(ctx, Default, "pleura-retained-data")).NotTo(BeNil())
			Expect(readKey(ctx, Default, "pleura-retained-signing")).NotTo(BeNil())
			role, err := root.Logical().ReadWithContext(ctx, "auth/kubernetes/role/pleura-retained")
			Expect(err).NotTo(HaveOccurred())
			Expect(role).To(BeNil())
			rules, err := root.Sys().GetPolicyWithContext(ctx, "pleura-tenant-retained")
			Expect(err).NotTo(HaveOccurred())
			Expect(rules).To(BeEmpty())
			err = k8s.Get(ctx, client.ObjectKey{Namespace: "tenant-retained", Name: "portal"},
				&appsv1.Deployment{})
			Expect(apierrors.IsNotFound(err)).To(BeTrue())
			// The namespace (with the database Secret a clinic keeps there)
			// survives garbage collection.
			Consistently(func(g Gomega) {
				ns := &corev1.Namespace{}
				g.Expect(k8s.Get(ctx, client.ObjectKey{Name: "tenant-retained"}, ns)).To(Succeed())
				g.Expect(ns.DeletionTimestamp).To(BeNil())
			}, 3*poll*4, poll).Should(Succeed())
		})

	It("crypto-shreds only once confirmed, after which old ciphertext is unreadable",
		func(ctx SpecContext) {
			t := newTenant("shredded", "lifecycle")
			t.Spec.DeletionPolicy = portalv1.DeletionCryptoShred
			Expect(k8s.Create(ctx, t)).To(Succeed())
			waitSafeguards(ctx, "shredded")
			portal, err := tenantVault(ctx, "shredded", "tenant-shredded")
			Expect(err).NotTo(HaveOccurred())
			ct, err := encrypt(ctx, portal, "pleura-shredded-data", "SpO2 88% at rest")
			Expect(err).NotTo(HaveOccurred())

			Expect(k8s.Delete(ctx, t)).To(Succeed())
			Eventually(func(g Gomega) {
				t := getTenant(ctx, g, "shredded")
				g.Expect(t.Status.Phase).To(Equal(portalv1.PhaseDeleting))
				c := condition(t, portalv1.ConditionReady)
				g.Expect(c.Reason).To(Equal(portalv1.ReasonCryptoShredNotConfirmed))
				g.Expect(c.Message).To(ContainSubstring(portalv1.ConfirmCryptoShredAnnotation))
			}, convergeBound, poll).Should(Succeed())
			Expect(decrypt(ctx, root, "pleura-shredded-data", ct)).To(Equal("SpO2 88% at rest"))

			By("confirming with the annotation")
			t = getTenant(ctx, Default, "shredded")
			patch := client.MergeFrom(t.DeepCopy())
			t.Annotations = map[string]string{portalv1.ConfirmCryptoShredAnnotation: "shredded"}
			Expect(k8s.Patch(ctx, t, patch)).To(Succeed())
			Eventually(func() bool {
				return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Name: "shredded"}, t))
			}, convergeBound, poll).Should(BeTrue())
			Expect(readKey(ctx, Default, "pleura-shredded-data")).To(BeNil())
			Expect(readKey(ctx, Default, "pleura-shredded-signing")).To(BeNil())
			_, err = decrypt(ctx, root, "pleura-shredded-data", ct)
			Expect(err).To(HaveOccurred())
		})

	It("converges without duplicates when the operator restarts mid-reconcile",
		func(ctx SpecContext) {
			operator.stop()
			Expect(k8s.Create(ctx, newTenant("restarted", "lifecycle"))).To(Succeed())
			operator = startOperator()
			Eventually(func() error {
				return k8s.Get(ctx, client.ObjectKey{Name: "tenant-restarted"}, &corev1.Namespace{})
			}, convergeBound, poll/10).Should(Succeed())
			operator.stop()
			operator = startOperator()
			t := waitSafeguards(ctx, "restarted")
			Expect(t.Status.Encryption.KeyVersion).To(Equal(int64(1)))
			ns := client.InNamespace("tenant-restarted")
			owned := client.MatchingLabels{portalv1.TenantLabel: "restarted"}
			for _, list := range []client.ObjectList{&corev1.ServiceAccountList{},
				&corev1.ConfigMapList{}, &appsv1.DeploymentList{}, &corev1.ServiceList{}} {
				Expect(k8s.List(ctx, list, ns, owned)).To(Succeed())
				Expect(meta.LenList(list)).To(Equal(1), "%T", list)
			}
			keys, err := root.Logical().ListWithContext(ctx, "transit/keys")
			Expect(err).NotTo(HaveOccurred())
			n := 0
			for _, k := range keys.Data["keys"].([]any) {
				if strings.HasPrefix(k.(string), "pleura-restarted-") {
					n++
				}
			}
			Expect(n).To(Equal(2))
		})

	It("refuses a namespace that belongs to something else", func(ctx SpecContext) {
		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: "tenant-squatter"}})).To(Succeed())
		Expect(k8s.Create(ctx, newTenant("squatter", "lifecycle"))).To(Succeed())
		Eventually(func(g Gomega) {
			t := getTenant(ctx, g, "squatter")
			expectCondition(g, t, portalv1.ConditionNamespaceReady, metav1.ConditionFalse,
				portalv1.ReasonNamespaceConflict)
		}, convergeBound, poll).Should(Succeed())
		ns := &corev1.Namespace{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: "tenant-squatter"}, ns)).To(Succeed())
		Expect(ns.Labels).NotTo(HaveKey(portalv1.TenantLabel))

	})

	It("refuses a hostname another tenant serves, and serves it once that tenant is gone",
		func(ctx SpecContext) {
			Expect(k8s.Create(ctx, newTenant("first-host", "lifecycle"))).To(Succeed())
			first := waitSafeguards(ctx, "first-host")
			second := newTenant("second-host", "lifecycle")
			second.Spec.Portal.Hostname = first.Spec.Portal.Hostname
			Expect(k8s.Create(ctx, second)).To(Succeed())
			Eventually(func(g Gomega) {
				t := getTenant(ctx, g, "second-host")
				expectCondition(g, t, portalv1.ConditionTLSReady, metav1.ConditionFalse,
					portalv1.ReasonHostnameConflict)
				g.Expect(condition(t, portalv1.ConditionTLSReady).Message).To(
					ContainSubstring("PortalTenant first-host"))
				g.Expect(t.Status.Exposed).To(BeFalse())
			}, convergeBound, poll).Should(Succeed())
			// No certificate was requested for the second tenant.
			Expect(apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{
				Namespace: second.Spec.Namespace, Name: "portal-tls"},
				&corev1.Secret{}))).To(BeTrue())
			// The first tenant keeps its name and its exposure.
			waitSafeguards(ctx, "first-host")

			Expect(k8s.Delete(ctx, first)).To(Succeed())
			Eventually(func(g Gomega) {
				t := getTenant(ctx, g, "second-host")
				expectCondition(g, t, portalv1.ConditionTLSReady, metav1.ConditionTrue,
					portalv1.ReasonCertificateIssued)
			}, convergeBound, poll).Should(Succeed())
		})

	It("deletes a tenant that lost a namespace conflict without touching the owner's objects",
		func(ctx SpecContext) {
			Expect(k8s.Create(ctx, newTenant("owner", "lifecycle"))).To(Succeed())
			waitSafeguards(ctx, "owner")
			intruder := newTenant("intruder", "lifecycle")
			intruder.Spec.Namespace = "tenant-owner"
			intruder.Spec.DeletionPolicy = portalv1.DeletionCryptoShred
			intruder.Annotations = map[string]string{
				portalv1.ConfirmCryptoShredAnnotation: "intruder"}
			Expect(k8s.Create(ctx, intruder)).To(Succeed())
			Eventually(func(g Gomega) {
				t := getTenant(ctx, g, "intruder")
				expectCondition(g, t, portalv1.ConditionNamespaceReady, metav1.ConditionFalse,
					portalv1.ReasonNamespaceConflict)
				g.Expect(condition(t, portalv1.ConditionNamespaceReady).Message).To(
					ContainSubstring("PortalTenant owner"))
			}, convergeBound, poll).Should(Succeed())

			Expect(k8s.Delete(ctx, intruder)).To(Succeed())
			Eventually(func() bool {
				return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Name: "intruder"},
					intruder))
			}, convergeBound, poll).Should(BeTrue())
			ns := &corev1.Namespace{}
			Expect(k8s.Get(ctx, client.ObjectKey{Name: "tenant-owner"}, ns)).To(Succeed())
			Expect(ns.DeletionTimestamp).To(BeNil())
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: "tenant-owner", Name: "portal"},
				&corev1.Service{})).To(Succeed())
			waitSafeguards(ctx, "owner")
		})
})
