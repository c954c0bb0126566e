// Package server is the portal's HTTPS front: TLS 1.3 only with a
// certificate reloaded from disk, security headers on every response, one
// route table in which every route declares its permission (deny by
// default), device-bound sessions with CSRF defence, and handlers that
// decode, validate, authorize, act, audit and render in that order.
package server

import (
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pleura-dev/pleura/internal/tenantconfig"
	"github.com/pleura-dev/pleura/portal/audit"
	"github.com/pleura-dev/pleura/portal/auth"
	"github.com/pleura-dev/pleura/portal/session"
	"github.com/pleura-dev/pleura/portal/web"
)

// Cookie names. The __Host- prefix makes browsers insist on Secure, Path=/
// and no Domain, so a sibling host cannot plant or read them.
const (
	SessionCookie = "__Host-pleura-session"
	DeviceCookie  = "__Host-pleura-device"
)

// maxBody caps request bodies; every form here is small.
const maxBody = 64 << 10

// contentSecurityPolicy allows only the portal's own scripts, styles and
// form targets, and no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// Options configure a Server.
type Options struct {
	// Identity is the identity service.
	Identity *auth.Service
	// Sessions keeps sessions.
	Sessions *session.Manager
	// Audit records security events.
	Audit audit.Recorder
	// Policy returns the current tenant policy.
	Policy func() *tenantconfig.Policy
	// Clinic is the clinic's display name.
	Clinic string
	// PublicURL is the portal's https origin; a cross-origin form post is
	// refused.
	PublicURL string
	// Log receives request logs; opaque ids only.
	Log *slog.Logger
	// Registerer receives the HTTP metrics.
	Registerer prometheus.Registerer
}

// Server is the portal's HTTP handler.
type Server struct {
	Options
	id     *auth.Service
	log    *slog.Logger
	pages  *web.Pages
	mux    *http.ServeMux
	origin string

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New builds the handler from the route table.
func New(o Options) (*Server, error) {
	pages, err := web.Load()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(o.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("public URL: %w", err)
	}
	s := &Server{Options: o, id: o.Identity, log: o.Log, pages: pages,
		mux: http.NewServeMux(), origin: u.Scheme + "://" + u.Host,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pleura_portal_http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pleura_portal_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"route"}),
	}
	o.Registerer.MustRegister(s.requests, s.latency)
	for _, rt := range s.routes() {
		if rt.perm.Access == accessUnset {
			return nil, fmt.Errorf("route %s declares no permission", rt.pattern)
		}
		s.mux.Handle(rt.pattern, s.wrap(rt))
	}
	static := http.FileServerFS(web.Static())
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", static))
	return s, nil
}

// HTTPServer wraps h in an http.Server with the portal's timeouts.
func HTTPServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// ServeHTTP sets the security headers on every response, including 404s.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	h.Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	s.mux.ServeHTTP(w, r)
}

// reqCtx is what the middleware learned about a request.
type reqCtx struct {
	route   string
	source  string
	device  string
	token   string
	sess    *session.Session
	account *auth.Account
	eff     tenantconfig.Effective
}

// csrf is the anti-forgery token forms must carry: bound to the session,
// or before sign-in to the device cookie (so sign-in CSRF fails too).
func (rc *reqCtx) csrf() string {
	if rc.token != "" {
		return session.CSRFToken(rc.token)
	}
	return session.CSRFToken("device:" + rc.device)
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(c int) {
	if w.code == 0 {
		w.code = c
	}
	w.ResponseWriter.WriteHeader(c)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// wrap runs the route's declared checks before its handler: device cookie,
// session, CSRF on every unsafe method, access level, record permission
// and step-up.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		rc := &reqCtx{route: rt.pattern, source: sourceAddr(r)}
		if err := s.admit(sw, r, rc, rt.perm); err != nil {
			s.renderError(sw, r, rc, err, "")
		} else if !s.gate(sw, r, rc, rt.perm) {
			// gate answered: a redirect or a step-up prompt.
		} else if err := rt.h(sw, r, rc); err != nil {
			s.renderError(sw, r, rc, err, rt.page)
		}
		s.requests.WithLabelValues(rt.pattern, strconv.Itoa(sw.code)).Inc()
		s.latency.WithLabelValues(rt.pattern).Observe(time.Since(start).Seconds())
	})
}

// admit loads the device and session and checks CSRF.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, rc *reqCtx,
	p Permission) error {
	ctx := r.Context()
	if c, err := r.Cookie(DeviceCookie); err == nil && len(c.Value) == 43 {
		rc.device = c.Value
	} else {
		if rc.device, err = session.NewDeviceID(); err != nil {
			return err
		}
		http.SetCookie(w, &http.Cookie{Name: DeviceCookie, Value: rc.device, Path: "/",
			MaxAge: 400 * 24 * 3600, Secure: true, HttpOnly: true,
			SameSite: http.SameSiteStrictMode})
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		sess, reason, err := s.Sessions.Lookup(ctx, c.Value, rc.device,
			func(a string) (session.Limits, error) { return s.id.SessionLimits(ctx, a) })
		switch {
		case err == nil:
			rc.sess, rc.token = sess, c.Value
			if rc.account, err = s.id.Get(ctx, sess.AccountID); err != nil {
				return err
			}
			if rc.eff, err = s.id.Effective(rc.account); err != nil {
				return err
			}
		case reason != "":
			s.clearSession(w)
			if err := s.Audit.Record(ctx, audit.Event{Actor: sess.AccountID,
				Action: audit.SessionEnd, Outcome: audit.Success, Subject: sess.PublicID,
				Source: rc.source, Reason: reason}); err != nil {
				return err
			}
		case err == session.ErrNoSession:
			s.clearSession(w)
		default:
			return err
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		// Forms carry the token in a field; WebAuthn's JSON calls in a header.
		got := r.Header.Get("X-CSRF-Token")
		if got == "" {
			got = r.PostFormValue("csrf")
		}
		if !s.sameOrigin(r) || !session.CSRFEqual(got, rc.csrf()) {
			return &Error{Status: http.StatusForbidden, Message: msgCSRF,
				Err: fmt.Errorf("CSRF check failed")}
		}
	}
	return nil
}

// sameOrigin refuses requests a browser marks as cross-site.
func (s *Server) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" && o != s.origin {
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// gate enforces the access level, record permission and step-up; it
// writes the answer and returns false when the request may not proceed.
func (s *Server) gate(w http.ResponseWriter, r *http.Request, rc *reqCtx,
	p Permission) bool {
	switch p.Access {
	case Public:
		return true
	case Pending:
		if rc.sess == nil {
			s.toSignIn(w, r, rc)
			return false
		}
	case SignedIn:
		if rc.sess == nil {
			s.toSignIn(w, r, rc)
			return false
		}
		if rc.sess.State != session.StateFull {
			// Password passed; a second factor is due, or must be set up.
			next := "/sign-in/second-factor"
			if !rc.account.HasMFA() {
				next = "/mfa"
			}
			http.Redirect(w, r, next, http.StatusSeeOther)
			return false
		}
		if rc.eff.MFARequired && !rc.account.HasMFA() {
			http.Redirect(w, r, "/mfa", http.StatusSeeOther)
			return false
		}
	}
	if p.Record != "" {
		if ok, _ := rc.eff.Allows(p.Record, p.Action); !ok {
			// A forbidden object looks like a missing one.
			s.renderError(w, r, rc, &Error{Status: http.StatusNotFound,
				Message: msgForbidden, Err: fmt.Errorf("%s %s not granted", p.Action,
					p.Record)}, "")
			return false
		}
	}
	if s.needsStepUp(rc, p) {
		s.render(w, r, rc, http.StatusForbidden, "second_factor",
			map[string]any{"StepUp": true, "Next": r.URL.Path}, "")
		return false
	}
	return true
}

// needsStepUp reports whether the route needs a fresh second factor that
// the session lacks. An account with no factor yet has nothing to step up
// with; it is enrolling its first one.
func (s *Server) needsStepUp(rc *reqCtx, p Permission) bool {
	if rc.account == nil || !rc.account.HasMFA() {
		return false
	}
	pol := s.Policy()
	for _, a := range p.StepUp {
		if pol.NeedsStepUp(a) &&
			(rc.sess.StepUpAt.IsZero() ||
				time.Since(rc.sess.StepUpAt) > pol.StepUp.Window.Duration) {
			return true
		}
	}
	return false
}

func (s *Server) toSignIn(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if r.Method == http.MethodGet {
		http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
		return
	}
	s.renderError(w, r, rc, &Error{Status: http.StatusUnauthorized,
		Message: "Sign in first.", Err: fmt.Errorf("no session")}, "")
}

func (s *Server) setSession(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func (s *Server) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// pageData is what every template sees.
type pageData struct {
	Clinic   string
	SignedIn bool
	CSRF     string
	Error    string
	Notice   string
	Data     any
}

func (s *Server) render(w http.ResponseWriter, _ *http.Request, rc *reqCtx, status int,
	page string, data any, errMsg string) {
	pd := pageData{Clinic: s.Clinic, CSRF: rc.csrf(), Error: errMsg, Data: data,
		SignedIn: rc.sess != nil && rc.sess.State == session.StateFull}
	if n, ok := data.(notice); ok {
		pd.Notice, pd.Data = n.text, n.data
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var buf strings.Builder
	if err := s.pages.Render(&buf, page, pd); err != nil {
		s.log.Error("Rendering page failed", "page", page, "err", err)
		http.Error(w, msgInternal, http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

// notice wraps page data with a confirmation message.
type notice struct {
	text string
	data any
}

// sourceAddr is the client's address. The portal sits behind the tenant's
// ingress, which must preserve the client address (PROXY protocol or
// externalTrafficPolicy: Local); forwarded headers are not trusted.
func sourceAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// localPath accepts only a path on this site as a redirect target.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") ||
		strings.ContainsAny(p, "\\\r\n") {
		return "/"
	}
	return p
}

// templateURL marks a URL built here (a data: URL of a generated QR code)
// as safe for a src attribute.
func templateURL(u string) template.URL {
	return template.URL(u) //nolint:gosec // built here from PNG bytes, no user input
}
