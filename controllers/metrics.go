package controllers

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
)

// scrapeTimeout bounds the cache read behind one scrape.
const scrapeTimeout = 5 * time.Second

var (
	tenantsByPhaseDesc = prometheus.NewDesc("pleura_tenants",
		"PortalTenants by phase.", []string{"phase"}, nil)
	conditionDesc = prometheus.NewDesc("pleura_tenant_condition",
		"1 when the tenant's condition has the status in the label, else 0.",
		[]string{"tenant", "type", "status"}, nil)
	keyAgeDesc = prometheus.NewDesc("pleura_tenant_key_age_seconds",
		"Seconds since the tenant's data key was last rotated.", []string{"tenant"}, nil)
	certExpiryDesc = prometheus.NewDesc("pleura_tenant_certificate_expiry_timestamp_seconds",
		"Unix time when the tenant's portal certificate expires.", []string{"tenant"}, nil)
)

// TenantCollector exports tenants' status as Prometheus metrics, read from
// the manager's cache at scrape time so no series outlives its tenant.
type TenantCollector struct {
	// Reader is the manager's cached client.
	Reader client.Reader
	// Now returns the current time.
	Now func() time.Time
}

// Describe sends every metric's description.
func (c *TenantCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{tenantsByPhaseDesc, conditionDesc, keyAgeDesc,
		certExpiryDesc} {
		ch <- d
	}
}

// Collect lists tenants and sends one sample per fact.
func (c *TenantCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	list := &portalv1.PortalTenantList{}
	if err := c.Reader.List(ctx, list); err != nil {
		ch <- prometheus.NewInvalidMetric(tenantsByPhaseDesc, err)
		return
	}
	phases := map[portalv1.TenantPhase]float64{portalv1.PhasePending: 0,
		portalv1.PhaseProvisioning: 0, portalv1.PhaseReady: 0, portalv1.PhaseDegraded: 0,
		portalv1.PhaseDeleting: 0}
	for _, t := range list.Items {
		phase := t.Status.Phase
		if phase == "" {
			phase = portalv1.PhasePending
		}
		phases[phase]++
		for _, cond := range t.Status.Conditions {
			for _, s := range []metav1.ConditionStatus{metav1.ConditionTrue,
				metav1.ConditionFalse, metav1.ConditionUnknown} {
				v := 0.0
				if cond.Status == s {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(conditionDesc, prometheus.GaugeValue, v,
					t.Name, cond.Type, string(s))
			}
		}
		if e := t.Status.Encryption; e != nil && e.LastRotation != nil {
			ch <- prometheus.MustNewConstMetric(keyAgeDesc, prometheus.GaugeValue,
				c.Now().Sub(e.LastRotation.Time).Seconds(), t.Name)
		}
		if s := t.Status.TLS; s != nil && s.NotAfter != nil {
			ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue,
				float64(s.NotAfter.Unix()), t.Name)
		}
	}
	for phase, n := range phases {
		ch <- prometheus.MustNewConstMetric(tenantsByPhaseDesc, prometheus.GaugeValue, n,
			string(phase))
	}
}
