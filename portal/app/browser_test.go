package app_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	. "github.com/onsi/gomega"
)

// chromium finds the system's Chromium; hack/deps.sh installs it.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is not installed: run hack/deps.sh (apt-get install chromium)")
	return ""
}

// spki is the base64 SHA-256 of the serving certificate's public key, so
// Chromium trusts exactly that certificate (WebAuthn refuses origins with
// certificate errors).
func spki(t *testing.T, certFile string) string {
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// TestBrowserSignUpTOTPWebAuthnAndBack drives headless Chromium through
// enrolment, TOTP set-up, a WebAuthn virtual authenticator, sign-out, and
// sign-in again with the security key and then with a TOTP code.
func TestBrowserSignUpTOTPWebAuthnAndBack(t *testing.T) {
	f := setup(t)
	g := NewWithT(t)
	_, ab := f.newAdmin(t)
	ab.get("/staff/invite")
	email := "browser@north.example"
	ab.post("/staff/invite", url.Values{"displayName": {"Browser Patient"},
		"email": {email}})
	code := enrolRe.FindStringSubmatch(ab.last)[1]
	const password = "a browser patient's passphrase"

	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium(t)), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("ignore-certificate-errors-spki-list", spki(t, f.certFile)))
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first call starts the browser; it must not carry a timeout.
	if err := chromedp.Do(bctx, chromedp.Navigate(f.base+"/enrol")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			page, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
			t.Fatalf("%s: %v\n%s", what, err, page)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	do("enrol",
		chromedp.SendKeys(chromedp.CSS("#code"), code),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#enrol")),
		chromedp.WaitVisible(chromedp.CSS("p.notice")))
	g.Expect(text("p.notice")).To(ContainSubstring("Your password is set"))
	signIn := func() {
		do("sign in",
			chromedp.Navigate(f.base+"/sign-in"),
			chromedp.SendKeys(chromedp.CSS("#email"), email),
			chromedp.SendKeys(chromedp.CSS("#password"), password),
			chromedp.Click(chromedp.CSS("#sign-in")))
	}
	signIn()
	do("home", chromedp.WaitVisible(chromedp.CSS("#welcome")))

	u := &user{}
	do("begin TOTP", chromedp.Navigate(f.base+"/mfa"), chromedp.Click(chromedp.CSS("#totp-begin")),
		chromedp.WaitVisible(chromedp.CSS("#totp-secret")))
	u.secret = text("#totp-secret")
	do("confirm TOTP", chromedp.SendKeys(chromedp.CSS("#code"), u.totp(t)),
		chromedp.Click(chromedp.CSS("#totp-confirm")),
		chromedp.WaitVisible(chromedp.CSS("#recovery-codes")))
	g.Expect(strings.Count(text("#recovery-codes"), "-")).To(BeNumerically(">=", 10))

	_, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{})
	g.Expect(err).NotTo(HaveOccurred())
	added, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator,
		webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:  webauthn.AuthenticatorProtocolCtap2,
			Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true,
			HasUserVerification: true, IsUserVerified: true,
			AutomaticPresenceSimulation: true}})
	g.Expect(err).NotTo(HaveOccurred())

	do("register security key", chromedp.Navigate(f.base+"/mfa"),
		chromedp.Click(chromedp.CSS("#webauthn-register")),
		chromedp.WaitVisible(chromedp.CSS("#webauthn-on")))
	g.Expect(text("#webauthn-on")).To(ContainSubstring("1"))
	creds, err := chromedp.Call(ctx, webauthn.GetCredentials,
		webauthn.GetCredentialsParams{AuthenticatorID: added.AuthenticatorID})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(creds.Credentials).To(HaveLen(1))

	do("sign out", chromedp.Click(chromedp.CSS("#sign-out")),
		chromedp.WaitVisible(chromedp.CSS("#sign-in")))
	signIn()
	do("sign in with the security key", chromedp.WaitVisible(chromedp.CSS("#verify")),
		chromedp.Click(chromedp.CSS("#webauthn-login")),
		chromedp.WaitVisible(chromedp.CSS("#welcome")))

	// Step-up with the security key before a contact change.
	id := f.accountID(t, email)
	f.exec(t, `UPDATE sessions SET stepup_at = now() - interval '1 hour'
		WHERE account_id = $1`, id)
	do("change contact details", chromedp.Navigate(f.base+"/profile"),
		chromedp.SendKeys(chromedp.CSS(`input[name="phone"]`), "+1 555 0123"),
		chromedp.Submit(chromedp.CSS(`input[name="phone"]`)),
		chromedp.WaitVisible(chromedp.CSS("#verify")))
	g.Expect(text("h1")).To(Equal("Confirm it is you"))
	do("step up with the security key", chromedp.Click(chromedp.CSS("#webauthn-login")),
		chromedp.WaitVisible(chromedp.CSS(`input[name="phone"]`)))
	do("change contact details after step-up",
		chromedp.SendKeys(chromedp.CSS(`input[name="phone"]`), "+1 555 0123"),
		chromedp.Submit(chromedp.CSS(`input[name="phone"]`)),
		chromedp.WaitVisible(chromedp.CSS("p.notice")))
	g.Expect(text("p.notice")).To(Equal("Saved."))

	do("sign out again", chromedp.Click(chromedp.CSS("#sign-out")),
		chromedp.WaitVisible(chromedp.CSS("#sign-in")))
	signIn()
	do("sign in with TOTP", chromedp.WaitVisible(chromedp.CSS("#verify")),
		chromedp.SendKeys(chromedp.CSS("#code"), u.totp(t)),
		chromedp.Click(chromedp.CSS("#verify")), chromedp.WaitVisible(chromedp.CSS("#welcome")))

	g.Expect(f.auditCount(t, "secondFactor", id, "webauthn")).To(Equal(1))
	g.Expect(f.auditCount(t, "stepUp", id, "webauthn")).To(Equal(1))
	g.Expect(f.auditCount(t, "mfaChange", id, "webauthnAdded")).To(Equal(1))
}
