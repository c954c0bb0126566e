package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
)

// Names of the tenant's network policies.
const (
	policyDefaultDeny   = "default-deny"
	policyAllowDNS      = "allow-dns"
	policyAllowEgress   = "allow-egress"
	policyAllowIngress  = "allow-portal-ingress"
	portalPort          = 8443
	portalPortName      = "https"
	dnsNamespace        = "kube-system"
	dnsPodLabel         = "k8s-app"
	dnsPodLabelValue    = "kube-dns"
	namespaceNameLabel  = "kubernetes.io/metadata.name"
	portalComponentName = "portal"
)

// reconcileNetwork puts the namespace behind default-deny policies with
// explicit allows for DNS and the declared egress. The ingress allow is part
// of exposure (portaltenant_workload.go), not isolation.
func (r *PortalTenantReconciler) reconcileNetwork(ctx context.Context,
	t *portalv1.PortalTenant, o *observation) {
	const typ = portalv1.ConditionNetworkIsolated
	if !o.isTrue(portalv1.ConditionNamespaceReady) {
		o.set(typ, false, portalv1.ReasonReconciling, "waiting for the namespace")
		return
	}
	for _, np := range []*networkingv1.NetworkPolicy{
		defaultDenyPolicy(t), dnsPolicy(t), egressPolicy(t),
	} {
		if err := r.ensureNetworkPolicy(ctx, t, np); err != nil {
			o.fail(typ, portalv1.ReasonReconciling, err)
			return
		}
	}
	o.set(typ, true, portalv1.ReasonPoliciesApplied, "all traffic denied except DNS "+
		"and %d declared egress rule(s)", len(t.Spec.Network.Egress))
}

func (r *PortalTenantReconciler) ensureNetworkPolicy(ctx context.Context,
	t *portalv1.PortalTenant, np *networkingv1.NetworkPolicy) error {
	return ensure(ctx, r, t, np, func(got *networkingv1.NetworkPolicy) bool {
		return equality.Semantic.DeepEqual(got.Spec, np.Spec)
	}, func(got *networkingv1.NetworkPolicy) { got.Spec = np.Spec })
}

func newPolicy(t *portalv1.PortalTenant, name string) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name,
		Namespace: t.Spec.Namespace, Labels: tenantLabels(t, "isolation")}}
}

func portalSelector(t *portalv1.PortalTenant) map[string]string {
	return map[string]string{portalv1.TenantLabel: t.Name,
		portalv1.ComponentLabel: portalComponentName}
}

func defaultDenyPolicy(t *portalv1.PortalTenant) *networkingv1.NetworkPolicy {
	np := newPolicy(t, policyDefaultDeny)
	np.Spec = networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress,
			networkingv1.PolicyTypeEgress},
	}
	return np
}

func dnsPolicy(t *portalv1.PortalTenant) *networkingv1.NetworkPolicy {
	np := newPolicy(t, policyAllowDNS)
	port := intstr.FromInt32(53)
	np.Spec = networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
		Egress: []networkingv1.NetworkPolicyEgressRule{{
			To: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{
					MatchLabels: map[string]string{namespaceNameLabel: dnsNamespace}},
				PodSelector: &metav1.LabelSelector{
					MatchLabels: map[string]string{dnsPodLabel: dnsPodLabelValue}},
			}},
			Ports: []networkingv1.NetworkPolicyPort{
				{Protocol: ptr.To(corev1.ProtocolUDP), Port: &port},
				{Protocol: ptr.To(corev1.ProtocolTCP), Port: &port},
			},
		}},
	}
	return np
}

// egressPolicy allows the portal pods to reach exactly the declared
// destinations; with none declared it allows nothing.
func egressPolicy(t *portalv1.PortalTenant) *networkingv1.NetworkPolicy {
	np := newPolicy(t, policyAllowEgress)
	np.Spec = networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: portalSelector(t)},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
	}
	for _, e := range t.Spec.Network.Egress {
		rule := networkingv1.NetworkPolicyEgressRule{
			To: []networkingv1.NetworkPolicyPeer{peer(e.To)},
		}
		for _, p := range e.Ports {
			port := intstr.FromInt32(p)
			rule.Ports = append(rule.Ports, networkingv1.NetworkPolicyPort{
				Protocol: ptr.To(corev1.ProtocolTCP), Port: &port})
		}
		np.Spec.Egress = append(np.Spec.Egress, rule)
	}
	return np
}

// ingressPolicy lets the declared sources, or only the tenant's own
// namespace when none are declared, reach the portal's HTTPS port.
func ingressPolicy(t *portalv1.PortalTenant) *networkingv1.NetworkPolicy {
	np := newPolicy(t, policyAllowIngress)
	port := intstr.FromString(portalPortName)
	rule := networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{
		{Protocol: ptr.To(corev1.ProtocolTCP), Port: &port}}}
	for _, p := range t.Spec.Network.IngressFrom {
		rule.From = append(rule.From, peer(p))
	}
	if len(rule.From) == 0 {
		rule.From = []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}
	}
	np.Spec = networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: portalSelector(t)},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		Ingress:     []networkingv1.NetworkPolicyIngressRule{rule},
	}
	return np
}

func peer(p portalv1.Peer) networkingv1.NetworkPolicyPeer {
	if p.CIDR != "" {
		return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: p.CIDR}}
	}
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: p.NamespaceSelector.DeepCopy(),
		PodSelector: p.PodSelector.DeepCopy()}
}
