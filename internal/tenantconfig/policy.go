package tenantconfig

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
	// Time zones are checked against Go's own database, so a container
	// image without /usr/share/zoneinfo judges them the same.
	_ "time/tzdata"
)

// Action is something a role may do with a kind of record.
type Action string

// The actions a Grant can give.
const (
	ActionRead     Action = "read"
	ActionWrite    Action = "write"
	ActionSign     Action = "sign"
	ActionDownload Action = "download"
	ActionShare    Action = "share"
)

// RecordKind is a kind of record the portal holds.
type RecordKind string

// The record kinds a Grant can name.
const (
	RecordSpirometry  RecordKind = "spirometry"
	RecordImaging     RecordKind = "imaging"
	RecordOxygenOrder RecordKind = "oxygenOrder"
	RecordMessage     RecordKind = "message"
	RecordUpload      RecordKind = "upload"
	RecordDemographic RecordKind = "demographics"
	RecordAuditLog    RecordKind = "auditLog"
	RecordAccount     RecordKind = "account"
)

// Factor is an authentication factor.
type Factor string

// The factors a role can allow.
const (
	FactorTOTP     Factor = "totp"
	FactorWebAuthn Factor = "webauthn"
)

// StepUpAction names an action that needs a fresh second factor.
type StepUpAction string

// The actions that can require step-up.
const (
	StepUpChangeContact       StepUpAction = "changeContact"
	StepUpChangeNotifications StepUpAction = "changeNotifications"
	StepUpChangeAuthenticator StepUpAction = "changeAuthenticators"
	StepUpShareRecord         StepUpAction = "shareRecord"
	StepUpBulkDownload        StepUpAction = "bulkDownload"
	StepUpBreakGlass          StepUpAction = "breakGlass"
)

// Policy is a compiled AccessPolicy.
type Policy struct {
	// Name is the AccessPolicy's name.
	Name string `json:"name"`
	// Generation is the AccessPolicy's metadata.generation compiled here.
	Generation int64 `json:"generation"`
	// Roles lists every role the tenant knows; a person holds one or more.
	Roles []Role `json:"roles"`
	// StepUp lists the actions that need a fresh second factor, and how
	// long one stays fresh.
	StepUp StepUp `json:"stepUp"`
	// AdminConsoleCIDRs are the source ranges allowed to reach the admin
	// console; empty allows none.
	AdminConsoleCIDRs []string `json:"adminConsoleCIDRs,omitempty"`
	// PrivilegedHours, when set, confines privileged actions to a window.
	PrivilegedHours *TimeWindow `json:"privilegedHours,omitempty"`
	// DownloadsPerHour caps record downloads per person; 0 means no cap.
	DownloadsPerHour int32 `json:"downloadsPerHour,omitempty"`
	// BreakGlass governs emergency access.
	BreakGlass BreakGlass `json:"breakGlass"`
	// Proxies governs proxy access to a patient's record.
	Proxies Proxies `json:"proxies"`
	// EntitlementReviewInterval is how often role grants must be reviewed.
	EntitlementReviewInterval Duration `json:"entitlementReviewInterval"`
}

// Role is what one role may do and how its people authenticate.
type Role struct {
	// Name is the role's name, e.g. "pulmonologist" or "patient".
	Name string `json:"name"`
	// Grants lists what the role may do per kind of record.
	Grants []Grant `json:"grants,omitempty"`
	// MFA says whether the role must use a second factor, and which.
	MFA MFA `json:"mfa"`
	// Session bounds the role's sessions.
	Session SessionLimits `json:"session"`
}

// Grant allows actions on one kind of record, optionally limited to fields.
type Grant struct {
	// Record is the kind of record.
	Record RecordKind `json:"record"`
	// Actions are the actions allowed on it.
	Actions []Action `json:"actions"`
	// Fields, when not empty, is the only fields of the record the role may
	// see (billing sees order codes, not clinical values).
	Fields []string `json:"fields,omitempty"`
}

// MFA is a role's second-factor rule.
type MFA struct {
	// Required makes a second factor mandatory; otherwise it is offered.
	Required bool `json:"required"`
	// Factors are the factors the role may use.
	Factors []Factor `json:"factors"`
	// PhishingResistant demands WebAuthn for this role.
	PhishingResistant bool `json:"phishingResistant,omitempty"`
}

// SessionLimits are a role's session timeouts.
type SessionLimits struct {
	// Idle ends a session after this long without a request.
	Idle Duration `json:"idle"`
	// Absolute ends a session this long after sign-in, whatever happens.
	Absolute Duration `json:"absolute"`
}

// StepUp is the step-up rule.
type StepUp struct {
	// Actions need a second factor within Window.
	Actions []StepUpAction `json:"actions"`
	// Window is how long a step-up stays valid.
	Window Duration `json:"window"`
}

// TimeWindow is a daily window in a time zone.
type TimeWindow struct {
	// Start and End are "HH:MM", 24-hour.
	Start string `json:"start"`
	End   string `json:"end"`
	// TimeZone is an IANA zone name, e.g. "America/Chicago".
	TimeZone string `json:"timeZone"`
}

// BreakGlass governs emergency access to one patient's record.
type BreakGlass struct {
	// Roles may break the glass; empty disables break-glass.
	Roles []string `json:"roles,omitempty"`
	// ReasonCodes are the reasons a person must choose from.
	ReasonCodes []string `json:"reasonCodes,omitempty"`
	// MaxDuration bounds one break-glass grant.
	MaxDuration Duration `json:"maxDuration"`
	// Notify lists who is alerted (role names or addresses).
	Notify []string `json:"notify,omitempty"`
}

// Proxies governs proxy access.
type Proxies struct {
	// Allowed permits proxy grants at all.
	Allowed bool `json:"allowed"`
	// MaxGrant bounds one proxy grant's length.
	MaxGrant Duration `json:"maxGrant"`
	// DocumentationRequired demands a document recording the authority.
	DocumentationRequired bool `json:"documentationRequired"`
}

// Effective is what applies to a person holding a set of roles: the union
// of their grants and the strictest of their authentication and session
// rules.
type Effective struct {
	// Roles are the roles combined.
	Roles []string
	// MFARequired is true when any role requires a second factor.
	MFARequired bool
	// PhishingResistant is true when any role demands WebAuthn.
	PhishingResistant bool
	// Factors are the factors every role allows.
	Factors []Factor
	// Session takes the shortest idle and absolute timeouts.
	Session SessionLimits

	grants []Grant
}

// Effective combines the named roles. An unknown role is an error, never
// silently ignored.
func (p *Policy) Effective(roles []string) (Effective, error) {
	if len(roles) == 0 {
		return Effective{}, fmt.Errorf("no roles: a person needs at least one")
	}
	eff := Effective{Roles: slices.Clone(roles)}
	for i, name := range roles {
		r := p.Role(name)
		if r == nil {
			return Effective{}, fmt.Errorf("role %q is not in policy %q", name, p.Name)
		}
		eff.MFARequired = eff.MFARequired || r.MFA.Required
		eff.PhishingResistant = eff.PhishingResistant || r.MFA.PhishingResistant
		if i == 0 {
			eff.Factors = slices.Clone(r.MFA.Factors)
			eff.Session = r.Session
		} else {
			eff.Factors = slices.DeleteFunc(eff.Factors, func(f Factor) bool {
				return !slices.Contains(r.MFA.Factors, f)
			})
			eff.Session.Idle.Duration = min(eff.Session.Idle.Duration, r.Session.Idle.Duration)
			eff.Session.Absolute.Duration = min(eff.Session.Absolute.Duration,
				r.Session.Absolute.Duration)
		}
		eff.grants = append(eff.grants, r.Grants...)
	}
	if eff.PhishingResistant {
		eff.Factors = slices.DeleteFunc(eff.Factors, func(f Factor) bool {
			return f != FactorWebAuthn
		})
	}
	return eff, nil
}

// Allows reports whether the combined roles may do action on record, and the
// fields visible: nil means every field.
func (e Effective) Allows(record RecordKind, action Action) (bool, []string) {
	allowed, unlimited := false, false
	var fields []string
	for _, g := range e.grants {
		if g.Record != record || !slices.Contains(g.Actions, action) {
			continue
		}
		allowed = true
		if len(g.Fields) == 0 {
			unlimited = true
		}
		fields = append(fields, g.Fields...)
	}
	if !allowed || unlimited {
		return allowed, nil
	}
	slices.Sort(fields)
	return true, slices.Compact(fields)
}

// NeedsStepUp reports whether action requires a fresh second factor.
func (p *Policy) NeedsStepUp(action StepUpAction) bool {
	return slices.Contains(p.StepUp.Actions, action)
}

// Role returns the named role, or nil.
func (p *Policy) Role(name string) *Role {
	for i := range p.Roles {
		if p.Roles[i].Name == name {
			return &p.Roles[i]
		}
	}
	return nil
}

func (p *Policy) validate(path string) []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: "+format, append([]any{path, field}, args...)...))
	}
	if p.Name == "" {
		add("name", "required, set it to the AccessPolicy's name")
	}
	if len(p.Roles) == 0 {
		add("roles", "at least one role is required")
	}
	seen := map[string]bool{}
	for i, r := range p.Roles {
		f := fmt.Sprintf("roles[%d]", i)
		if r.Name == "" {
			add(f+".name", "required")
		} else if seen[r.Name] {
			add(f+".name", "duplicate role %q; give each role one entry", r.Name)
		}
		seen[r.Name] = true
		if r.MFA.Required && len(r.MFA.Factors) == 0 {
			add(f+".mfa.factors", "MFA is required but no factor is allowed; list totp or webauthn")
		}
		if r.MFA.PhishingResistant && !slices.Contains(r.MFA.Factors, FactorWebAuthn) {
			add(f+".mfa.factors", "phishing-resistant MFA needs webauthn in the list")
		}
		if r.Session.Idle.Duration <= 0 || r.Session.Absolute.Duration <= 0 {
			add(f+".session", "idle and absolute timeouts must both be positive")
		} else if r.Session.Idle.Duration > r.Session.Absolute.Duration {
			add(f+".session.idle", "longer than the absolute timeout; shorten it")
		}
	}
	for i, c := range p.AdminConsoleCIDRs {
		if _, err := netip.ParsePrefix(c); err != nil {
			add(fmt.Sprintf("adminConsoleCIDRs[%d]", i), "%q is not a CIDR like 192.0.2.0/24", c)
		}
	}
	if w := p.PrivilegedHours; w != nil {
		for field, v := range map[string]string{"start": w.Start, "end": w.End} {
			if _, err := time.Parse("15:04", v); err != nil {
				add("privilegedHours."+field, "%q is not a 24-hour time like 07:30", v)
			}
		}
		if _, err := time.LoadLocation(w.TimeZone); err != nil || w.TimeZone == "" {
			add("privilegedHours.timeZone", "%q is not an IANA time zone like "+
				"America/Chicago", w.TimeZone)
		}
	}
	if p.StepUp.Window.Duration <= 0 && len(p.StepUp.Actions) > 0 {
		add("stepUp.window", "must be positive when step-up actions are listed")
	}
	for i, r := range p.BreakGlass.Roles {
		if !seen[r] {
			add(fmt.Sprintf("breakGlass.roles[%d]", i), "role %q is not defined in roles", r)
		}
	}
	return errs
}

// Validate reports every problem with the policy alone, each naming the
// field by its JSON path under "policy". The operator calls it when it
// compiles an AccessPolicy, before any tenant ConfigMap is written.
func (p *Policy) Validate() error {
	return errors.Join(p.validate("policy")...)
}
