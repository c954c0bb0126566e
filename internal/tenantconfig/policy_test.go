package tenantconfig

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func d(s string) Duration {
	v, _ := time.ParseDuration(s)
	return Duration{v}
}

func samplePolicy() Policy {
	return Policy{
		Name: "lung-clinics", Generation: 3,
		Roles: []Role{
			{Name: "patient",
				Grants:  []Grant{{Record: RecordSpirometry, Actions: []Action{ActionRead}}},
				MFA:     MFA{Factors: []Factor{FactorTOTP, FactorWebAuthn}},
				Session: SessionLimits{Idle: d("30m"), Absolute: d("12h")}},
			{Name: "billing",
				Grants: []Grant{{Record: RecordOxygenOrder, Actions: []Action{ActionRead},
					Fields: []string{"orderCode", "device"}}},
				MFA:     MFA{Required: true, Factors: []Factor{FactorTOTP, FactorWebAuthn}},
				Session: SessionLimits{Idle: d("15m"), Absolute: d("8h")}},
			{Name: "pulmonologist",
				Grants: []Grant{{Record: RecordOxygenOrder,
					Actions: []Action{ActionRead, ActionWrite, ActionSign}}},
				MFA: MFA{Required: true, PhishingResistant: true,
					Factors: []Factor{FactorTOTP, FactorWebAuthn}},
				Session: SessionLimits{Idle: d("10m"), Absolute: d("10h")}},
		},
		StepUp: StepUp{Actions: []StepUpAction{StepUpChangeContact}, Window: d("5m")},
	}
}

func TestEffectiveTakesTheStrictestRules(t *testing.T) {
	p := samplePolicy()
	cases := map[string]struct {
		// roles held by the person.
		roles []string
		// wantMFA, wantPR, wantFactors, wantIdle, wantAbs: the combined rules.
		wantMFA     bool
		wantPR      bool
		wantFactors []Factor
		wantIdle    time.Duration
		wantAbs     time.Duration
	}{
		"patient alone": {roles: []string{"patient"}, wantFactors: []Factor{FactorTOTP,
			FactorWebAuthn}, wantIdle: 30 * time.Minute, wantAbs: 12 * time.Hour},
		"patient and billing": {roles: []string{"patient", "billing"}, wantMFA: true,
			wantFactors: []Factor{FactorTOTP, FactorWebAuthn}, wantIdle: 15 * time.Minute,
			wantAbs: 8 * time.Hour},
		"billing and pulmonologist": {roles: []string{"billing", "pulmonologist"},
			wantMFA: true, wantPR: true, wantFactors: []Factor{FactorWebAuthn},
			wantIdle: 10 * time.Minute, wantAbs: 8 * time.Hour},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			eff, err := p.Effective(tc.roles)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(eff.MFARequired).To(Equal(tc.wantMFA))
			g.Expect(eff.PhishingResistant).To(Equal(tc.wantPR))
			g.Expect(eff.Factors).To(Equal(tc.wantFactors))
			g.Expect(eff.Session.Idle.Duration).To(Equal(tc.wantIdle))
			g.Expect(eff.Session.Absolute.Duration).To(Equal(tc.wantAbs))
		})
	}
}

func TestAllowsUnionsGrantsAndFields(t *testing.T) {
	g := NewWithT(t)
	p := samplePolicy()
	billing, err := p.Effective([]string{"billing"})
	g.Expect(err).NotTo(HaveOccurred())
	ok, fields := billing.Allows(RecordOxygenOrder, ActionRead)
	g.Expect(ok).To(BeTrue())
	g.Expect(fields).To(Equal([]string{"device", "orderCode"}))
	ok, _ = billing.Allows(RecordOxygenOrder, ActionSign)
	g.Expect(ok).To(BeFalse())
	ok, _ = billing.Allows(RecordSpirometry, ActionRead)
	g.Expect(ok).To(BeFalse(), "deny by default")

	both, err := p.Effective([]string{"billing", "pulmonologist"})
	g.Expect(err).NotTo(HaveOccurred())
	ok, fields = both.Allows(RecordOxygenOrder, ActionRead)
	g.Expect(ok).To(BeTrue())
	g.Expect(fields).To(BeNil(), "an unlimited grant lifts the field limit")

	_, err = p.Effective([]string{"janitor"})
	g.Expect(err).To(MatchError(ContainSubstring(`role "janitor" is not in policy`)))
}

func TestValidateNamesEveryBadField(t *testing.T) {
	g := NewWithT(t)
	c := Config{SchemaVersion: "v0", Policy: samplePolicy()}
	c.Policy.Roles[0].Session.Idle = d("24h")
	c.Policy.Roles[1].MFA.Factors = nil
	c.Policy.AdminConsoleCIDRs = []string{"10.0.0.0/33"}
	c.Policy.BreakGlass.Roles = []string{"nobody"}
	c.Policy.PrivilegedHours = &TimeWindow{Start: "7:30am", End: "18:00",
		TimeZone: "Mars/Olympus"}
	err := c.Validate()
	g.Expect(err).To(HaveOccurred())
	for _, want := range []string{"schemaVersion", "tenant.name", "vault.address",
		"policy.roles[0].session.idle", "policy.roles[1].mfa.factors",
		"policy.adminConsoleCIDRs[0]", "policy.breakGlass.roles[0]",
		"policy.privilegedHours.start", "policy.privilegedHours.timeZone"} {
		g.Expect(err.Error()).To(ContainSubstring(want))
	}
}

func TestParseRoundTripsAndRejectsUnknownFields(t *testing.T) {
	g := NewWithT(t)
	c := Config{SchemaVersion: SchemaVersion,
		Tenant: Tenant{Name: "north", Namespace: "clinic-north"},
		Vault: Vault{Address: "http://127.0.0.1:8200", TransitMount: "transit",
			DataKey: "k", SigningKey: "s"},
		Policy: samplePolicy()}
	data, err := c.Marshal()
	g.Expect(err).NotTo(HaveOccurred())
	back, err := Parse(data)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(back.Policy.Roles[1].Session.Idle.Duration).To(Equal(15 * time.Minute))

	_, err = Parse([]byte(`{"schemaVersion":"` + SchemaVersion + `","surprise":1}`))
	g.Expect(err).To(MatchError(ContainSubstring("surprise")))
}
