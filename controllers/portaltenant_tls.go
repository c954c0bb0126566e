package controllers

import (
	"context"
	"fmt"
	"strings"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
)

// Names of the portal's certificate and its Secret.
const (
	certificateName = "portal-tls"
	tlsSecretName   = "portal-tls"
)

// issuerOf returns the tenant's issuer, or the operator's default.
func (r *PortalTenantReconciler) issuerOf(t *portalv1.PortalTenant) cmmeta.IssuerReference {
	if ref := t.Spec.TLS.IssuerRef; ref != nil {
		kind := ref.Kind
		if kind == "" {
			kind = cmapi.ClusterIssuerKind
		}
		return cmmeta.IssuerReference{Name: ref.Name, Kind: kind, Group: "cert-manager.io"}
	}
	return cmmeta.IssuerReference{Name: r.Settings.DefaultIssuer, Kind: cmapi.ClusterIssuerKind,
		Group: "cert-manager.io"}
}

// certificateFor renders the portal's Certificate: the public hostname and
// the in-cluster Service names, a new private key on every renewal, and the
// tenant label on the Secret so the operator's cache sees it.
func (r *PortalTenantReconciler) certificateFor(t *portalv1.PortalTenant) *cmapi.Certificate {
	ns := t.Spec.Namespace
	return &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Name: certificateName, Namespace: ns,
			Labels: tenantLabels(t, "tls")},
		Spec: cmapi.CertificateSpec{
			SecretName: tlsSecretName,
			SecretTemplate: &cmapi.CertificateSecretTemplate{
				Labels: tenantLabels(t, "tls")},
			CommonName: t.Spec.Portal.Hostname,
			DNSNames: []string{t.Spec.Portal.Hostname, serviceName + "." + ns + ".svc",
				serviceName + "." + ns + ".svc.cluster.local"},
			Duration:    &metav1.Duration{Duration: t.Spec.TLS.Duration.Duration},
			RenewBefore: &metav1.Duration{Duration: t.Spec.TLS.RenewBefore.Duration},
			IssuerRef:   r.issuerOf(t),
			PrivateKey: &cmapi.CertificatePrivateKey{
				RotationPolicy: cmapi.RotationPolicyAlways,
				Algorithm:      cmapi.ECDSAKeyAlgorithm,
				Size:           256,
			},
			Usages: []cmapi.KeyUsage{cmapi.UsageServerAuth, cmapi.UsageDigitalSignature},
		},
	}
}

// reconcileTLS makes the Certificate exist and reports TLSReady once the
// issuer is ready, the certificate is issued and its Secret exists.
func (r *PortalTenantReconciler) reconcileTLS(ctx context.Context, t *portalv1.PortalTenant,
	o *observation) {
	const typ = portalv1.ConditionTLSReady
	if !o.isTrue(portalv1.ConditionNamespaceReady) {
		o.set(typ, false, portalv1.ReasonReconciling, "waiting for the namespace")
		return
	}
	owner, err := r.hostnameOwner(ctx, t)
	if err != nil {
		o.fail(typ, portalv1.ReasonReconciling, err)
		return
	}
	if owner != "" {
		// Fail closed: a second clinic must never get a certificate, and so
		// traffic, for a name another clinic serves.
		o.set(typ, false, portalv1.ReasonHostnameConflict, "hostname %s is already served "+
			"by PortalTenant %s; set spec.portal.hostname to a name no other tenant uses",
			t.Spec.Portal.Hostname, owner)
		return
	}
	cert := r.certificateFor(t)
	err = ensure(ctx, r, t, cert, func(got *cmapi.Certificate) bool {
		return equality.Semantic.DeepDerivative(cert.Spec, got.Spec)
	}, func(got *cmapi.Certificate) { got.Spec = cert.Spec })
	if err != nil {
		o.fail(typ, portalv1.ReasonReconciling, err)
		return
	}
	if ok, reason, msg := r.issuerReady(ctx, t, cert.Spec.IssuerRef); !ok {
		// Watches on issuers bring the tenant back when this changes.
		o.set(typ, false, reason, "%s", msg)
		return
	}
	if err := r.Get(ctx, client.ObjectKeyFromObject(cert), cert); err != nil {
		o.fail(typ, portalv1.ReasonReconciling, fmt.Errorf("reading Certificate: %w", err))
		return
	}
	ready := false
	for _, c := range cert.Status.Conditions {
		if c.Type == cmapi.CertificateConditionReady && c.Status == cmmeta.ConditionTrue {
			ready = true
		}
	}
	secret := &corev1.Secret{}
	err = r.Get(ctx, client.ObjectKey{Namespace: t.Spec.Namespace, Name: tlsSecretName}, secret)
	if !ready || err != nil {
		o.set(typ, false, portalv1.ReasonCertificateIssuing, "cert-manager is issuing "+
			"Certificate %s/%s from %s %s", cert.Namespace, cert.Name,
			cert.Spec.IssuerRef.Kind, cert.Spec.IssuerRef.Name)
		o.retryAfter(certificateRecheck)
		return
	}
	o.tls = &portalv1.TLSStatus{SecretName: tlsSecretName, NotAfter: cert.Status.NotAfter,
		RenewalTime: cert.Status.RenewalTime}
	o.set(typ, true, portalv1.ReasonCertificateIssued, "certificate for %s issued by %s %s",
		t.Spec.Portal.Hostname, cert.Spec.IssuerRef.Kind, cert.Spec.IssuerRef.Name)
}

// issuerReady checks the referenced issuer exists and is Ready.
func (r *PortalTenantReconciler) issuerReady(ctx context.Context, t *portalv1.PortalTenant,
	ref cmmeta.IssuerReference) (bool, string, string) {
	var conds []cmapi.IssuerCondition
	var err error
	if ref.Kind == cmapi.IssuerKind {
		iss := &cmapi.Issuer{}
		err = r.Get(ctx, client.ObjectKey{Namespace: t.Spec.Namespace, Name: ref.Name}, iss)
		conds = iss.Status.Conditions
	} else {
		iss := &cmapi.ClusterIssuer{}
		err = r.Get(ctx, client.ObjectKey{Name: ref.Name}, iss)
		conds = iss.Status.Conditions
	}
	if apierrors.IsNotFound(err) || ref.Name == "" {
		return false, portalv1.ReasonIssuerNotFound, fmt.Sprintf("%s %q does not exist; "+
			"create it or set spec.tls.issuerRef to an existing issuer", ref.Kind, ref.Name)
	}
	if err != nil {
		return false, portalv1.ReasonIssuerNotReady, fmt.Sprintf("reading %s %s: %v",
			ref.Kind, ref.Name, err)
	}
	for _, c := range conds {
		if c.Type == cmapi.IssuerConditionReady && c.Status == cmmeta.ConditionTrue {
			return true, "", ""
		}
	}
	return false, portalv1.ReasonIssuerNotReady, fmt.Sprintf("%s %s is not Ready; see its "+
		"status", ref.Kind, ref.Name)
}

// hostnameOwner returns the name of another PortalTenant that claimed t's
// hostname first (older, or as old with a smaller name), or "" when t may
// serve it.
func (r *PortalTenantReconciler) hostnameOwner(ctx context.Context,
	t *portalv1.PortalTenant) (string, error) {
	var same portalv1.PortalTenantList
	host := strings.ToLower(t.Spec.Portal.Hostname)
	if err := r.List(ctx, &same, client.MatchingFields{indexHostname: host}); err != nil {
		return "", fmt.Errorf("listing PortalTenants for hostname conflicts: %w", err)
	}
	for i := range same.Items {
		other := &same.Items[i]
		if other.UID == t.UID || !other.DeletionTimestamp.IsZero() {
			continue
		}
		older := other.CreationTimestamp.Before(&t.CreationTimestamp) ||
			(other.CreationTimestamp.Equal(&t.CreationTimestamp) && other.Name < t.Name)
		if older {
			return other.Name, nil
		}
	}
	return "", nil
}
