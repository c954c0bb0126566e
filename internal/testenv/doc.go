// Package testenv starts Pleura's local stack from real upstream components:
// etcd and kube-apiserver through controller-runtime's envtest, and, on
// request, kube-controller-manager, a Vault dev server with the transit and
// kubernetes auth engines, cert-manager's own controllers and a PostgreSQL
// server. Every binary is built from a pinned Go module by hack/tools.sh; a
// missing one fails with the command that builds it.
//
// Tests use it in a few lines:
//
//	env, err := testenv.Start(ctx, testenv.Options{Vault: true, CertManager: true})
//	if err != nil { ... }
//	defer env.Stop()
//
// The same package backs `make demo-up` through cmd/localstack, so tests and
// the local stack run the components with the same flags. All traffic stays
// on loopback; the service range lies inside 198.18.0.0/15.
package testenv
