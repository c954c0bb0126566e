package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
	"github.com/pleura-dev/pleura/controllers"
	"github.com/pleura-dev/pleura/internal/testenv"
	"github.com/pleura-dev/pleura/internal/vault"
)

// Knobs, from the environment so `make bench` can shrink a run.
var (
	tenants = envInt("PLEURA_BENCH_TENANTS", 200)
	// steadyWindow is how long steady-state writes are counted.
	steadyWindow = time.Duration(envInt("PLEURA_BENCH_STEADY_SECONDS", 30)) * time.Second
	// convergeLimit stops a broken run.
	convergeLimit = 30 * time.Minute
	// floorWorkers is the plain client's parallelism, matching the
	// operator's default workers.
	floorWorkers = controllers.DefaultWorkers
)

const policyName = "bench"

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkConvergence runs once per invocation regardless of b.N: the
// figures are a single run's, reported as custom metrics.
func BenchmarkConvergence(b *testing.B) {
	ctx := b.Context()
	ctrl.SetLogger(logr.Discard())
	env := testenv.StartForTest(b, testenv.Options{PleuraCRDs: true, Vault: true,
		CertManager: true})
	if err := env.InstallLocalCA(ctx); err != nil {
		b.Fatal(err)
	}
	scheme, err := controllers.NewScheme()
	if err != nil {
		b.Fatal(err)
	}
	counter := &writeCounter{}
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 200, 400
	cfg.Wrap(counter.wrap)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	vc, err := vault.NewWithToken(env.Vault.Addr, env.Vault.Token)
	if err != nil {
		b.Fatal(err)
	}
	ap := benchPolicy()
	if err := c.Create(ctx, ap); err != nil {
		b.Fatal(err)
	}

	for b.Loop() {
		op := runOperator(ctx, b, env, cfg, vc, c, counter)
		floor := runFloor(ctx, b, c, vc, ap, env.Vault.Addr, counter)
		b.ReportMetric(op.converge.Seconds(), "operator-converge-s")
		b.ReportMetric(floor.converge.Seconds(), "floor-converge-s")
		b.ReportMetric(op.converge.Seconds()/floor.converge.Seconds(), "ratio")
		b.ReportMetric(op.writesPerTenant, "operator-writes/tenant")
		b.ReportMetric(floor.writesPerTenant, "floor-writes/tenant")
		b.ReportMetric(op.steadyWrites, "steady-writes")
		b.ReportMetric(op.heapMB, "operator-heap-MB")
		fmt.Fprintf(os.Stderr, "\n%d tenants: operator %s (%.1f writes/tenant), floor %s "+
			"(%.1f writes/tenant), ratio %.2f; steady-state writes in %s: %.0f; "+
			"operator heap %.1f MB\n", tenants, op.converge.Round(time.Second),
			op.writesPerTenant, floor.converge.Round(time.Second), floor.writesPerTenant,
			op.converge.Seconds()/floor.converge.Seconds(), steadyWindow, op.steadyWrites,
			op.heapMB)
	}
}

type result struct {
	converge        time.Duration
	writesPerTenant float64
	steadyWrites    float64
	heapMB          float64
}

func runOperator(ctx context.Context, b *testing.B, env *testenv.Env, cfg *rest.Config,
	vc *vault.Client, c client.Client, counter *writeCounter) result {
	scheme, _ := controllers.NewScheme()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme,
		Cache:      controllers.CacheOptions(),
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)}})
	if err != nil {
		b.Fatal(err)
	}
	err = controllers.Setup(mgr, vc, controllers.Settings{DefaultIssuer: testenv.LocalCAIssuer,
		VaultAddressForPortal: env.Vault.Addr})
	if err != nil {
		b.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := mgr.Start(mctx); err != nil {
			b.Error(err)
		}
	})
	defer func() { cancel(); wg.Wait() }()

	start, w0 := time.Now(), counter.n.Load()
	for i := range tenants {
		if err := c.Create(ctx, benchTenant(fmt.Sprintf("op-%03d", i))); err != nil {
			b.Fatal(err)
		}
	}
	if err := waitTenants(ctx, c); err != nil {
		b.Fatal(err)
	}
	converge := time.Since(start)
	fmt.Fprintf(os.Stderr, "operator writes by kind during convergence: %v\n", counter.take())
	// The benchmark's own tenant creations are not the operator's writes.
	writes := counter.n.Load() - w0 - int64(tenants)

	counter.take()
	w1 := counter.n.Load()
	time.Sleep(steadyWindow)
	steady := counter.n.Load() - w1

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc) - float64(base.HeapAlloc)
	return result{converge: converge, writesPerTenant: float64(writes) / float64(tenants),
		steadyWrites: float64(steady), heapMB: heap / (1 << 20)}
}

// waitTenants polls until every tenant has all safeguard conditions True.
func waitTenants(ctx context.Context, c client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, convergeLimit)
	defer cancel()
	types := []string{portalv1.ConditionNamespaceReady, portalv1.ConditionNetworkIsolated,
		portalv1.ConditionEncryptionKeyReady, portalv1.ConditionTLSReady,
		portalv1.ConditionAccessPolicyLoaded}
	for {
		list := &portalv1.PortalTenantList{}
		if err := c.List(ctx, list); err != nil {
			return err
		}
		done := 0
		for _, t := range list.Items {
			ok := true
			for _, typ := range types {
				ok = ok && meta.IsStatusConditionTrue(t.Status.Conditions, typ)
			}
			if ok {
				done++
			}
		}
		if done == tenants {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d tenants converged: %w", done, tenants, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// runFloor creates, with a plain client and as many workers as the
// operator, the same Kubernetes and Vault objects, then waits for the
// certificates like the operator must.
func runFloor(ctx context.Context, b *testing.B, c client.Client, vc *vault.Client,
	ap *portalv1.AccessPolicy, vaultAddr string, counter *writeCounter) result {
	start, w0 := time.Now(), counter.n.Load()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(floorWorkers)
	for i := range tenants {
		t := defaulted(benchTenant(fmt.Sprintf("fl-%03d", i)))
		g.Go(func() error { return createFloorTenant(gctx, c, vc, ap, t, vaultAddr) })
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	if err := waitCertificates(ctx, c); err != nil {
		b.Fatal(err)
	}
	return result{converge: time.Since(start),
		writesPerTenant: float64(counter.n.Load()-w0) / float64(tenants)}
}

func createFloorTenant(ctx context.Context, c client.Client, vc *vault.Client,
	ap *portalv1.AccessPolicy, t *portalv1.PortalTenant, vaultAddr string) error {
	objs, err := controllers.RenderObjects(t, ap, controllers.Settings{
		DefaultIssuer: testenv.LocalCAIssuer, VaultAddressForPortal: vaultAddr})
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	n := controllers.VaultNamesFor(t.Name)
	if _, err := vc.EnsureTransitKey(ctx, "transit", n.DataKey, vault.KeyOptions{
		Type: "aes256-gcm96", AutoRotatePeriod: 2160 * time.Hour}); err != nil {
		return err
	}
	if _, err := vc.EnsureTransitKey(ctx, "transit", n.SigningKey,
		vault.KeyOptions{Type: "ed25519"}); err != nil {
		return err
	}
	if err := vc.EnsurePolicy(ctx, n.Policy, controllers.TenantPolicy("transit", n)); err != nil {
		return err
	}
	return vc.EnsureKubernetesRole(ctx, "kubernetes", n.Role, vault.KubernetesRole{
		ServiceAccounts: []string{"portal"}, Namespaces: []string{t.Spec.Namespace},
		Policies: []string{n.Policy}, Audience: controllers.VaultAudience,
		TokenTTL: time.Hour})
}

func waitCertificates(ctx context.Context, c client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, convergeLimit)
	defer cancel()
	for {
		list := &cmapi.CertificateList{}
		if err := c.List(ctx, list); err != nil {
			return err
		}
		ready := 0
		for _, cert := range list.Items {
			if len(cert.Namespace) < 9 || cert.Namespace[:9] != "bench-fl-" {
				continue
			}
			for _, cond := range cert.Status.Conditions {
				if cond.Type == cmapi.CertificateConditionReady &&
					cond.Status == cmmeta.ConditionTrue {
					ready++
				}
			}
		}
		if ready == tenants {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d floor certificates ready: %w", ready, tenants,
				ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func benchPolicy() *portalv1.AccessPolicy {
	return &portalv1.AccessPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: policyName},
		Spec: portalv1.AccessPolicySpec{Roles: []portalv1.Role{{Name: "patient",
			Grants: []portalv1.Grant{{Record: "spirometry", Actions: []string{"read"}}}}}},
	}
}

func benchTenant(name string) *portalv1.PortalTenant {
	return &portalv1.PortalTenant{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: portalv1.PortalTenantSpec{
			DisplayName: "Bench " + name, Namespace: "bench-" + name,
			AccessPolicyRef: portalv1.PolicyReference{Name: policyName},
			Portal: portalv1.PortalSpec{Image: "pleura/portal:bench",
				Hostname: name + ".portal.example"},
		},
	}
}

// defaulted fills what the CRD defaults, for objects that never reach the
// API server as tenants.
func defaulted(t *portalv1.PortalTenant) *portalv1.PortalTenant {
	t.UID = "00000000-0000-0000-0000-000000000000"
	t.Spec.Portal.Replicas = 2
	t.Spec.Portal.Resources = portalv1.PortalResources{
		Requests: portalv1.ComputeResources{CPU: "100m", Memory: "128Mi"},
		Limits:   portalv1.ComputeResources{CPU: "1", Memory: "512Mi"}}
	t.Spec.Encryption = portalv1.EncryptionSpec{TransitMount: "transit",
		KubernetesAuthMount: "kubernetes",
		RotationPeriod:      metav1.Duration{Duration: 2160 * time.Hour}}
	t.Spec.TLS = portalv1.TLSSpec{Duration: metav1.Duration{Duration: 2160 * time.Hour},
		RenewBefore: metav1.Duration{Duration: 360 * time.Hour}, MinVersion: "1.3"}
	return t
}

// writeCounter counts API requests that change something, in total and
// by method and resource.
type writeCounter struct {
	n  atomic.Int64
	mu sync.Mutex
	by map[string]int
}

func (w *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return rtFunc(func(req *http.Request) (*http.Response, error) {
		switch req.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			w.n.Add(1)
			w.mu.Lock()
			if w.by == nil {
				w.by = map[string]int{}
			}
			w.by[req.Method+" "+resourceOf(req.URL.Path)]++
			w.mu.Unlock()
		}
		return rt.RoundTrip(req)
	})
}

// take returns the counts by method and resource since the last take.
func (w *writeCounter) take() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	by := w.by
	w.by = nil
	return by
}

// resourceOf reduces an API path to its resource and subresource, e.g.
// "portaltenants/status".
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	known := map[string]bool{"namespaces": true}
	var out []string
	for i := 0; i < len(parts); i++ {
		p := parts[i]
		if p == "api" || p == "apis" || strings.Contains(p, ".") || strings.HasPrefix(p, "v1") ||
			p == "v2" {
			continue
		}
		if known[p] && i+2 < len(parts) {
			i++ // skip the namespace's name
			continue
		}
		out = append(out, p)
		i++ // skip the object's name
	}
	return strings.Join(out, "/")
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
