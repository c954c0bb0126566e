// Command pleura-cert-manager runs cert-manager's own certificate and issuer
// controllers, from the cert-manager version pinned in hack/versions.env,
// against any API server reachable through a kubeconfig. It stands in for the
// cert-manager controller binary, whose module is not published, on machines
// that cannot pull cert-manager's container image: the local stack and tests.
//
// Only the CA and self-signed issuers are linked in; that is what the local
// stack and the tests use.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"

	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	"github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	crca "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	crselfsigned "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	"github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	"github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// controllers lists, by cert-manager's own names, the controllers this
// harness runs: the full certificate lifecycle, approval, and CA and
// self-signed signing for Issuers and ClusterIssuers.
var controllers = []string{
	trigger.ControllerName,
	keymanager.ControllerName,
	requestmanager.ControllerName,
	issuing.ControllerName,
	readiness.ControllerName,
	revisionmanager.ControllerName,
	approver.ControllerName,
	crca.CRControllerName,
	crselfsigned.CRControllerName,
	issuers.ControllerName,
	clusterissuers.ControllerName,
}

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "path to a kubeconfig")
	resourceNS := flag.String("cluster-resource-namespace", "cert-manager",
		"namespace holding the Secrets that ClusterIssuers reference")
	workers := flag.Int("workers", 2, "workers per controller")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *kubeconfig, *resourceNS, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "pleura-cert-manager:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, kubeconfig, resourceNS string, workers int) error {
	factory, err := controllerpkg.NewContextFactory(ctx, controllerpkg.ContextOptions{
		Kubeconfig:         kubeconfig,
		KubernetesAPIQPS:   50,
		KubernetesAPIBurst: 100,
		IssuerOptions:      controllerpkg.IssuerOptions{ClusterResourceNamespace: resourceNS},
		CertificateOptions: controllerpkg.CertificateOptions{
			EnableOwnerRef: true,
			// Local stacks want a failed request retried soon, not in an hour.
			CertificateRequestMinimumBackoffDuration: 5 * time.Second,
			CertificateRequestMaximumBackoffDuration: time.Minute,
		},
	})
	if err != nil {
		return fmt.Errorf("building controller context: %w", err)
	}

	known := controllerpkg.Known()
	running := make([]controllerpkg.Interface, 0, len(controllers))
	for _, name := range controllers {
		construct, ok := known[name]
		if !ok {
			return fmt.Errorf("controller %q is not registered in this cert-manager", name)
		}
		c, err := construct(factory)
		if err != nil {
			return fmt.Errorf("constructing controller %q: %w", name, err)
		}
		running = append(running, c)
	}

	// Every controller shares the informer factories of one context; start
	// them once all controllers have registered their informers.
	shared, err := factory.Build("pleura-cert-manager")
	if err != nil {
		return fmt.Errorf("building shared context: %w", err)
	}
	shared.KubeSharedInformerFactory.Start(ctx.Done())
	shared.SharedInformerFactory.Start(ctx.Done())

	names := append([]string(nil), controllers...)
	sort.Strings(names)
	fmt.Printf("pleura-cert-manager: running %d controllers: %v\n", len(names), names)

	var wg sync.WaitGroup
	errs := make(chan error, len(running))
	for i, c := range running {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(workers, ctx); err != nil {
				errs <- fmt.Errorf("controller %q: %w", controllers[i], err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
