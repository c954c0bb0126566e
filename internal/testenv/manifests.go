package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldManager is the server-side apply field manager of the harness.
const FieldManager = "pleura-testenv"

// LocalCAIssuer is the ClusterIssuer that config/samples/local-ca-issuer.yaml
// creates; tests and the local stack issue portal certificates from it.
const LocalCAIssuer = "pleura-local-ca"

// ApplyFile server-side applies every object in a multi-document YAML file,
// relative to the repo root, and returns them as applied.
func (e *Env) ApplyFile(ctx context.Context, c client.Client, path string) (
	[]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(filepath.Join(e.root, path))
	if err != nil {
		return nil, fmt.Errorf("reading manifests: %w", err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var applied []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return applied, nil
			}
			return applied, fmt.Errorf("decoding %s: %w", path, err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj),
			client.FieldOwner(FieldManager), client.ForceOwnership)
		if err != nil {
			return applied, fmt.Errorf("applying %s %s from %s: %w", obj.GetKind(),
				client.ObjectKeyFromObject(obj), path, err)
		}
		applied = append(applied, obj)
	}
}

// localCAReadyTimeout bounds how long the sample CA issuer may take.
const localCAReadyTimeout = 60 * time.Second

// InstallLocalCA applies config/samples/local-ca-issuer.yaml and waits until
// the pleura-local-ca ClusterIssuer is Ready to sign.
func (e *Env) InstallLocalCA(ctx context.Context) error {
	c, err := client.New(e.Config, client.Options{})
	if err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	if _, err := e.ApplyFile(ctx, c, "config/samples/local-ca-issuer.yaml"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, localCAReadyTimeout)
	defer cancel()
	issuer := &unstructured.Unstructured{}
	issuer.SetAPIVersion("cert-manager.io/v1")
	issuer.SetKind("ClusterIssuer")
	for {
		err := c.Get(ctx, client.ObjectKey{Name: LocalCAIssuer}, issuer)
		if err == nil && readyCondition(issuer) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ClusterIssuer %s not Ready within %s (see %s): %w",
				LocalCAIssuer, localCAReadyTimeout,
				filepath.Join(e.Dir, "cert-manager.log"), errors.Join(ctx.Err(), err))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func readyCondition(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// Exports renders shell lines that point kubectl and the vault CLI at the
// stack. The Vault root token is written only here, to a 0600 file.
func (e *Env) Exports() string {
	var b strings.Builder
	fmt.Fprintf(&b, "export KUBECONFIG=%s\n", e.Kubeconfig)
	if e.Vault != nil {
		fmt.Fprintf(&b, "export VAULT_ADDR=%s\n", e.Vault.Addr)
		fmt.Fprintf(&b, "export VAULT_TOKEN=%s\n", e.Vault.Token)
	}
	if e.Postgres != nil {
		fmt.Fprintf(&b, "export PLEURA_POSTGRES_DSN=%s\n", e.Postgres.DSN("postgres"))
	}
	return b.String()
}
