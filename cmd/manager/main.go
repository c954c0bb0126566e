// Command manager runs the Pleura operator: the PortalTenant and
// AccessPolicy controllers, metrics on --metrics-bind-address and health
// probes. It reaches Vault with a token read from a Secret
// (--vault-token-secret, the local stack) or with Kubernetes auth
// (--vault-kubernetes-role, inside a cluster).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/pleura-dev/pleura/controllers"
	"github.com/pleura-dev/pleura/internal/vault"
)

// tokenRenewInterval is how often the operator renews its Vault token; the
// local stack's token has a 24h period.
const tokenRenewInterval = time.Hour

type flags struct {
	metricsAddr, probeAddr                    string
	leaderElect                               bool
	vaultAddr, vaultAddrForPortal             string
	vaultTokenSecret                          string
	vaultK8sRole, vaultK8sMount, vaultJWTPath string
	defaultIssuer                             string
	workers                                   int
}

func main() {
	var f flags
	flag.StringVar(&f.metricsAddr, "metrics-bind-address", "127.0.0.1:8080",
		"address the /metrics endpoint binds to; 0 disables it")
	flag.StringVar(&f.probeAddr, "health-probe-bind-address", "127.0.0.1:8081",
		"address the /healthz and /readyz endpoints bind to")
	flag.BoolVar(&f.leaderElect, "leader-elect", false,
		"elect a leader so only one replica reconciles")
	flag.StringVar(&f.vaultAddr, "vault-addr", os.Getenv("VAULT_ADDR"),
		"Vault URL the operator uses (default $VAULT_ADDR)")
	flag.StringVar(&f.vaultAddrForPortal, "vault-addr-for-portal", "",
		"Vault URL written into tenant configs for portal pods (default --vault-addr)")
	flag.StringVar(&f.vaultTokenSecret, "vault-token-secret", "",
		"NAMESPACE/NAME of a Secret whose key \"token\" holds the operator's Vault token")
	flag.StringVar(&f.vaultK8sRole, "vault-kubernetes-role", "",
		"Vault Kubernetes auth role to log in with (inside a cluster)")
	flag.StringVar(&f.vaultK8sMount, "vault-kubernetes-mount", "kubernetes",
		"Vault Kubernetes auth mount path")
	flag.StringVar(&f.vaultJWTPath, "vault-jwt-path",
		"/var/run/secrets/kubernetes.io/serviceaccount/token",
		"service account token file for Vault Kubernetes auth")
	flag.StringVar(&f.defaultIssuer, "default-issuer", "pleura-local-ca",
		"ClusterIssuer used when a tenant sets no spec.tls.issuerRef")
	flag.IntVar(&f.workers, "workers", controllers.DefaultWorkers,
		"how many tenants reconcile at once")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))

	if err := run(ctrl.SetupSignalHandler(), f); err != nil {
		ctrl.Log.Error(err, "Operator stopped")
		os.Exit(1)
	}
}

func run(ctx context.Context, f flags) error {
	if f.vaultAddr == "" {
		return errors.New("--vault-addr is required (or set VAULT_ADDR)")
	}
	if f.vaultAddrForPortal == "" {
		f.vaultAddrForPortal = f.vaultAddr
	}
	scheme, err := controllers.NewScheme()
	if err != nil {
		return err
	}
	cfg := ctrl.GetConfigOrDie()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: f.metricsAddr},
		HealthProbeBindAddress: f.probeAddr,
		LeaderElection:         f.leaderElect,
		LeaderElectionID:       "pleura-operator.portal.pleura.dev",
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	v, err := vaultClient(ctx, mgr.GetAPIReader(), f)
	if err != nil {
		return err
	}
	go v.RenewTokenEvery(ctx, tokenRenewInterval, func(err error) {
		ctrl.Log.Error(err, "Renewing Vault token")
	})
	err = controllers.Setup(mgr, v, controllers.Settings{DefaultIssuer: f.defaultIssuer,
		VaultAddressForPortal: f.vaultAddrForPortal, Workers: f.workers})
	if err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding ready check: %w", err)
	}
	ctrl.Log.Info("Starting operator", "vaultAddr", f.vaultAddr,
		"defaultIssuer", f.defaultIssuer)
	return mgr.Start(ctx)
}

// vaultClient authenticates to Vault; the token itself is never logged.
func vaultClient(ctx context.Context, r client.Reader, f flags) (*vault.Client, error) {
	if f.vaultK8sRole != "" {
		return vault.NewWithKubernetesAuth(ctx, f.vaultAddr, f.vaultK8sMount, f.vaultK8sRole,
			f.vaultJWTPath)
	}
	ns, name, ok := strings.Cut(f.vaultTokenSecret, "/")
	if !ok || ns == "" || name == "" {
		return nil, fmt.Errorf("--vault-token-secret %q: want NAMESPACE/NAME, or use "+
			"--vault-kubernetes-role", f.vaultTokenSecret)
	}
	s := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		return nil, fmt.Errorf("reading Vault token Secret %s: %w", f.vaultTokenSecret, err)
	}
	token := strings.TrimSpace(string(s.Data["token"]))
	if token == "" {
		return nil, fmt.Errorf("Secret %s has no key \"token\"; create it with "+
			"kubectl create secret generic --from-literal=token=...", f.vaultTokenSecret)
	}
	return vault.NewWithToken(f.vaultAddr, token)
}
