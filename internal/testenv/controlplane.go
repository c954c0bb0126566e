package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ServiceClusterIPRange is the Service range of every local control plane:
// inside 198.18.0.0/15, the block reserved for network testing.
const ServiceClusterIPRange = "198.19.0.0/16"

// startControlPlane starts etcd and kube-apiserver through envtest with the
// pinned binaries, installs the CRDs found in crdPaths, and writes an admin
// kubeconfig to dir/kubeconfig.
func (e *Env) startControlPlane(crdPaths []string) error {
	assets, err := envtestAssets(e.root)
	if err != nil {
		return err
	}
	certDir := filepath.Join(e.Dir, "apiserver")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return fmt.Errorf("creating API server directory: %w", err)
	}

	e.Environment = &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     crdPaths,
		ErrorIfCRDPathMissing: true,
	}
	apiServer := e.Environment.ControlPlane.GetAPIServer()
	apiServer.CertDir = certDir
	apiServer.Out, apiServer.Err = e.logWriter("kube-apiserver")
	args := apiServer.Configure()
	args.Set("service-cluster-ip-range", ServiceClusterIPRange)
	if e.opts.ControllerManager {
		// With kube-controller-manager creating default service accounts, run
		// the admission plugin a real cluster runs.
		args.Set("disable-admission-plugins", "")
	}
	etcd := &envtest.Etcd{}
	e.Environment.ControlPlane.Etcd = etcd
	etcd.DataDir = filepath.Join(e.Dir, "etcd")
	etcd.Out, etcd.Err = e.logWriter("etcd")

	cfg, err := e.Environment.Start()
	if err != nil {
		return fmt.Errorf("starting etcd and kube-apiserver (logs in %s): %w", e.Dir, err)
	}
	e.Config = rest.CopyConfig(cfg)
	e.Config.QPS, e.Config.Burst = 200, 400

	admin, err := e.Environment.AddUser(envtest.User{Name: "pleura-admin",
		Groups: []string{"system:masters"}}, e.Config)
	if err != nil {
		return fmt.Errorf("creating admin user: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("rendering admin kubeconfig: %w", err)
	}
	e.Kubeconfig = filepath.Join(e.Dir, "kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	return nil
}

// startControllerManager runs kube-controller-manager against the control
// plane, so namespaces finalize, garbage is collected and service account
// tokens are issued as in a real cluster.
func (e *Env) startControllerManager(ctx context.Context) error {
	bin, err := toolPath(e.root, "kube-controller-manager")
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	caFile := filepath.Join(e.Dir, "apiserver-ca.crt")
	if err := os.WriteFile(caFile, e.Config.CAData, 0o600); err != nil {
		return fmt.Errorf("writing API server CA: %w", err)
	}
	certDir := e.Environment.ControlPlane.GetAPIServer().CertDir
	p, err := startProcess(e.Dir, command{name: "kube-controller-manager", bin: bin,
		args: []string{
			"--kubeconfig=" + e.Kubeconfig,
			"--authentication-kubeconfig=" + e.Kubeconfig,
			"--authorization-kubeconfig=" + e.Kubeconfig,
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--cert-dir=" + filepath.Join(e.Dir, "kube-controller-manager"),
			"--service-account-private-key-file=" + filepath.Join(certDir, "sa-signer.key"),
			"--root-ca-file=" + caFile,
			"--service-cluster-ip-range=" + ServiceClusterIPRange,
			"--controllers=*",
		}})
	if err != nil {
		return err
	}
	e.processes = append(e.processes, p)
	return p.waitFor(ctx, startTimeout, e.healthz(port))
}
