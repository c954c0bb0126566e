package app_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/pleura-dev/pleura/internal/portaltest"
	"github.com/pleura-dev/pleura/internal/testenv"
	"github.com/pleura-dev/pleura/portal/app"
	"github.com/pleura-dev/pleura/portal/config"
	"github.com/pleura-dev/pleura/portal/server"
)

// fixture is one running portal on the real stack, shared by the package's
// tests and benchmarks.
type fixture struct {
	env      *testenv.Env
	app      *app.App
	smtp     *portaltest.SMTPServer
	base     string
	ops      string
	roots    *x509.CertPool
	certFile string
	keyFile  string
	dir      string
	stop     context.CancelFunc
	done     chan struct{}
}

var (
	fx      *fixture
	fxOnce  sync.Once
	fxErr   error
	nextSrc atomic.Int32
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fx != nil {
		fx.stop()
		<-fx.done
		fx.app.Close()
		_ = fx.smtp.Close()
		_ = fx.env.Stop()
		_ = os.RemoveAll(fx.dir)
	}
	os.Exit(code)
}

// setup starts the shared portal once.
func setup(t testing.TB) *fixture {
	t.Helper()
	fxOnce.Do(func() { fx, fxErr = start(t) })
	if fxErr != nil {
		t.Fatalf("starting portal: %v", fxErr)
	}
	if fx == nil {
		t.Fatal("the portal did not start; see the first test's failure")
	}
	return fx
}

func start(t testing.TB) (*fixture, error) {
	env, err := testenv.Start(context.Background(), testenv.Options{Vault: true,
		Postgres: true})
	if err != nil {
		return nil, err
	}
	f := &fixture{env: env, done: make(chan struct{})}
	if f.dir, err = os.MkdirTemp("", "portal-test-"); err != nil {
		return nil, err
	}
	if f.smtp, err = portaltest.StartSMTP(); err != nil {
		return nil, err
	}
	portaltest.TransitKey(t, env, "north-data")
	f.certFile = filepath.Join(f.dir, "tls.crt")
	f.keyFile = filepath.Join(f.dir, "tls.key")
	f.roots = portaltest.KeyPair(t, f.certFile, f.keyFile)
	tenant := portaltest.TenantFile(t, env, f.dir, "north", "north-data",
		portaltest.Policy())

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	opsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f.base = "https://localhost:" + portOf(ln)
	f.ops = "http://" + opsLn.Addr().String()
	vars := map[string]string{
		"PLEURA_TENANT_FILE":  tenant,
		"PLEURA_DATABASE_DSN": portaltest.Database(t, env, "portal_app"),
		"PLEURA_TLS_CERT":     f.certFile, "PLEURA_TLS_KEY": f.keyFile,
		"PLEURA_VAULT_AUTH": "token", "PLEURA_VAULT_TOKEN": env.Vault.Token,
		"PLEURA_SMTP_RELAY": f.smtp.Addr, "PLEURA_PUBLIC_URL": f.base,
	}
	cfg, err := config.FromEnv(func(k string) string { return vars[k] })
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.stop = cancel
	if f.app, err = app.New(ctx, cfg, log); err != nil {
		return nil, err
	}
	certs, err := server.NewCertReloader(f.certFile, f.keyFile, log)
	if err != nil {
		return nil, err
	}
	certs.CheckEvery = 100 * time.Millisecond
	go func() {
		defer close(f.done)
		_ = f.app.ServeOn(ctx, ln, opsLn, certs)
	}()
	return f, nil
}

func portOf(ln net.Listener) string {
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

// browser is one device: its own cookie jar and its own loopback source
// address, so rate limits per address do not leak between tests.
type browser struct {
	t      testing.TB
	f      *fixture
	c      *http.Client
	src    string
	csrf   string
	last   string
	status int
}

func (f *fixture) browser(t testing.TB) *browser {
	n := nextSrc.Add(1)
	src := fmt.Sprintf("127.0.%d.%d", 1+n/250, 1+n%250)
	return f.browserFrom(t, src)
}

func (f *fixture) browserFrom(t testing.TB, src string) *browser {
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	tr := &http.Transport{DialContext: d.DialContext,
		TLSClientConfig: &tls.Config{RootCAs: f.roots, MinVersion: tls.VersionTLS13}}
	return &browser{t: t, f: f, src: src, c: &http.Client{Jar: jar, Transport: tr}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) take(resp *http.Response, err error) string {
	b.t.Helper()
	if err != nil {
		b.t.Fatalf("request failed: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.status, b.last = resp.StatusCode, string(body)
	if m := csrfField.FindStringSubmatch(b.last); m != nil {
		b.csrf = m[1]
	}
	return b.last
}

// get fetches path, following redirects.
func (b *browser) get(path string) string {
	b.t.Helper()
	return b.take(b.c.Get(b.f.base + path))
}

// post submits a form with the CSRF token of the last page seen.
func (b *browser) post(path string, form url.Values) string {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	return b.take(b.c.PostForm(b.f.base+path, form))
}

// cookie returns the named cookie's value.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.f.base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setCookie(name, value string) {
	u, _ := url.Parse(b.f.base)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/",
		Secure: true}})
}

// user is an enrolled account and what the tests know about it.
type user struct {
	id, email, password, secret string
	recovery                    []string
	step                        int64
}

// totp returns a fresh code: each call moves one step ahead, so replay
// protection never trips by accident. One-step drift allows two per window.
func (u *user) totp(t testing.TB) string {
	t.Helper()
	now := time.Now().Unix() / 30
	next := max(u.step+1, now)
	if next > now+1 {
		// Both steps the server accepts now are used; wait for the window
		// in which next is one step ahead.
		time.Sleep(time.Until(time.Unix((next-1)*30, 0)))
	}
	u.step = next
	return totpAt(t, u.secret, next)
}

func totpAt(t testing.TB, secret string, step int64) string {
	c, err := totp.GenerateCodeCustom(secret, time.Unix(step*30, 0),
		totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	secretRe   = regexp.MustCompile(`id="totp-secret" class="secret">([A-Z2-7]+)<`)
	codeListRe = regexp.MustCompile(`<li><code>([A-Z2-7-]+)</code></li>`)
	enrolRe    = regexp.MustCompile(`id="(?:enrol|issued)-code" class="secret">([A-Z2-7-]+)<`)
)

// enrol redeems code with a password through the UI.
func (b *browser) enrol(code, password string) {
	b.t.Helper()
	b.get("/enrol")
	b.post("/enrol", url.Values{"code": {code}, "password": {password}})
	if b.status != http.StatusOK || !strings.Contains(b.last, "Your password is set") {
		b.t.Fatalf("enrolment failed: %d %s", b.status, b.last)
	}
}

// signIn submits the password form.
func (b *browser) signIn(email, password string) string {
	b.t.Helper()
	b.get("/sign-in")
	return b.post("/sign-in", url.Values{"email": {email}, "password": {password}})
}

// setUpTOTP enrols an authenticator app from the MFA page and keeps the
// secret and recovery codes.
func (b *browser) setUpTOTP(u *user) {
	b.t.Helper()
	b.get("/mfa")
	b.post("/mfa/totp", nil)
	m := secretRe.FindStringSubmatch(b.last)
	if m == nil {
		b.t.Fatalf("no TOTP secret on the page: %d %s", b.status, b.last)
	}
	u.secret = m[1]
	b.post("/mfa/totp/confirm", url.Values{"code": {u.totp(b.t)}})
	for _, c := range codeListRe.FindAllStringSubmatch(b.last, -1) {
		u.recovery = append(u.recovery, c[1])
	}
	if len(u.recovery) != 10 {
		b.t.Fatalf("expected 10 recovery codes: %d %s", b.status, b.last)
	}
}

var userSeq atomic.Int32

// newAdmin mints the first-admin code (once per database) or, later,
// creates an admin directly, enrols it and sets up TOTP; the browser ends
// signed in.
func (f *fixture) newAdmin(t testing.TB) (*user, *browser) {
	t.Helper()
	n := userSeq.Add(1)
	u := &user{email: fmt.Sprintf("admin%d@north.example", n),
		password: "admin passphrase number " + fmt.Sprint(n)}
	code, err := f.app.MintAdminCode(context.Background(), u.email, "Admin", time.Hour)
	if err != nil {
		// Only the first admin comes from the subcommand; invite the rest.
		_, code, err = f.app.Identity.CreateAccount(context.Background(), "",
			adminAccount(u.email), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
	}
	b := f.browser(t)
	b.enrol(code, u.password)
	b.signIn(u.email, u.password)
	if !strings.Contains(b.last, "requires a second factor") {
		t.Fatalf("admin was not sent to MFA enrolment: %d %s", b.status, b.last)
	}
	b.setUpTOTP(u)
	u.id = f.accountID(t, u.email)
	return u, b
}

// newPatient is invited by admin, enrols and signs in (no MFA: patients are
// only offered it). Returns the patient's own browser, signed in.
func (f *fixture) newPatient(t testing.TB, admin *browser) (*user, *browser) {
	t.Helper()
	n := userSeq.Add(1)
	u := &user{email: fmt.Sprintf("patient%d@north.example", n),
		password: "a long patient passphrase " + fmt.Sprint(n)}
	admin.get("/staff/invite")
	admin.post("/staff/invite", url.Values{"displayName": {"Pat " + fmt.Sprint(n)},
		"email": {u.email}, "mrn": {fmt.Sprintf("MRN-%06d", n)}, "dob": {"1950-02-03"}})
	m := enrolRe.FindStringSubmatch(admin.last)
	if m == nil {
		t.Fatalf("no enrolment code: %d %s", admin.status, admin.last)
	}
	b := f.browser(t)
	b.enrol(m[1], u.password)
	b.signIn(u.email, u.password)
	if !strings.Contains(b.last, `id="welcome"`) {
		t.Fatalf("patient did not reach home: %d %s", b.status, b.last)
	}
	u.id = f.accountID(t, u.email)
	return u, b
}

func (f *fixture) accountID(t testing.TB, email string) string {
	t.Helper()
	var id string
	err := f.app.Pool.QueryRow(context.Background(), `SELECT id FROM accounts
		WHERE email_bidx = $1`, f.app.Keys.BlindIndex("email", email)).Scan(&id)
	if err != nil {
		t.Fatalf("finding account: %v", err)
	}
	return id
}

// auditCount counts audit events matching action, subject and reason
// (empty matches anything).
func (f *fixture) auditCount(t testing.TB, action, subject, reason string) int {
	t.Helper()
	var n int
	err := f.app.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_events
		WHERE action = $1 AND ($2 = '' OR subject = $2) AND ($3 = '' OR reason LIKE $3)`,
		action, subject, reason).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// exec runs SQL as the portal's role, to move clocks in the database.
func (f *fixture) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	if _, err := f.app.Pool.Exec(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
}
