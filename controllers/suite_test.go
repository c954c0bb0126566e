package controllers_test

import (
	"context"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/pleura-dev/pleura/controllers"
	"github.com/pleura-dev/pleura/internal/testenv"
	"github.com/pleura-dev/pleura/internal/vault"
)

// Bounds for Eventually. Nothing asserts a duration; these only stop a
// broken run. Certificates took about 5 seconds on a 2-core machine.
const (
	convergeBound = 90 * time.Second
	poll          = 250 * time.Millisecond
	// testResync shortens VaultResyncPeriod so drift in Vault is restored
	// within a test.
	testResync = 3 * time.Second
)

var (
	env      *testenv.Env
	k8s      client.Client
	root     *vaultapi.Client
	opVault  *switchableVault
	operator *runningOperator
	writes   = &writeCounter{}
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "controllers integration")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	var err error
	env, err = testenv.Start(context.Background(), testenv.Options{PleuraCRDs: true,
		Vault: true, CertManager: true, ControllerManager: true})
	Expect(err).NotTo(HaveOccurred())
	Expect(env.InstallLocalCA(ctx)).To(Succeed())
	scheme, err := controllers.NewScheme()
	Expect(err).NotTo(HaveOccurred())
	k8s, err = client.New(env.Config, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	root = env.Vault.Client

	// The operator runs with a token holding only the shipped policy, so
	// every test also proves that policy is enough.
	hcl, err := os.ReadFile("../config/vault/operator-policy.hcl")
	Expect(err).NotTo(HaveOccurred())
	Expect(root.Sys().PutPolicyWithContext(ctx, "pleura-operator", string(hcl))).To(Succeed())
	tok, err := root.Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{
		Policies: []string{"pleura-operator"}, Period: "1h", NoDefaultPolicy: true})
	Expect(err).NotTo(HaveOccurred())
	real, err := vault.NewWithToken(env.Vault.Addr, tok.Auth.ClientToken)
	Expect(err).NotTo(HaveOccurred())
	dead, err := vault.NewWithToken("http://127.0.0.1:1", tok.Auth.ClientToken)
	Expect(err).NotTo(HaveOccurred())
	opVault = &switchableVault{up: real, down: dead}
	operator = startOperator()
}, NodeTimeout(10*time.Minute))

var _ = AfterSuite(func() {
	if operator != nil {
		operator.stop()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// runningOperator is one manager process-equivalent: its own cache,
// clients and controllers.
type runningOperator struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func startOperator() *runningOperator {
	GinkgoHelper()
	scheme, err := controllers.NewScheme()
	Expect(err).NotTo(HaveOccurred())
	cfg := rest.CopyConfig(env.Config)
	cfg.Wrap(writes.wrap)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Cache:   controllers.CacheOptions(),
		Metrics: metricsserver.Options{BindAddress: "0"},
		// A restarted manager in the same process reuses controller names.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(controllers.Setup(mgr, opVault, controllers.Settings{
		DefaultIssuer: testenv.LocalCAIssuer, VaultAddressForPortal: env.Vault.Addr,
		VaultResyncPeriod: testResync})).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	op := &runningOperator{cancel: cancel}
	op.done.Add(1)
	go func() {
		defer GinkgoRecover()
		defer op.done.Done()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	return op
}

func (o *runningOperator) stop() {
	o.cancel()
	o.done.Wait()
}

// writeCounter counts API requests that change something.
type writeCounter struct{ n atomic.Int64 }

func (w *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		switch req.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			w.n.Add(1)
		}
		return rt.RoundTrip(req)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// switchableVault is the operator's real Vault client, or the same client
// pointed at a closed port to simulate an outage.
type switchableVault struct {
	mu       sync.Mutex
	up, down *vault.Client
	outage   bool
}

func (s *switchableVault) setOutage(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outage = on
}

func (s *switchableVault) c() *vault.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outage {
		return s.down
	}
	return s.up
}

func (s *switchableVault) EnsureTransitKey(ctx context.Context, mount, name string,
	o vault.KeyOptions) (*vault.KeyInfo, error) {
	return s.c().EnsureTransitKey(ctx, mount, name, o)
}

func (s *switchableVault) RotateTransitKey(ctx context.Context, mount, name string) error {
	return s.c().RotateTransitKey(ctx, mount, name)
}

func (s *switchableVault) DestroyTransitKey(ctx context.Context, mount, name string) error {
	return s.c().DestroyTransitKey(ctx, mount, name)
}

func (s *switchableVault) EnsurePolicy(ctx context.Context, name, rules string) error {
	return s.c().EnsurePolicy(ctx, name, rules)
}

func (s *switchableVault) DeletePolicy(ctx context.Context, name string) error {
	return s.c().DeletePolicy(ctx, name)
}

func (s *switchableVault) EnsureKubernetesRole(ctx context.Context, mount, name string,
	r vault.KubernetesRole) error {
	return s.c().EnsureKubernetesRole(ctx, mount, name, r)
}

func (s *switchableVault) DeleteKubernetesRole(ctx context.Context, mount, name string) error {
	return s.c().DeleteKubernetesRole(ctx, mount, name)
}
