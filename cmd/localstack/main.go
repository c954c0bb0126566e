// Command localstack runs Pleura's local stack in the foreground: etcd,
// kube-apiserver, kube-controller-manager, a Vault dev server, cert-manager's
// controllers with a sample CA issuer, and PostgreSQL. It writes the
// kubeconfig and an env file under --dir, touches --dir/ready once every
// component serves, and stops them all on SIGTERM or SIGINT. `make demo-up`
// runs it in the background; `make demo-down` stops it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/pleura-dev/pleura/internal/testenv"
)

func main() {
	dir := flag.String("dir", ".state/demo", "directory for logs, kubeconfig and data")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "localstack:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("resolving --dir: %w", err)
	}
	// A stale ready marker would let `make demo-up` return too early.
	_ = os.Remove(filepath.Join(dir, "ready"))

	env, err := testenv.Start(ctx, testenv.Options{Dir: dir, PleuraCRDs: hasPleuraCRDs(),
		ControllerManager: true, Vault: true, CertManager: true, Postgres: true})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("localstack: stopping")
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "localstack:", err)
		}
	}()
	if err := env.InstallLocalCA(ctx); err != nil {
		return err
	}

	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte(env.Exports()), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", envFile, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o644); err != nil {
		return fmt.Errorf("writing ready marker: %w", err)
	}
	fmt.Println("localstack: ready; environment in", envFile)
	<-ctx.Done()
	return nil
}

func hasPleuraCRDs() bool {
	root, err := testenv.RepoRoot()
	if err != nil {
		return false
	}
	matches, _ := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	return len(matches) > 0
}
