package controllers_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
	"github.com/pleura-dev/pleura/controllers"
	"github.com/pleura-dev/pleura/internal/testenv"
)

// TestCRDValidation needs only the API server: it applies the samples, then
// checks that defaults land and that each invalid spec is rejected with a
// message naming the field.
func TestCRDValidation(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	env := testenv.StartForTest(t, testenv.Options{PleuraCRDs: true, CertManager: false})
	scheme, err := controllers.NewScheme()
	g.Expect(err).NotTo(HaveOccurred())
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())

	t.Run("samples apply and get defaults", func(t *testing.T) {
		g := NewWithT(t)
		for _, f := range []string{"config/samples/accesspolicy.yaml",
			"config/samples/portaltenants.yaml"} {
			_, err := env.ApplyFile(ctx, c, f)
			g.Expect(err).NotTo(HaveOccurred())
		}
		pt := &portalv1.PortalTenant{}
		g.Expect(c.Get(ctx, client.ObjectKey{Name: "lakeview-pulmonary"}, pt)).To(Succeed())
		g.Expect(pt.Spec.TLS.MinVersion).To(Equal("1.3"))
		g.Expect(pt.Spec.TLS.Duration.Duration).To(Equal(2160 * time.Hour))
		g.Expect(pt.Spec.DeletionPolicy).To(Equal(portalv1.DeletionRetain))
		g.Expect(pt.Spec.Encryption.TransitMount).To(Equal("transit"))
		g.Expect(pt.Spec.Portal.Resources.Limits.Memory).To(Equal("512Mi"))
		ap := &portalv1.AccessPolicy{}
		g.Expect(c.Get(ctx, client.ObjectKey{Name: "pulmonology-standard"}, ap)).To(Succeed())
		_, err := controllers.CompilePolicy(ap)
		g.Expect(err).NotTo(HaveOccurred())
	})

	for _, tc := range []struct {
		name string
		// mutate breaks a valid tenant.
		mutate func(*portalv1.PortalTenant)
		// field must appear in the API server's message.
		field string
	}{
		{"rotation period too short", func(t *portalv1.PortalTenant) {
			t.Spec.Encryption.RotationPeriod = metav1.Duration{Duration: 30 * time.Minute}
		}, "spec.encryption.rotationPeriod"},
		{"rotation period too long", func(t *portalv1.PortalTenant) {
			t.Spec.Encryption.RotationPeriod = metav1.Duration{Duration: 9000 * time.Hour}
		}, "spec.encryption.rotationPeriod"},
		{"renewBefore not shorter than duration", func(t *portalv1.PortalTenant) {
			t.Spec.TLS.Duration = metav1.Duration{Duration: 2 * time.Hour}
			t.Spec.TLS.RenewBefore = metav1.Duration{Duration: 3 * time.Hour}
		}, "spec.tls"},
		{"TLS older than 1.2", func(t *portalv1.PortalTenant) {
			t.Spec.TLS.MinVersion = "1.1"
		}, "spec.tls.minVersion"},
		{"namespace not a DNS label", func(t *portalv1.PortalTenant) {
			t.Spec.Namespace = "Tenant_Alpha"
		}, "spec.namespace"},
		{"peer with both cidr and selector", func(t *portalv1.PortalTenant) {
			t.Spec.Network.IngressFrom = []portalv1.Peer{{CIDR: "198.18.0.0/24",
				PodSelector: &metav1.LabelSelector{}}}
		}, "spec.network.ingressFrom[0]"},
		{"egress cidr malformed", func(t *portalv1.PortalTenant) {
			t.Spec.Network.Egress[0].To.CIDR = "198.18.0.300/24"
		}, "spec.network.egress[0].to.cidr"},
		{"requests above limits", func(t *portalv1.PortalTenant) {
			t.Spec.Portal.Resources = portalv1.PortalResources{
				Requests: portalv1.ComputeResources{CPU: "2", Memory: "128Mi"},
				Limits:   portalv1.ComputeResources{CPU: "1", Memory: "512Mi"}}
		}, "spec.portal.resources"},
		{"unknown deletion policy", func(t *portalv1.PortalTenant) {
			t.Spec.DeletionPolicy = "Shred"
		}, "spec.deletionPolicy"},
		{"too many replicas", func(t *portalv1.PortalTenant) {
			t.Spec.Portal.Replicas = 500
		}, "spec.portal.replicas"},
		{"missing hostname", func(t *portalv1.PortalTenant) {
			t.Spec.Portal.Hostname = ""
		}, "spec.portal.hostname"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			pt := newTenant("invalid", "any")
			tc.mutate(pt)
			err := c.Create(ctx, pt)
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
			g.Expect(err.Error()).To(ContainSubstring(tc.field))
		})
	}

	t.Run("namespace is immutable", func(t *testing.T) {
		g := NewWithT(t)
		pt := &portalv1.PortalTenant{}
		g.Expect(c.Get(ctx, client.ObjectKey{Name: "northside-lung"}, pt)).To(Succeed())
		pt.Spec.Namespace = "tenant-elsewhere"
		err := c.Update(ctx, pt)
		g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
		g.Expect(err.Error()).To(ContainSubstring("spec.namespace"))
		g.Expect(err.Error()).To(ContainSubstring("immutable"))
	})

	t.Run("access policy rules", func(t *testing.T) {
		g := NewWithT(t)
		ap := newPolicy("bad")
		ap.Spec.Roles[1].MFA = portalv1.MFA{PhishingResistant: true, Factors: []string{"totp"}}
		ap.Spec.Roles[0].Session = portalv1.Session{Idle: metav1.Duration{Duration: time.Hour},
			Absolute: metav1.Duration{Duration: 30 * time.Minute}}
		err := c.Create(ctx, ap)
		g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
		g.Expect(err.Error()).To(ContainSubstring("spec.roles[1].mfa"))
		g.Expect(err.Error()).To(ContainSubstring("spec.roles[0].session"))
	})
}
