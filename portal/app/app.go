// Package app wires the portal together from a config.Config: database and
// migrations, Vault login and the tenant keyring, identity, sessions, the
// outbox, the HTTPS server and the operations server, plus the background
// loops (policy reload, rewrap, notification delivery).
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	vaultapi "github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pleura-dev/pleura/internal/tenantconfig"
	"github.com/pleura-dev/pleura/portal/audit"
	"github.com/pleura-dev/pleura/portal/auth"
	"github.com/pleura-dev/pleura/portal/config"
	pcrypto "github.com/pleura-dev/pleura/portal/crypto"
	"github.com/pleura-dev/pleura/portal/notify"
	"github.com/pleura-dev/pleura/portal/server"
	"github.com/pleura-dev/pleura/portal/session"
	"github.com/pleura-dev/pleura/portal/store"
)

// App is a wired portal.
type App struct {
	Config    *config.Config
	Log       *slog.Logger
	Pool      *pgxpool.Pool
	Keys      *pcrypto.Keyring
	Identity  *auth.Service
	Sessions  *session.Manager
	Outbox    *notify.Outbox
	Rewrapper *pcrypto.Rewrapper
	Handler   *server.Server
	Registry  *prometheus.Registry

	policy     atomic.Pointer[tenantconfig.Config]
	vault      *vaultapi.Client
	vaultLogin *vaultapi.Secret
}

// Policy returns the tenant policy currently loaded.
func (a *App) Policy() *tenantconfig.Policy {
	return &a.policy.Load().Policy
}

// SetTenant swaps in a reloaded tenant file; sessions and permissions use
// it from the next request on.
func (a *App) SetTenant(c *tenantconfig.Config) {
	a.policy.Store(c)
}

// New connects to the database and Vault and builds every part.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (*App, error) {
	a := &App{Config: cfg, Log: log, Registry: prometheus.NewRegistry()}
	a.policy.Store(cfg.Tenant)
	a.Registry.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	vc, login, err := VaultLogin(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.vault, a.vaultLogin = vc, login
	if a.Pool, err = store.Open(ctx, cfg.DatabaseDSN); err != nil {
		return nil, err
	}
	v := cfg.Tenant.Vault
	transit := pcrypto.NewVaultTransit(vc, v.TransitMount, v.DataKey)
	if a.Keys, err = pcrypto.NewKeyring(ctx, cfg.Tenant.Tenant.Name, a.Pool,
		transit); err != nil {
		a.Pool.Close()
		return nil, err
	}
	a.Rewrapper = pcrypto.NewRewrapper(a.Pool, transit, log, a.Registry)
	a.Outbox = notify.NewOutbox(a.Pool, a.Keys, cfg.SMTPRelay, cfg.SMTPFrom, log, a.Registry)
	a.Sessions = session.NewManager(a.Pool)
	rec := audit.NewDB(a.Pool)
	clinic := cfg.Tenant.Tenant.DisplayName
	if clinic == "" {
		clinic = cfg.Tenant.Tenant.Name
	}
	a.Identity = &auth.Service{DB: a.Pool, Keys: a.Keys, Hasher: auth.Hasher{
		Params: auth.DefaultArgon2}, Limiter: auth.NewLimiter(a.Pool), Audit: rec,
		Outbox: a.Outbox, Sessions: a.Sessions, Policy: a.Policy, Issuer: clinic}
	if a.Identity.WebAuthn, err = relyingParty(cfg.PublicURL, clinic); err != nil {
		a.Pool.Close()
		return nil, err
	}
	if err := a.Identity.Init(); err != nil {
		a.Pool.Close()
		return nil, err
	}
	a.Handler, err = server.New(server.Options{Identity: a.Identity, Sessions: a.Sessions,
		Audit: rec, Policy: a.Policy, Clinic: clinic, PublicURL: cfg.PublicURL, Log: log,
		Registerer: a.Registry})
	if err != nil {
		a.Pool.Close()
		return nil, err
	}
	return a, nil
}

// Close releases the database pool.
func (a *App) Close() {
	a.Pool.Close()
}

// Serve runs the HTTPS and operations servers and the background loops
// until ctx ends.
func (a *App) Serve(ctx context.Context) error {
	certs, err := server.NewCertReloader(a.Config.TLSCertFile, a.Config.TLSKeyFile, a.Log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.Config.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", a.Config.Listen, err)
	}
	opsLn, err := net.Listen("tcp", a.Config.OpsListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listening on %s: %w", a.Config.OpsListen, err)
	}
	return a.ServeOn(ctx, ln, opsLn, certs)
}

// ServeOn is Serve on given listeners, for tests.
func (a *App) ServeOn(ctx context.Context, ln, opsLn net.Listener,
	certs *server.CertReloader) error {
	srv := server.HTTPServer("", a.Handler, a.Log)
	srv.TLSConfig = certs.TLSConfig()
	ops := server.HTTPServer("", server.OpsHandler(a.Registry, a.Pool.Ping), a.Log)

	go KeepVaultLogin(ctx, a.Config, a.vault, a.vaultLogin, a.Log)
	go a.Rewrapper.Run(ctx, 10*time.Minute)
	go a.sweepEvery(ctx, time.Hour)
	go a.Outbox.Run(ctx, 5*time.Second)
	go a.watchTenantFile(ctx, 10*time.Second)

	errc := make(chan error, 2)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	go func() { errc <- ops.Serve(opsLn) }()
	a.Log.Info("Serving", "addr", ln.Addr().String(), "ops", opsLn.Addr().String())
	select {
	case <-ctx.Done():
	case err := <-errc:
		a.Log.Error("Server stopped", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(srv.Shutdown(sctx), ops.Shutdown(sctx))
}

// watchTenantFile reloads the tenant file when it changes, so a policy
// change reaches the running portal without a restart. An invalid file is
// logged and the previous policy kept.
func (a *App) watchTenantFile(ctx context.Context, every time.Duration) {
	stamp := func() string {
		st, err := os.Stat(a.Config.TenantFile)
		if err != nil {
			return ""
		}
		return fmt.Sprint(st.ModTime().UnixNano(), st.Size())
	}
	last := stamp()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s := stamp(); s != last {
			last = s
			c, err := tenantconfig.Load(a.Config.TenantFile)
			if err != nil {
				a.Log.Error("Reloading tenant file failed; keeping the previous policy",
					"err", err)
				continue
			}
			a.SetTenant(c)
			a.Log.Info("Reloaded tenant policy", "policy", c.Policy.Name,
				"generation", c.Policy.Generation)
		}
	}
}

// relyingParty is the WebAuthn relying party for the portal's origin.
func relyingParty(publicURL, clinic string) (*webauthn.WebAuthn, error) {
	u, err := url.Parse(publicURL)
	if err != nil {
		return nil, fmt.Errorf("PLEURA_PUBLIC_URL: %w", err)
	}
	w, err := webauthn.New(&webauthn.Config{RPID: u.Hostname(), RPDisplayName: clinic,
		RPOrigins: []string{u.Scheme + "://" + u.Host}})
	if err != nil {
		return nil, fmt.Errorf("configuring WebAuthn: %w", err)
	}
	return w, nil
}

// VaultClient logs in to Vault with the configured method.
func VaultClient(ctx context.Context, cfg *config.Config) (*vaultapi.Client, error) {
	vc, _, err := VaultLogin(ctx, cfg)
	return vc, err
}

// VaultLogin returns a logged-in client and, for Kubernetes auth, the login
// secret whose token keepVaultLogin renews.
func VaultLogin(ctx context.Context, cfg *config.Config) (*vaultapi.Client,
	*vaultapi.Secret, error) {
	vcfg := vaultapi.DefaultConfig()
	vcfg.Address = cfg.VaultAddress
	vc, err := vaultapi.NewClient(vcfg)
	if err != nil {
		return nil, nil, fmt.Errorf("creating Vault client: %w", err)
	}
	if cfg.VaultAuth == config.VaultAuthToken {
		vc.SetToken(cfg.VaultToken)
		return vc, nil, nil
	}
	s, err := kubernetesLogin(ctx, vc, cfg)
	if err != nil {
		return nil, nil, err
	}
	return vc, s, nil
}

func kubernetesLogin(ctx context.Context, vc *vaultapi.Client,
	cfg *config.Config) (*vaultapi.Secret, error) {
	// Read the token at every login: the kubelet rotates the projected file.
	jwt, err := os.ReadFile(cfg.ServiceAccountTokenFile)
	if err != nil {
		return nil, fmt.Errorf("reading service-account token: %w", err)
	}
	mount := strings.Trim(cfg.Tenant.Vault.AuthMount, "/")
	if mount == "" {
		mount = "kubernetes"
	}
	s, err := vc.Logical().WriteWithContext(ctx, "auth/"+mount+"/login",
		map[string]any{"role": cfg.Tenant.Vault.Role, "jwt": strings.TrimSpace(string(jwt))})
	if err != nil {
		return nil, fmt.Errorf("logging in to Vault with Kubernetes auth: %w", err)
	}
	if s == nil || s.Auth == nil {
		return nil, errors.New("logging in to Vault: no token returned")
	}
	vc.SetToken(s.Auth.ClientToken)
	return s, nil
}

// KeepVaultLogin renews the Kubernetes-auth token while it can and logs in
// again when it cannot (max TTL reached, revoked), until ctx ends. It
// returns at once for token auth.
func KeepVaultLogin(ctx context.Context, cfg *config.Config, vc *vaultapi.Client,
	secret *vaultapi.Secret, log *slog.Logger) {
	for secret != nil {
		w, err := vc.NewLifetimeWatcher(&vaultapi.LifetimeWatcherInput{Secret: secret})
		if err != nil {
			log.Error("Watching the Vault token failed", "err", err)
			return
		}
		go w.Start()
	renewals:
		for {
			select {
			case <-ctx.Done():
				w.Stop()
				return
			case <-w.RenewCh():
			case err := <-w.DoneCh():
				if err != nil {
					log.Info("Vault token can no longer be renewed; logging in again",
						"err", err)
				}
				break renewals
			}
		}
		w.Stop()
		for {
			if secret, err = kubernetesLogin(ctx, vc, cfg); err == nil {
				break
			}
			log.Error("Logging in to Vault again failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Second):
			}
		}
	}
}

// MintAdminCode creates the tenant's first admin and returns a one-time
// enrolment code valid for ttl. It refuses once any admin exists.
func (a *App) MintAdminCode(ctx context.Context, email, name string,
	ttl time.Duration) (string, error) {
	var n int
	if err := a.Pool.QueryRow(ctx, `SELECT count(*) FROM accounts
		WHERE 'admin' = ANY (roles)`).Scan(&n); err != nil {
		return "", fmt.Errorf("counting admins: %w", err)
	}
	if n > 0 {
		return "", errors.New("an admin already exists; invite further admins from the portal")
	}
	_, code, err := a.Identity.CreateAccount(ctx, "", auth.NewAccount{Kind: auth.KindStaff,
		Roles: []string{"admin"}, DisplayName: name, Email: email}, ttl)
	return code, err
}
