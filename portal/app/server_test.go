package app_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/pleura-dev/pleura/internal/portaltest"
)

func TestTLSAndSecurityHeaders(t *testing.T) {
	f := setup(t)
	g := NewWithT(t)

	t.Run("a TLS 1.2 client is refused", func(t *testing.T) {
		g := NewWithT(t)
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: f.roots, MaxVersion: tls.VersionTLS12}}}
		_, err := c.Get(f.base + "/sign-in")
		g.Expect(err).To(MatchError(ContainSubstring("protocol version")))
	})

	b := f.browser(t)
	resp, err := b.c.Get(f.base + "/sign-in")
	g.Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	g.Expect(resp.TLS.Version).To(Equal(uint16(tls.VersionTLS13)))
	h := resp.Header
	g.Expect(h.Get("Strict-Transport-Security")).To(Equal("max-age=31536000; includeSubDomains"))
	g.Expect(h.Get("Content-Security-Policy")).To(ContainSubstring("default-src 'none'"))
	g.Expect(h.Get("Content-Security-Policy")).To(ContainSubstring("frame-ancestors 'none'"))
	g.Expect(h.Get("Content-Security-Policy")).NotTo(ContainSubstring("unsafe-inline"))
	g.Expect(h.Get("X-Content-Type-Options")).To(Equal("nosniff"))
	g.Expect(h.Get("Referrer-Policy")).To(Equal("no-referrer"))
	g.Expect(h.Get("Cache-Control")).To(Equal("no-store"))
	for _, c := range resp.Cookies() {
		g.Expect(c.Name).To(HavePrefix("__Host-"))
		g.Expect(c.Secure && c.HttpOnly).To(BeTrue())
		g.Expect(c.SameSite).To(Equal(http.SameSiteStrictMode))
	}

	t.Run("unknown routes are not found, with headers", func(t *testing.T) {
		g := NewWithT(t)
		resp, err := b.c.Get(f.base + "/admin/secret")
		g.Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
		g.Expect(resp.Header.Get("Strict-Transport-Security")).NotTo(BeEmpty())
	})

	t.Run("bodies are capped", func(t *testing.T) {
		g := NewWithT(t)
		resp, err := b.c.Post(f.base+"/sign-in", "application/x-www-form-urlencoded",
			strings.NewReader("email="+strings.Repeat("a", 1<<20)))
		g.Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusForbidden))
	})

	t.Run("a renewed certificate is served without a restart", func(t *testing.T) {
		g := NewWithT(t)
		serial := func() string {
			// Only reads which certificate is served; trust is not the point.
			c := &tls.Config{InsecureSkipVerify: true, //nolint:gosec // see above
				MinVersion: tls.VersionTLS13}
			conn, err := tls.Dial("tcp", strings.TrimPrefix(f.base, "https://"), c)
			g.Expect(err).NotTo(HaveOccurred())
			defer conn.Close()
			return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
		}
		before := serial()
		roots := portaltest.KeyPair(t, f.certFile, f.keyFile)
		g.Eventually(serial).WithTimeout(20e9).Should(Not(Equal(before)))
		f.roots = roots
	})
}

func TestOperationsPort(t *testing.T) {
	f := setup(t)
	g := NewWithT(t)
	get := func(path string) (int, string) {
		resp, err := http.Get(f.ops + path)
		g.Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, _ := get("/healthz")
	g.Expect(code).To(Equal(http.StatusOK))
	code, _ = get("/readyz")
	g.Expect(code).To(Equal(http.StatusOK))
	f.browser(t).get("/sign-in")
	code, body := get("/metrics")
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(body).To(ContainSubstring(
		`pleura_portal_http_requests_total{code="200",route="GET /sign-in"}`))
	g.Expect(body).To(ContainSubstring("pleura_portal_data_keys_pending_rewrap"))
	// The portal's own port does not serve metrics.
	resp, err := f.browser(t).c.Get(f.base + "/metrics")
	g.Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
}

func TestEnrolmentAndSignIn(t *testing.T) {
	f := setup(t)
	g := NewWithT(t)
	admin, ab := f.newAdmin(t)
	g.Expect(admin.recovery).To(HaveLen(10))
	ab.get("/")
	g.Expect(ab.last).To(ContainSubstring(`id="welcome"`))

	p, pb := f.newPatient(t, ab)
	pb.get("/")
	g.Expect(pb.last).To(ContainSubstring("set up an authenticator app"),
		"MFA is offered to patients")
	g.Expect(f.auditCount(t, "signIn", p.id, "")).To(Equal(1))
	g.Expect(f.auditCount(t, "invite", p.id, "")).To(Equal(1))

	t.Run("identifiers are encrypted at rest", func(t *testing.T) {
		g := NewWithT(t)
		var raw string
		g.Expect(f.app.Pool.QueryRow(t.Context(), `SELECT concat(encode(email_ct, 'escape'),
			encode(mrn_ct, 'escape'), encode(dob_ct, 'escape')) FROM accounts WHERE id = $1`,
			p.id).Scan(&raw)).To(Succeed())
		g.Expect(raw).NotTo(ContainSubstring("north.example"))
		g.Expect(raw).NotTo(ContainSubstring("MRN-"))
		g.Expect(raw).NotTo(ContainSubstring("1950"))
	})

	t.Run("an enrolment code works once", func(t *testing.T) {
		g := NewWithT(t)
		ab.get("/staff/invite")
		ab.post("/staff/invite", map[string][]string{"displayName": {"Once"},
			"email": {"once@north.example"}})
		code := enrolRe.FindStringSubmatch(ab.last)[1]
		b := f.browser(t)
		b.enrol(code, "the first passphrase chosen")
		b.post("/enrol", map[string][]string{"code": {code},
			"password": {"an attacker's passphrase here"}})
		g.Expect(b.status).To(Equal(http.StatusUnauthorized))
		g.Expect(b.last).To(ContainSubstring("not valid"))
	})

	t.Run("an expired enrolment code is refused", func(t *testing.T) {
		g := NewWithT(t)
		ab.get("/staff/invite")
		ab.post("/staff/invite", map[string][]string{"displayName": {"Late"},
			"email": {"late@north.example"}})
		code := enrolRe.FindStringSubmatch(ab.last)[1]
		f.exec(t, `UPDATE enrolment_codes SET expires_at = now() - interval '1 second'
			WHERE used_at IS NULL`)
		b := f.browser(t)
		b.get("/enrol")
		b.post("/enrol", map[string][]string{"code": {code},
			"password": {"a perfectly good passphrase"}})
		g.Expect(b.status).To(Equal(http.StatusUnauthorized))
	})

	t.Run("a short or common password is refused at enrolment", func(t *testing.T) {
		g := NewWithT(t)
		ab.get("/staff/invite")
		ab.post("/staff/invite", map[string][]string{"displayName": {"Weak"},
			"email": {"weak@north.example"}})
		code := enrolRe.FindStringSubmatch(ab.last)[1]
		b := f.browser(t)
		b.get("/enrol")
		b.post("/enrol", map[string][]string{"code": {code}, "password": {"short"}})
		g.Expect(b.status).To(Equal(http.StatusUnprocessableEntity))
		g.Expect(b.last).To(ContainSubstring("at least 15"))
		b.post("/enrol", map[string][]string{"code": {code},
			"password": {"passwordpassword"}})
		g.Expect(b.last).To(ContainSubstring("common or breached"))
		b.enrol(code, "seventeen chars ok")
	})

	t.Run("wrong password and unknown account look the same", func(t *testing.T) {
		g := NewWithT(t)
		b := f.browser(t)
		b.signIn(p.email, "not the right passphrase")
		wrongStatus, wrongBody := b.status, b.last
		b.signIn("nobody@north.example", "not the right passphrase")
		g.Expect(b.status).To(Equal(wrongStatus))
		g.Expect(b.status).To(Equal(http.StatusUnauthorized))
		g.Expect(stripCSRF(b.last)).To(Equal(stripCSRF(wrongBody)))
	})

	t.Run("a patient cannot reach staff pages", func(t *testing.T) {
		g := NewWithT(t)
		pb.get("/staff/invite")
		g.Expect(pb.status).To(Equal(http.StatusNotFound))
		pb.get("/admin/invite")
		g.Expect(pb.status).To(Equal(http.StatusNotFound))
		pb.post("/admin/accounts/"+admin.id+"/disable", nil)
		g.Expect(pb.status).To(Equal(http.StatusNotFound))
	})
}

func stripCSRF(s string) string {
	return csrfField.ReplaceAllString(s, "")
}

func TestStoredSecretsAreBoundToTheirRow(t *testing.T) {
	f := setup(t)
	g := NewWithT(t)
	admin, ab := f.newAdmin(t)
	victim, _ := f.newPatient(t, ab)
	other, ob := f.newPatient(t, ab)

	// TOTP secrets are encrypted: the stored bytes do not hold the secret.
	var ct []byte
	g.Expect(f.app.Pool.QueryRow(t.Context(), `SELECT secret_ct FROM totp_factors
		WHERE account_id = $1`, admin.id).Scan(&ct)).To(Succeed())
	g.Expect(string(ct)).NotTo(ContainSubstring(admin.secret))

	// Someone with write access to the table copies the victim's encrypted
	// email into another row: it does not decrypt there.
	f.exec(t, `UPDATE accounts SET email_ct = (SELECT email_ct FROM accounts WHERE id = $1)
		WHERE id = $2`, victim.id, other.id)
	ob.get("/profile")
	g.Expect(ob.status).To(Equal(http.StatusInternalServerError))
	g.Expect(ob.last).NotTo(ContainSubstring(victim.email))
}

func TestAdminInvitesStaffWhoMustUseMFA(t *testing.T) {
	f := setup(t)
	g := NewWithT(t)
	_, ab := f.newAdmin(t)
	ab.get("/admin/invite")
	g.Expect(ab.last).To(ContainSubstring("pulmonologist"))
	ab.post("/admin/invite", map[string][]string{"displayName": {"Dr Lung"},
		"email": {"dr.lung@north.example"}, "role": {"pulmonologist"}})
	g.Expect(ab.status).To(Equal(http.StatusOK))
	code := enrolRe.FindStringSubmatch(ab.last)[1]
	ab.post("/admin/invite", map[string][]string{"displayName": {"Nobody"},
		"email": {"n@north.example"}, "role": {"janitor"}})
	g.Expect(ab.status).To(Equal(http.StatusUnprocessableEntity))

	doc := &user{email: "dr.lung@north.example", password: "short but mfa"}
	b := f.browser(t)
	b.enrol(code, doc.password) // 8+ is enough where MFA is required
	b.signIn(doc.email, doc.password)
	g.Expect(b.last).To(ContainSubstring("requires a second factor"))
	b.get("/")
	g.Expect(b.last).To(ContainSubstring("requires a second factor"),
		"no page until MFA is set up")
	b.get("/staff/invite")
	g.Expect(b.last).To(ContainSubstring("requires a second factor"))
	b.setUpTOTP(doc)
	b.get("/staff/invite")
	g.Expect(b.status).To(Equal(http.StatusOK), "pulmonologists may invite patients")
	b.get("/admin/invite")
	g.Expect(b.status).To(Equal(http.StatusNotFound), "but not staff")
}

func TestSweepKeepsLiveRowsAndAudit(t *testing.T) {
	f := setup(t)
	g := NewWithT(t)
	_, ab := f.newAdmin(t)
	p, pb := f.newPatient(t, ab)
	var audits int
	count := func(q string, args ...any) int {
		var n int
		g.Expect(f.app.Pool.QueryRow(t.Context(), q, args...).Scan(&n)).To(Succeed())
		return n
	}
	audits = count(`SELECT count(*) FROM audit_events`)
	f.exec(t, `INSERT INTO rate_limits (key, window_start, hits)
		VALUES ('\xdead', now() - interval '2 days', 3)`)
	f.exec(t, `UPDATE sessions SET ended_at = now() - interval '100 days'
		WHERE account_id = $1 AND ended_at IS NOT NULL`, p.id)
	n, err := f.app.Sweep(t.Context())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(BeNumerically(">=", 1))
	g.Expect(count(`SELECT count(*) FROM rate_limits WHERE key = '\xdead'`)).To(Equal(0))
	g.Expect(count(`SELECT count(*) FROM audit_events`)).To(BeNumerically(">=", audits))
	pb.get("/")
	g.Expect(pb.last).To(ContainSubstring(`id="welcome"`), "live sessions stay")
}

func TestProxiesAreIndividualAccounts(t *testing.T) {
	f := setup(t)
	g := NewWithT(t)
	_, ab := f.newAdmin(t)
	ab.get("/staff/invite")
	ab.post("/staff/invite", map[string][]string{"displayName": {"Carer"},
		"email": {"carer@north.example"}, "kind": {"proxy"}})
	g.Expect(ab.status).To(Equal(http.StatusOK))
	code := enrolRe.FindStringSubmatch(ab.last)[1]
	b := f.browser(t)
	b.enrol(code, "the carer's own passphrase")
	b.signIn("carer@north.example", "the carer's own passphrase")
	g.Expect(b.last).To(ContainSubstring(`id="welcome"`))
	var kind string
	var roles []string
	g.Expect(f.app.Pool.QueryRow(t.Context(), `SELECT kind, roles FROM accounts
		WHERE id = $1`, f.accountID(t, "carer@north.example")).Scan(&kind, &roles)).
		To(Succeed())
	g.Expect(kind).To(Equal("proxy"))
	g.Expect(roles).To(Equal([]string{"proxy"}))
}

func TestPhishingResistantRolesRefuseCodes(t *testing.T) {
	f := setup(t)
	g := NewWithT(t)
	admin, _ := f.newAdmin(t)
	orig := f.app.Config.Tenant
	strict := *orig
	strict.Policy = portaltest.Policy()
	for i := range strict.Policy.Roles {
		if strict.Policy.Roles[i].Name == "admin" {
			strict.Policy.Roles[i].MFA.PhishingResistant = true
		}
	}
	f.app.SetTenant(&strict)
	defer f.app.SetTenant(orig)

	b := f.browser(t)
	b.signIn(admin.email, admin.password)
	b.post("/sign-in/second-factor", map[string][]string{"code": {admin.totp(t)}})
	g.Expect(b.status).To(Equal(http.StatusForbidden))
	g.Expect(b.last).To(ContainSubstring("must sign in with a security key"))
	b.get("/")
	g.Expect(b.last).NotTo(ContainSubstring(`id="welcome"`))
	b.post("/mfa/totp", nil)
	g.Expect(b.last).NotTo(ContainSubstring("totp-secret"))
}
