package controllers

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
)

func samplePolicy() *portalv1.AccessPolicy {
	return &portalv1.AccessPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "standard", Generation: 3},
		Spec: portalv1.AccessPolicySpec{
			Roles: []portalv1.Role{{
				Name:    "pulmonologist",
				Grants:  []portalv1.Grant{{Record: "spirometry", Actions: []string{"read", "sign"}}},
				MFA:     portalv1.MFA{Required: true, Factors: []string{"webauthn"}},
				Session: portalv1.Session{Idle: mdur(10 * time.Minute), Absolute: mdur(8 * time.Hour)},
			}},
			StepUp: portalv1.StepUp{Actions: []string{"shareRecord"},
				Window: mdur(5 * time.Minute)},
			BreakGlass: portalv1.BreakGlass{Roles: []string{"pulmonologist"},
				MaxDuration: mdur(time.Hour)},
			Proxies:                   portalv1.Proxies{MaxGrant: mdur(time.Hour)},
			EntitlementReviewInterval: mdur(90 * 24 * time.Hour),
		},
	}
}

func mdur(d time.Duration) metav1.Duration { return metav1.Duration{Duration: d} }

func TestCompilePolicy(t *testing.T) {
	for _, tc := range []struct {
		name string
		// mutate changes the valid sample policy.
		mutate func(*portalv1.AccessPolicy)
		// wantErr is a substring of the error, empty when it must compile.
		wantErr string
	}{
		{name: "valid sample compiles", mutate: func(*portalv1.AccessPolicy) {}},
		{name: "break-glass role must exist", wantErr: "policy.breakGlass.roles[0]",
			mutate: func(p *portalv1.AccessPolicy) { p.Spec.BreakGlass.Roles = []string{"nobody"} }},
		{name: "idle longer than absolute", wantErr: "policy.roles[0].session.idle",
			mutate: func(p *portalv1.AccessPolicy) { p.Spec.Roles[0].Session.Idle = mdur(9 * time.Hour) }},
		{name: "phishing resistant needs webauthn", wantErr: "policy.roles[0].mfa.factors",
			mutate: func(p *portalv1.AccessPolicy) {
				p.Spec.Roles[0].MFA = portalv1.MFA{PhishingResistant: true, Factors: []string{"totp"}}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ap := samplePolicy()
			tc.mutate(ap)
			p, err := CompilePolicy(ap)
			if tc.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tc.wantErr)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(p.Generation).To(Equal(int64(3)))
			g.Expect(p.Role("pulmonologist").Session.Idle.Duration).To(Equal(10 * time.Minute))
			g.Expect(p.Proxies.DocumentationRequired).To(BeTrue(), "safe default when unset")
		})
	}
}

func TestTenantPolicyGrantsOnlyTheTenantsKeys(t *testing.T) {
	g := NewWithT(t)
	n := VaultNamesFor("clinic")
	hcl := TenantPolicy("transit", n)
	var paths []string
	for _, line := range strings.Split(hcl, "\n") {
		if strings.HasPrefix(line, "path ") {
			paths = append(paths, strings.Trim(strings.TrimPrefix(line, "path "), `" {`))
		}
	}
	g.Expect(paths).To(ConsistOf(
		"transit/encrypt/pleura-clinic-data", "transit/decrypt/pleura-clinic-data",
		"transit/rewrap/pleura-clinic-data", "transit/hmac/pleura-clinic-data",
		"transit/hmac/pleura-clinic-data/*",
		"transit/datakey/plaintext/pleura-clinic-data", "transit/datakey/wrapped/pleura-clinic-data",
		"transit/sign/pleura-clinic-signing", "transit/sign/pleura-clinic-signing/*",
		"transit/verify/pleura-clinic-signing", "transit/verify/pleura-clinic-signing/*"))
	g.Expect(strings.Count(hcl, `capabilities = ["update"]`)).To(Equal(len(paths)))
}

func TestSummarise(t *testing.T) {
	allTrue := func(o *observation) {
		for _, s := range append(safeguards, portalv1.ConditionPortalAvailable) {
			o.set(s, true, portalv1.ReasonProvisioned, "ok")
		}
	}
	for _, tc := range []struct {
		name string
		// setup records the step results.
		setup func(o *observation)
		// phase and reason are the expected phase and Ready reason.
		phase  portalv1.TenantPhase
		reason string
	}{
		{name: "everything holds", setup: allTrue, phase: portalv1.PhaseReady,
			reason: portalv1.ReasonAllSafeguardsReady},
		{name: "no nodes keeps it provisioning", phase: portalv1.PhaseProvisioning,
			reason: portalv1.ReasonNoNodes, setup: func(o *observation) {
				allTrue(o)
				o.set(portalv1.ConditionPortalAvailable, false, portalv1.ReasonNoNodes, "x")
			}},
		{name: "vault outage degrades", phase: portalv1.PhaseDegraded,
			reason: portalv1.ReasonVaultUnavailable, setup: func(o *observation) {
				allTrue(o)
				o.set(portalv1.ConditionEncryptionKeyReady, false,
					portalv1.ReasonVaultUnavailable, "x")
			}},
		{name: "unchecked steps read as reconciling", phase: portalv1.PhaseProvisioning,
			reason: portalv1.ReasonReconciling, setup: func(*observation) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			o := newObservation(&portalv1.PortalTenant{ObjectMeta: metav1.ObjectMeta{Generation: 7}})
			tc.setup(o)
			g.Expect(o.summarise()).To(Equal(tc.phase))
			ready := o.conditions[portalv1.ConditionReady]
			g.Expect(ready.Reason).To(Equal(tc.reason))
			g.Expect(ready.ObservedGeneration).To(Equal(int64(7)))
		})
	}
}

func TestStatusKeepsTransitionTimeWhenUnchanged(t *testing.T) {
	g := NewWithT(t)
	o := newObservation(&portalv1.PortalTenant{})
	o.set(portalv1.ConditionTLSReady, true, portalv1.ReasonCertificateIssued, "ok")
	phase := o.summarise()
	first := o.status(portalv1.PortalTenantStatus{}, phase)
	old := metav1.NewTime(time.Unix(1000, 0))
	for i := range first.Conditions {
		first.Conditions[i].LastTransitionTime = old
	}
	second := o.status(first, phase)
	g.Expect(second).To(Equal(first))
}

func tenant() *portalv1.PortalTenant {
	return &portalv1.PortalTenant{
		ObjectMeta: metav1.ObjectMeta{Name: "clinic"},
		Spec: portalv1.PortalTenantSpec{
			Namespace: "tenant-clinic",
			Portal: portalv1.PortalSpec{Image: "portal:dev", Replicas: 2, Hostname: "c.example",
				Resources: portalv1.PortalResources{
					Requests: portalv1.ComputeResources{CPU: "100m", Memory: "128Mi"},
					Limits:   portalv1.ComputeResources{CPU: "1", Memory: "512Mi"}}},
		},
	}
}

func TestDeploymentIsHardened(t *testing.T) {
	g := NewWithT(t)
	d, err := deploymentFor(tenant())
	g.Expect(err).NotTo(HaveOccurred())
	pod := d.Spec.Template.Spec
	g.Expect(pod.AutomountServiceAccountToken).To(Equal(ptr.To(false)))
	g.Expect(pod.SecurityContext.RunAsNonRoot).To(Equal(ptr.To(true)))
	g.Expect(pod.SecurityContext.SeccompProfile.Type).To(
		Equal(corev1.SeccompProfileTypeRuntimeDefault))
	c := pod.Containers[0]
	g.Expect(c.SecurityContext.ReadOnlyRootFilesystem).To(Equal(ptr.To(true)))
	g.Expect(c.SecurityContext.AllowPrivilegeEscalation).To(Equal(ptr.To(false)))
	g.Expect(c.SecurityContext.Capabilities.Drop).To(ConsistOf(corev1.Capability("ALL")))
	// The names and paths the portal's configuration (portal/config) reads.
	g.Expect(c.Env).To(ContainElements(
		corev1.EnvVar{Name: "PLEURA_TENANT_FILE", Value: "/etc/pleura/config/tenant.json"},
		corev1.EnvVar{Name: "PLEURA_TLS_CERT", Value: "/etc/pleura/tls/tls.crt"},
		corev1.EnvVar{Name: "PLEURA_VAULT_AUTH", Value: "kubernetes"},
		corev1.EnvVar{Name: "PLEURA_SA_TOKEN_FILE",
			Value: "/var/run/secrets/pleura/vault/token"}))
	g.Expect(c.ReadinessProbe.HTTPGet.Port.StrVal).To(Equal("ops"))
	g.Expect(c.LivenessProbe).NotTo(BeNil())
	g.Expect(c.Resources.Limits.Memory().String()).To(Equal("512Mi"))
	g.Expect(pod.Volumes).To(ContainElements(
		HaveField("Name", "tls"), HaveField("Name", "config"), HaveField("Name", "vault-token")))
}

func TestQuotaCoversReplicasPlusSurge(t *testing.T) {
	g := NewWithT(t)
	q, err := quotaFor(tenant())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(q.Pods().Value()).To(Equal(int64(3)))
	lim := q[corev1.ResourceLimitsMemory]
	g.Expect(lim.String()).To(Equal("1536Mi"))
	g.Expect(q[corev1.ResourceServicesNodePorts]).To(Equal(q[corev1.ResourceServicesLoadBalancers]))
}
