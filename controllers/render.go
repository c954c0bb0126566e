package controllers

import (
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
)

// RenderObjects returns every Kubernetes object the operator keeps for a
// converged tenant, as it would create them (without owner references):
// the namespace first, then the objects inside it. The benchmark's plain
// client creates exactly these to measure the floor.
func RenderObjects(t *portalv1.PortalTenant, ap *portalv1.AccessPolicy,
	s Settings) ([]client.Object, error) {
	r := &PortalTenantReconciler{Settings: s}
	policy, err := CompilePolicy(ap)
	if err != nil {
		return nil, err
	}
	data, err := r.tenantConfig(t, policy).Marshal()
	if err != nil {
		return nil, fmt.Errorf("rendering tenant config: %w", err)
	}
	hard, err := quotaFor(t)
	if err != nil {
		return nil, err
	}
	dep, err := deploymentFor(t)
	if err != nil {
		return nil, err
	}
	objs := []client.Object{namespaceFor(t), serviceAccountFor(t), quotaObject(t, hard)}
	lr, err := limitRangeFor(t)
	if err != nil {
		return nil, err
	}
	return append(objs, lr, defaultDenyPolicy(t), dnsPolicy(t), egressPolicy(t),
		r.certificateFor(t), configMapFor(t, data), dep, pdbFor(t), ingressPolicy(t),
		serviceFor(t)), nil
}
