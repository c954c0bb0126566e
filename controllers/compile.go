package controllers

import (
	"fmt"
	"time"

	"k8s.io/utils/ptr"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
	"github.com/pleura-dev/pleura/internal/tenantconfig"
)

// CompilePolicy turns an AccessPolicy into the policy the portal reads,
// stamped with the policy's generation, and validates the result.
func CompilePolicy(ap *portalv1.AccessPolicy) (tenantconfig.Policy, error) {
	s := ap.Spec
	p := tenantconfig.Policy{
		Name:              ap.Name,
		Generation:        ap.Generation,
		AdminConsoleCIDRs: s.AdminConsoleCIDRs,
		DownloadsPerHour:  s.DownloadsPerHour,
		StepUp: tenantconfig.StepUp{
			Actions: convert[tenantconfig.StepUpAction](s.StepUp.Actions),
			Window:  dur(s.StepUp.Window.Duration),
		},
		BreakGlass: tenantconfig.BreakGlass{
			Roles:       s.BreakGlass.Roles,
			ReasonCodes: s.BreakGlass.ReasonCodes,
			MaxDuration: dur(s.BreakGlass.MaxDuration.Duration),
			Notify:      s.BreakGlass.Notify,
		},
		Proxies: tenantconfig.Proxies{
			Allowed:               s.Proxies.Allowed,
			MaxGrant:              dur(s.Proxies.MaxGrant.Duration),
			DocumentationRequired: ptr.Deref(s.Proxies.DocumentationRequired, true),
		},
		EntitlementReviewInterval: dur(s.EntitlementReviewInterval.Duration),
	}
	if w := s.PrivilegedHours; w != nil {
		p.PrivilegedHours = &tenantconfig.TimeWindow{Start: w.Start, End: w.End,
			TimeZone: w.TimeZone}
	}
	for _, r := range s.Roles {
		role := tenantconfig.Role{
			Name: r.Name,
			MFA: tenantconfig.MFA{Required: r.MFA.Required,
				Factors:           convert[tenantconfig.Factor](r.MFA.Factors),
				PhishingResistant: r.MFA.PhishingResistant},
			Session: tenantconfig.SessionLimits{Idle: dur(r.Session.Idle.Duration),
				Absolute: dur(r.Session.Absolute.Duration)},
		}
		for _, g := range r.Grants {
			role.Grants = append(role.Grants, tenantconfig.Grant{
				Record:  tenantconfig.RecordKind(g.Record),
				Actions: convert[tenantconfig.Action](g.Actions),
				Fields:  g.Fields,
			})
		}
		p.Roles = append(p.Roles, role)
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("AccessPolicy %s does not compile: %w", ap.Name, err)
	}
	return p, nil
}

func dur(d time.Duration) tenantconfig.Duration {
	return tenantconfig.Duration{Duration: d}
}

func convert[T ~string](in []string) []T {
	if in == nil {
		return nil
	}
	out := make([]T, len(in))
	for i, s := range in {
		out[i] = T(s)
	}
	return out
}
