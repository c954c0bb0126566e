package app_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/pleura-dev/pleura/internal/portaltest"
	"github.com/pleura-dev/pleura/internal/tenantconfig"
	"github.com/pleura-dev/pleura/portal/server"
)

func TestCredentialStuffingAcrossManyAccounts(t *testing.T) {
	f := setup(t)
	g := NewWithT(t)
	_, ab := f.newAdmin(t)
	victim, _ := f.newPatient(t, ab)

	// One source tries one password against many accounts, real or not.
	attacker := f.browser(t)
	refused := 0
	for i := range 40 {
		attacker.signIn(fmt.Sprintf("user%d@north.example", i), "Summer2026!Summer2026!")
		if attacker.status == http.StatusTooManyRequests {
			refused++
		}
	}
	g.Expect(refused).To(Equal(10), "the address limit (30 per window) stops the rest")
	// Even the victim's right password is refused from that source now.
	attacker.signIn(victim.email, victim.password)
	g.Expect(attacker.status).To(Equal(http.StatusTooManyRequests))
	g.Expect(attacker.last).NotTo(ContainSubstring(`id="welcome"`))
	// The victim, from their own address, is not locked out by it.
	f.browser(t).signIn(victim.email, victim.password)
	g.Expect(f.auditCount(t, "rateLimited", "", "signIn")).To(BeNumerically(">=", 11))

	t.Run("many sources against one account hit the account limit", func(t *testing.T) {
		g := NewWithT(t)
		target, _ := f.newPatient(t, ab)
		statuses := map[int]int{}
		for range 12 {
			b := f.browser(t)
			b.signIn(target.email, "wrong wrong wrong wrong")
			statuses[b.status]++
		}
		// The patient's own sign-in counted too: 1 + 9 attempts fit the
		// account limit of 10, the other 3 are refused.
		g.Expect(statuses[http.StatusUnauthorized]).To(Equal(9))
		g.Expect(statuses[http.StatusTooManyRequests]).To(Equal(3))
	})
}

func TestTOTPBruteForceAndReplay(t *testing.T) {
	f := setup(t)
	admin, _ := f.newAdmin(t)

	t.Run("a used code is refused the second time", func(t *testing.T) {
		g := NewWithT(t)
		b := f.browser(t)
		b.signIn(admin.email, admin.password)
		code := admin.totp(t)
		b.post("/sign-in/second-factor", url.Values{"code": {code}})
		g.Expect(b.last).To(ContainSubstring(`id="welcome"`))

		replay := f.browser(t)
		replay.signIn(admin.email, admin.password)
		g.Expect(replay.last).To(ContainSubstring("Second step"))
		replay.post("/sign-in/second-factor", url.Values{"code": {code}})
		g.Expect(replay.status).To(Equal(http.StatusUnauthorized))
		g.Expect(replay.last).NotTo(ContainSubstring(`id="welcome"`))
	})

	t.Run("guessing is stopped by the second-factor limit", func(t *testing.T) {
		g := NewWithT(t)
		b := f.browser(t)
		b.signIn(admin.email, admin.password)
		statuses := map[int]int{}
		for i := range 8 {
			b.post("/sign-in/second-factor", url.Values{"code": {fmt.Sprintf("%06d", i)}})
			statuses[b.status]++
		}
		// Limits count per account, across the replay attempt above too.
		g.Expect(statuses[http.StatusTooManyRequests]).To(BeNumerically(">=", 3))
		b.post("/sign-in/second-factor", url.Values{"code": {admin.totp(t)}})
		g.Expect(b.status).To(Equal(http.StatusTooManyRequests),
			"the right code does not help once the limit is hit")
		// Enrolment's confirmation, the sign-in, the replay and two guesses
		// used the five attempts; all but the first are audited here.
		g.Expect(f.auditCount(t, "secondFactor", admin.id, "totp")).To(Equal(4))
		g.Expect(f.auditCount(t, "rateLimited", "", "secondFactor")).To(
			BeNumerically(">=", 4))
	})
}

func TestResetCannotSkipMFA(t *testing.T) {
	f := setup(t)
	admin, ab := f.newAdmin(t)

	t.Run("no recovery code, no reset", func(t *testing.T) {
		g := NewWithT(t)
		b := f.browser(t)
		b.get("/recover")
		b.post("/recover", url.Values{"email": {admin.email}, "code": {"AAAA-BBBB-CCCC-DDDD"},
			"password": {"attacker chosen passphrase"}})
		g.Expect(b.status).To(Equal(http.StatusUnauthorized))
		b.signIn(admin.email, "attacker chosen passphrase")
		g.Expect(b.status).To(Equal(http.StatusUnauthorized))
	})

	t.Run("a patient without MFA cannot reset by themselves", func(t *testing.T) {
		g := NewWithT(t)
		p, _ := f.newPatient(t, ab)
		b := f.browser(t)
		b.get("/recover")
		b.post("/recover", url.Values{"email": {p.email}, "code": {""},
			"password": {"attacker chosen passphrase"}})
		g.Expect(b.status).To(Equal(http.StatusUnauthorized))
		g.Expect(f.auditCount(t, "recovery", p.id, "noSecondFactor")).To(Equal(1))
	})

	t.Run("a reset with a recovery code still needs the second factor", func(t *testing.T) {
		g := NewWithT(t)
		before := len(f.smtp.Messages())
		b := f.browser(t)
		b.get("/recover")
		b.post("/recover", url.Values{"email": {admin.email}, "code": {admin.recovery[0]},
			"password": {"a brand new admin passphrase"}})
		g.Expect(b.status).To(Equal(http.StatusOK))
		g.Expect(b.last).To(ContainSubstring("password was reset"))
		admin.password = "a brand new admin passphrase"

		b.signIn(admin.email, admin.password)
		g.Expect(b.last).To(ContainSubstring("Second step"), "MFA is still asked")
		b.get("/profile")
		g.Expect(b.last).NotTo(ContainSubstring("Email:"))

		// The recovery code was used up.
		b2 := f.browser(t)
		b2.get("/recover")
		b2.post("/recover", url.Values{"email": {admin.email}, "code": {admin.recovery[0]},
			"password": {"yet another admin passphrase"}})
		g.Expect(b2.status).To(Equal(http.StatusUnauthorized))

		// The user is told, through the relay.
		g.Eventually(func() []portaltest.Mail { return f.smtp.Messages()[before:] }).
			WithTimeout(30 * time.Second).Should(ContainElement(And(
			HaveField("To", ContainElement(admin.email)),
			HaveField("Data", ContainSubstring("password was reset")))))
	})

	t.Run("staff-assisted recovery records the identity check", func(t *testing.T) {
		g := NewWithT(t)
		// The first admin's sessions ended with the reset above.
		_, ab := f.newAdmin(t)
		p, pb := f.newPatient(t, ab)
		ab.get("/")
		ab.post("/admin/accounts/"+p.id+"/recover", url.Values{"identityCheck": {"trustMe"}})
		g.Expect(ab.status).To(Equal(http.StatusUnprocessableEntity))
		ab.get("/")
		ab.post("/admin/accounts/"+p.id+"/recover",
			url.Values{"identityCheck": {"photoIdInPerson"}})
		g.Expect(ab.status).To(Equal(http.StatusOK))
		code := enrolRe.FindStringSubmatch(ab.last)[1]
		g.Expect(f.auditCount(t, "recovery", p.id, "staffAssisted: photoIdInPerson")).
			To(Equal(1))

		pb.get("/")
		g.Expect(pb.last).To(ContainSubstring("Sign in"), "sessions were ended")
		pb.signIn(p.email, p.password)
		g.Expect(pb.status).To(Equal(http.StatusUnauthorized), "old password is gone")
		pb.enrol(code, "recovered patient passphrase")
		pb.signIn(p.email, "recovered patient passphrase")
		g.Expect(pb.last).To(ContainSubstring(`id="welcome"`))
	})
}

func TestSessionFixationAndDeviceBinding(t *testing.T) {
	f := setup(t)
	admin, ab := f.newAdmin(t)

	t.Run("a token planted before sign-in is worthless after it", func(t *testing.T) {
		g := NewWithT(t)
		p, _ := f.newPatient(t, ab)
		victim := f.browser(t)
		victim.get("/sign-in")
		victim.setCookie(server.SessionCookie, "attacker-chosen-token")
		victim.signIn(p.email, p.password)
		g.Expect(victim.last).To(ContainSubstring(`id="welcome"`))
		g.Expect(victim.cookie(server.SessionCookie)).NotTo(Equal("attacker-chosen-token"))
	})

	t.Run("the password-only token dies when the second factor passes", func(t *testing.T) {
		g := NewWithT(t)
		b := f.browser(t)
		b.signIn(admin.email, admin.password)
		pendingToken := b.cookie(server.SessionCookie)
		b.post("/sign-in/second-factor", url.Values{"code": {admin.totp(t)}})
		g.Expect(b.last).To(ContainSubstring(`id="welcome"`))
		g.Expect(b.cookie(server.SessionCookie)).NotTo(Equal(pendingToken))
		// Same device, old token: refused.
		b.setCookie(server.SessionCookie, pendingToken)
		b.get("/")
		g.Expect(b.last).To(ContainSubstring("<h1>Sign in</h1>"))
	})

	t.Run("a stolen cookie on another device ends the session", func(t *testing.T) {
		g := NewWithT(t)
		p, pb := f.newPatient(t, ab)
		stolen := pb.cookie(server.SessionCookie)
		thief := f.browser(t)
		thief.get("/sign-in") // the thief's own device cookie
		thief.setCookie(server.SessionCookie, stolen)
		thief.get("/profile")
		g.Expect(thief.last).To(ContainSubstring("<h1>Sign in</h1>"))
		g.Expect(thief.last).NotTo(ContainSubstring(p.email))
		// The binding broke, so the session is revoked for its owner too.
		pb.get("/")
		g.Expect(pb.last).To(ContainSubstring("<h1>Sign in</h1>"))
		var actor string
		g.Expect(f.app.Pool.QueryRow(t.Context(), `SELECT actor FROM audit_events
			WHERE action = 'sessionEnd' AND reason = 'deviceMismatch'
			ORDER BY id DESC LIMIT 1`).Scan(&actor)).To(Succeed())
		g.Expect(actor).To(Equal(p.id), "the audit names whose session it was")
	})
}

func TestCSRFIsRefused(t *testing.T) {
	f := setup(t)
	g := NewWithT(t)
	_, ab := f.newAdmin(t)
	p, pb := f.newPatient(t, ab)
	pb.get("/profile")

	for name, form := range map[string]url.Values{
		"no token":    {"phone": {"+1 555 0100"}, "csrf": {""}},
		"wrong token": {"phone": {"+1 555 0100"}, "csrf": {"forged"}},
	} {
		pb.post("/profile", form)
		g.Expect(pb.status).To(Equal(http.StatusForbidden), name)
	}
	// A cross-site form post, even carrying a token, is refused.
	req, _ := http.NewRequest(http.MethodPost, f.base+"/profile",
		strings.NewReader(url.Values{"phone": {"+1 555 0100"}, "csrf": {pb.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	pb.take(pb.c.Do(req))
	g.Expect(pb.status).To(Equal(http.StatusForbidden))
	// Sign-in CSRF: a login form without the device-bound token.
	b := f.browser(t)
	b.post("/sign-in", url.Values{"email": {p.email}, "password": {p.password},
		"csrf": {"x"}})
	g.Expect(b.status).To(Equal(http.StatusForbidden))

	pb.get("/profile")
	pb.post("/profile", url.Values{"phone": {"+1 555 0100"}, "notifyEmail": {"on"}})
	g.Expect(pb.status).To(Equal(http.StatusOK), "a patient without MFA has no step-up")
	g.Expect(pb.last).To(ContainSubstring("555 0100"))
}

func TestStepUpBeforeSensitiveChanges(t *testing.T) {
	f := setup(t)
	g := NewWithT(t)
	admin, ab := f.newAdmin(t)
	// The sign-in's second factor is older than the window.
	f.exec(t, `UPDATE sessions SET stepup_at = now() - interval '1 hour'
		WHERE account_id = $1`, admin.id)
	ab.get("/profile")
	ab.post("/profile", url.Values{"phone": {"+1 555 0199"}})
	g.Expect(ab.status).To(Equal(http.StatusForbidden))
	g.Expect(ab.last).To(ContainSubstring("Confirm it is you"))
	ab.post("/mfa/totp/remove", nil)
	g.Expect(ab.status).To(Equal(http.StatusForbidden), "authenticators too")

	before := ab.cookie(server.SessionCookie)
	ab.post("/step-up", url.Values{"code": {"000000"}, "next": {"/profile"}})
	g.Expect(ab.status).To(Equal(http.StatusUnauthorized))
	ab.post("/step-up", url.Values{"code": {admin.totp(t)}, "next": {"/profile"}})
	g.Expect(ab.last).To(ContainSubstring("<h1>Profile</h1>"))
	g.Expect(ab.cookie(server.SessionCookie)).NotTo(Equal(before), "new token at step-up")
	ab.post("/profile", url.Values{"phone": {"+1 555 0199"}})
	g.Expect(ab.status).To(Equal(http.StatusOK))
	g.Expect(f.auditCount(t, "stepUp", admin.id, "totp")).To(BeNumerically(">=", 2))
	g.Expect(f.auditCount(t, "profileChange", admin.id, "")).To(Equal(1))

	t.Run("an open redirect through next is refused", func(t *testing.T) {
		g := NewWithT(t)
		f.exec(t, `UPDATE sessions SET stepup_at = now() - interval '1 hour'
			WHERE account_id = $1`, admin.id)
		ab.get("/profile")
		ab.post("/profile", url.Values{"phone": {"+1"}})
		ab.post("/step-up", url.Values{"code": {admin.totp(t)},
			"next": {"//evil.example/"}})
		g.Expect(ab.last).To(ContainSubstring(`id="welcome"`))
	})
}

func TestSessionLifetimes(t *testing.T) {
	f := setup(t)
	_, ab := f.newAdmin(t)

	t.Run("idle and absolute timeouts end sessions", func(t *testing.T) {
		g := NewWithT(t)
		for _, q := range []string{
			`UPDATE sessions SET last_seen_at = now() - interval '31 minutes'
				WHERE account_id = $1 AND ended_at IS NULL`,
			`UPDATE sessions SET created_at = now() - interval '13 hours'
				WHERE account_id = $1 AND ended_at IS NULL`,
		} {
			p, pb := f.newPatient(t, ab)
			f.exec(t, q, p.id)
			pb.get("/")
			g.Expect(pb.last).To(ContainSubstring("<h1>Sign in</h1>"), q)
		}
		g.Expect(f.auditCount(t, "sessionEnd", "", "idleTimeout")).To(BeNumerically(">=", 1))
		g.Expect(f.auditCount(t, "sessionEnd", "", "absoluteTimeout")).To(
			BeNumerically(">=", 1))
	})

	t.Run("a tightened policy applies to live sessions", func(t *testing.T) {
		g := NewWithT(t)
		p, pb := f.newPatient(t, ab)
		f.exec(t, `UPDATE sessions SET created_at = now() - interval '2 hours'
			WHERE account_id = $1 AND ended_at IS NULL`, p.id)
		pb.get("/")
		g.Expect(pb.last).To(ContainSubstring(`id="welcome"`))

		orig := f.app.Config.Tenant
		tight := *orig
		tight.Policy = portaltest.Policy()
		tight.Policy.Generation = 2
		for i := range tight.Policy.Roles {
			if tight.Policy.Roles[i].Name == "patient" {
				tight.Policy.Roles[i].Session.Absolute = tenantconfig.Duration{
					Duration: time.Hour}
			}
		}
		f.app.SetTenant(&tight)
		defer f.app.SetTenant(orig)
		pb.get("/")
		g.Expect(pb.last).To(ContainSubstring("<h1>Sign in</h1>"))
	})

	t.Run("disabling an account ends its sessions", func(t *testing.T) {
		g := NewWithT(t)
		p, pb := f.newPatient(t, ab)
		ab.get("/")
		ab.post("/admin/accounts/"+p.id+"/disable", nil)
		g.Expect(ab.status).To(Equal(http.StatusOK))
		pb.get("/")
		g.Expect(pb.last).To(ContainSubstring("<h1>Sign in</h1>"))
		pb.signIn(p.email, p.password)
		g.Expect(pb.status).To(Equal(http.StatusUnauthorized))
	})

	t.Run("a user lists and ends their own sessions", func(t *testing.T) {
		g := NewWithT(t)
		p, laptop := f.newPatient(t, ab)
		phone := f.browser(t)
		phone.signIn(p.email, p.password)
		laptop.get("/sessions")
		g.Expect(strings.Count(laptop.last, "/end\"")).To(Equal(2))
		var other string
		g.Expect(f.app.Pool.QueryRow(t.Context(), `SELECT public_id FROM sessions
			WHERE account_id = $1 AND ended_at IS NULL ORDER BY created_at DESC LIMIT 1`,
			p.id).Scan(&other)).To(Succeed())
		laptop.post("/sessions/"+other+"/end", nil)
		g.Expect(strings.Count(laptop.last, "/end\"")).To(Equal(1))
		phone.get("/")
		g.Expect(phone.last).To(ContainSubstring("<h1>Sign in</h1>"))
		// Someone else's session id is "not found".
		_, ob := f.newPatient(t, ab)
		ob.get("/sessions")
		ob.post("/sessions/"+other+"/end", nil)
		g.Expect(ob.status).To(Equal(http.StatusNotFound))
		laptop.post("/sign-out", nil)
		g.Expect(laptop.last).To(ContainSubstring("<h1>Sign in</h1>"))
		g.Expect(f.auditCount(t, "sessionEnd", "", "signOut")).To(BeNumerically(">=", 1))
	})
}
