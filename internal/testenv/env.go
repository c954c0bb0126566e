package testenv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// startTimeout bounds how long any one component may take to become ready.
const startTimeout = 90 * time.Second

// Options says which components to start besides etcd and kube-apiserver.
type Options struct {
	// Dir keeps the stack's state (logs, kubeconfig, data). Empty means a new
	// temporary directory, removed by Stop.
	Dir string
	// PleuraCRDs installs Pleura's CRDs from config/crd/bases.
	PleuraCRDs bool
	// CRDDirectoryPaths installs further CRDs, relative to the repo root.
	CRDDirectoryPaths []string
	// ControllerManager runs kube-controller-manager.
	ControllerManager bool
	// Vault runs a Vault dev server with transit and Kubernetes auth
	// configured against this control plane.
	Vault bool
	// CertManager installs cert-manager's CRDs and runs its controllers.
	CertManager bool
	// Postgres runs a PostgreSQL server.
	Postgres bool
}

// Env is a running local stack. Fields for components not requested are nil.
type Env struct {
	// Dir holds logs (<component>.log), the kubeconfig and data.
	Dir string
	// Config is an admin REST config for the API server.
	Config *rest.Config
	// Kubeconfig is the path of an admin kubeconfig for Config.
	Kubeconfig string
	// Environment is the underlying envtest environment.
	Environment *envtest.Environment
	// Vault is the Vault dev server, when Options.Vault is set.
	Vault *Vault
	// Postgres is the PostgreSQL server, when Options.Postgres is set.
	Postgres *Postgres

	root      string
	opts      Options
	ownsDir   bool
	processes []*process
	logs      []*os.File
}

// Start brings up the requested stack. On error, whatever started is stopped
// again and the error names the component and its log file.
func Start(ctx context.Context, opts Options) (*Env, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	e := &Env{root: root, opts: opts, Dir: opts.Dir}
	if e.Dir == "" {
		if e.Dir, err = os.MkdirTemp("", "pleura-stack-"); err != nil {
			return nil, fmt.Errorf("creating state directory: %w", err)
		}
		e.ownsDir = true
	} else if err := os.MkdirAll(e.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	if err := e.start(ctx); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	return e, nil
}

// StartForTest starts a stack for one test or test binary and stops it in
// t.Cleanup. A missing binary fails the test with the command to build it.
func StartForTest(t testing.TB, opts Options) *Env {
	t.Helper()
	env, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("starting local stack: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping local stack: %v", err)
		}
	})
	return env
}

func (e *Env) start(ctx context.Context) error {
	crds, err := e.crdPaths()
	if err != nil {
		return err
	}
	if err := e.startControlPlane(crds); err != nil {
		return err
	}
	if e.opts.ControllerManager {
		if err := e.startControllerManager(ctx); err != nil {
			return err
		}
	}
	if e.opts.Vault {
		if err := e.startVault(ctx); err != nil {
			return err
		}
		if err := e.configureKubernetesAuth(ctx); err != nil {
			return err
		}
	}
	if e.opts.CertManager {
		if err := e.startCertManager(ctx); err != nil {
			return err
		}
	}
	if e.opts.Postgres {
		if err := e.startPostgres(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (e *Env) crdPaths() ([]string, error) {
	var paths []string
	if e.opts.PleuraCRDs {
		paths = append(paths, filepath.Join(e.root, "config", "crd", "bases"))
	}
	for _, p := range e.opts.CRDDirectoryPaths {
		paths = append(paths, filepath.Join(e.root, p))
	}
	if e.opts.CertManager {
		dir, err := certManagerCRDs(e.root)
		if err != nil {
			return nil, err
		}
		paths = append(paths, dir)
	}
	return paths, nil
}

// Stop ends every component, newest first, and removes a temporary Dir. It
// is safe to call more than once.
func (e *Env) Stop() error {
	var errs []error
	for _, p := range slices.Backward(e.processes) {
		errs = append(errs, p.stop())
	}
	e.processes = nil
	if e.Environment != nil {
		if err := e.Environment.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping etcd and kube-apiserver: %w", err))
		}
		e.Environment = nil
	}
	for _, f := range e.logs {
		_ = f.Close()
	}
	e.logs = nil
	if e.ownsDir {
		if err := os.RemoveAll(e.Dir); err != nil {
			errs = append(errs, fmt.Errorf("removing state directory: %w", err))
		}
		e.ownsDir = false
	}
	return errors.Join(errs...)
}

// logWriter opens Dir/name.log for a component envtest starts itself.
func (e *Env) logWriter(name string) (io.Writer, io.Writer) {
	f, err := os.OpenFile(filepath.Join(e.Dir, name+".log"),
		os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return io.Discard, io.Discard
	}
	e.logs = append(e.logs, f)
	return f, f
}

// healthz polls a component's HTTPS /healthz on loopback. Components serve
// it with a self-signed certificate and no credentials are sent.
func (e *Env) healthz(port int) func(context.Context) error {
	client := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			// Loopback probe of a self-signed local component; nothing secret
			// crosses it.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // see above
		},
	}
	url := "https://" + loopback(port) + "/healthz"
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz answered %s", resp.Status)
		}
		return nil
	}
}
