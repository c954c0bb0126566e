package testenv

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	// CertManagerModule is the module whose CRDs and controllers the stack
	// runs; its version is pinned in hack/versions.env and go.mod.
	CertManagerModule = "github.com/cert-manager/cert-manager"
	// CertManagerNamespace holds the Secrets that ClusterIssuers reference.
	CertManagerNamespace = "cert-manager"

	// certManagerSettle is how long the controllers must stay up after
	// start before they count as running.
	certManagerSettle = 2 * time.Second
)

// certManagerCRDs returns the directory of cert-manager's CRDs inside the
// pinned cert-manager module.
func certManagerCRDs(root string) (string, error) {
	dir, err := moduleDir(root, CertManagerModule)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "deploy", "crds"), nil
}

// startCertManager runs cert-manager's certificate and issuer controllers,
// built by hack/tools.sh from the pinned module, against the control plane.
func (e *Env) startCertManager(ctx context.Context) error {
	bin, err := toolPath(e.root, "cert-manager")
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return fmt.Errorf("creating Kubernetes client: %w", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: CertManagerNamespace}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil &&
		!apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", CertManagerNamespace, err)
	}
	p, err := startProcess(e.Dir, command{name: "cert-manager", bin: bin, args: []string{
		"--kubeconfig=" + e.Kubeconfig,
		"--cluster-resource-namespace=" + CertManagerNamespace,
	}})
	if err != nil {
		return err
	}
	e.processes = append(e.processes, p)
	select {
	case <-time.After(certManagerSettle):
	case <-ctx.Done():
		return ctx.Err()
	}
	if gone, err := p.exited(); gone {
		return err
	}
	return nil
}
