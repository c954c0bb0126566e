package controllers

import (
	"errors"
	"fmt"
	"sync"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
)

// NewScheme returns a scheme with every type the operator reads or writes.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme,
		portalv1.AddToScheme, cmapi.AddToScheme} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("building scheme: %w", err)
		}
	}
	return s, nil
}

// CacheOptions restricts the manager's cache to objects carrying the tenant
// label, for every kind the operator creates, so memory scales with tenants
// and not with the cluster, and unrelated objects never wake a reconciler.
func CacheOptions() cache.Options {
	req, _ := labels.NewRequirement(portalv1.TenantLabel, selection.Exists, nil)
	sel := cache.ByObject{Label: labels.NewSelector().Add(*req)}
	by := map[client.Object]cache.ByObject{}
	for _, o := range []client.Object{&corev1.Namespace{}, &corev1.ServiceAccount{},
		&corev1.ResourceQuota{}, &corev1.LimitRange{}, &corev1.ConfigMap{}, &corev1.Secret{},
		&corev1.Service{}, &networkingv1.NetworkPolicy{}, &appsv1.Deployment{},
		&policyv1.PodDisruptionBudget{}, &cmapi.Certificate{}} {
		by[o] = sel
	}
	return cache.Options{ByObject: by}
}

var (
	collector     = &TenantCollector{Now: time.Now}
	collectorOnce sync.Once
	collectorMu   sync.Mutex
)

// Setup registers both reconcilers and the tenant metrics with mgr.
func Setup(mgr ctrl.Manager, v VaultClient, s Settings) error {
	if v == nil {
		return errors.New("no Vault client: pass --vault-addr with a token or Kubernetes auth")
	}
	tenants := &PortalTenantReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Vault:     v,
		Recorder:  mgr.GetEventRecorder("pleura-operator"),
		Settings:  s,
	}
	if err := tenants.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up PortalTenant controller: %w", err)
	}
	if err := (&AccessPolicyReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up AccessPolicy controller: %w", err)
	}
	collectorMu.Lock()
	collector.Reader = mgr.GetClient()
	collectorMu.Unlock()
	var err error
	collectorOnce.Do(func() { err = ctrlmetrics.Registry.Register(lockedCollector{}) })
	return err
}

// lockedCollector lets a restarted manager (tests) swap the reader.
type lockedCollector struct{}

// Describe sends the tenant metrics' descriptions.
func (lockedCollector) Describe(ch chan<- *prometheus.Desc) { collector.Describe(ch) }

// Collect reads tenants through the current manager's cache.
func (lockedCollector) Collect(ch chan<- prometheus.Metric) {
	collectorMu.Lock()
	c := *collector
	collectorMu.Unlock()
	c.Collect(ch)
}
