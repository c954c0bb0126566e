package controllers

import (
	"context"
	"fmt"
	"path"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
	"github.com/pleura-dev/pleura/internal/tenantconfig"
)

// Names of the workload objects.
const (
	deploymentName = "portal"
	pdbName        = "portal"
	serviceName    = "portal"
	containerName  = "portal"
	// opsPort serves the portal's /healthz, /readyz and /metrics over
	// plain HTTP inside the pod network; no network policy admits it from
	// outside the namespace.
	opsPort     = 9090
	opsPortName = "ops"
	// vaultTokenLifetime is the projected Vault login token's lifetime;
	// kubelet refreshes it well before expiry.
	vaultTokenLifetime = 600
)

// reconcileWorkload runs the portal Deployment and its PodDisruptionBudget,
// and reports whether a replica is available.
func (r *PortalTenantReconciler) reconcileWorkload(ctx context.Context,
	t *portalv1.PortalTenant, o *observation) {
	const typ = portalv1.ConditionPortalAvailable
	if !o.isTrue(portalv1.ConditionNamespaceReady) {
		o.set(typ, false, portalv1.ReasonReconciling, "waiting for the namespace")
		return
	}
	dep, err := deploymentFor(t)
	if err != nil {
		o.fail(typ, portalv1.ReasonReconciling, err)
		return
	}
	err = ensure(ctx, r, t, dep, func(got *appsv1.Deployment) bool {
		return equality.Semantic.DeepDerivative(dep.Spec, got.Spec)
	}, func(got *appsv1.Deployment) { got.Spec = dep.Spec })
	if err == nil {
		pdb := pdbFor(t)
		err = ensure(ctx, r, t, pdb, func(got *policyv1.PodDisruptionBudget) bool {
			return equality.Semantic.DeepDerivative(pdb.Spec, got.Spec)
		}, func(got *policyv1.PodDisruptionBudget) { got.Spec = pdb.Spec })
	}
	if err != nil {
		o.fail(typ, portalv1.ReasonReconciling, err)
		return
	}
	r.observeAvailability(ctx, t, o)
}

// observeAvailability sets PortalAvailable from the Deployment and nodes.
func (r *PortalTenantReconciler) observeAvailability(ctx context.Context,
	t *portalv1.PortalTenant, o *observation) {
	const typ = portalv1.ConditionPortalAvailable
	dep := &appsv1.Deployment{}
	key := client.ObjectKey{Namespace: t.Spec.Namespace, Name: deploymentName}
	if err := r.Get(ctx, key, dep); err == nil && dep.Status.AvailableReplicas > 0 {
		o.set(typ, true, portalv1.ReasonReplicasAvailable, "%d of %d replicas available",
			dep.Status.AvailableReplicas, replicas(t))
		return
	}
	nodes := &corev1.NodeList{}
	if err := r.List(ctx, nodes); err != nil {
		o.fail(typ, portalv1.ReasonReconciling, err)
		return
	}
	for _, n := range nodes.Items {
		if !n.Spec.Unschedulable {
			o.set(typ, false, portalv1.ReasonReplicasUnavailable, "no replica is available "+
				"yet; see Deployment %s/%s and its pods' events", t.Spec.Namespace,
				deploymentName)
			return
		}
	}
	o.set(typ, false, portalv1.ReasonNoNodes, "no node can run pods yet: the cluster has "+
		"no schedulable node; replicas start when one joins")
}

// reconcileExposure fails closed: the Service and the ingress allow exist
// only while every safeguard holds, and are withdrawn as soon as one fails.
func (r *PortalTenantReconciler) reconcileExposure(ctx context.Context,
	t *portalv1.PortalTenant, o *observation) {
	if !o.isTrue(portalv1.ConditionNamespaceReady) {
		return
	}
	svc, np := serviceFor(t), ingressPolicy(t)
	if !o.safeguardsHold() {
		for _, obj := range []client.Object{svc, np} {
			if err := remove(ctx, r, t, obj); err != nil {
				o.errs = append(o.errs, err)
			}
		}
		o.exposed = false
		if o.isTrue(portalv1.ConditionPortalAvailable) {
			o.set(portalv1.ConditionPortalAvailable, false, portalv1.ReasonNotExposed,
				"replicas run but are not exposed until every safeguard holds")
		}
		return
	}
	err := r.ensureNetworkPolicy(ctx, t, np)
	if err == nil {
		err = ensure(ctx, r, t, svc, func(got *corev1.Service) bool {
			return equality.Semantic.DeepDerivative(svc.Spec, got.Spec)
		}, func(got *corev1.Service) {
			got.Spec.Ports, got.Spec.Selector, got.Spec.Type = svc.Spec.Ports,
				svc.Spec.Selector, svc.Spec.Type
		})
	}
	if err != nil {
		o.errs = append(o.errs, err)
		return
	}
	o.exposed = true
}

func serviceFor(t *portalv1.PortalTenant) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: serviceName, Namespace: t.Spec.Namespace,
			Labels: tenantLabels(t, "exposure")},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: portalSelector(t),
			Ports: []corev1.ServicePort{{Name: portalPortName, Port: 443,
				Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString(portalPortName)}},
		},
	}
}

func pdbFor(t *portalv1.PortalTenant) *policyv1.PodDisruptionBudget {
	maxUnavailable := intstr.FromInt32(1)
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: pdbName, Namespace: t.Spec.Namespace,
			Labels: tenantLabels(t, portalComponentName)},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: &maxUnavailable,
			Selector:       &metav1.LabelSelector{MatchLabels: portalSelector(t)},
		},
	}
}

// deploymentFor renders the hardened portal Deployment. Every field the API
// server would default is set here, so that comparing desired with actual
// sees drift and nothing else.
func deploymentFor(t *portalv1.PortalTenant) (*appsv1.Deployment, error) {
	req, err := t.Spec.Portal.Resources.Requests.ResourceList()
	if err != nil {
		return nil, err
	}
	lim, err := t.Spec.Portal.Resources.Limits.ResourceList()
	if err != nil {
		return nil, err
	}
	labels := tenantLabels(t, portalComponentName)
	probe := func(p string) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: p, Port: intstr.FromString(opsPortName), Scheme: corev1.URISchemeHTTP}},
			PeriodSeconds: 10, TimeoutSeconds: 2, FailureThreshold: 3, SuccessThreshold: 1,
		}
	}
	configDir := path.Dir(tenantconfig.DefaultConfigPath)
	tokenDir, tokenFile := path.Split(tenantconfig.DefaultVaultTokenPath)
	pod := corev1.PodSpec{
		ServiceAccountName:           serviceAccountName,
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			RunAsUser:      ptr.To(int64(65532)),
			RunAsGroup:     ptr.To(int64(65532)),
			FSGroup:        ptr.To(int64(65532)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name:            containerName,
			Image:           t.Spec.Portal.Image,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Ports: []corev1.ContainerPort{
				{Name: portalPortName, ContainerPort: portalPort, Protocol: corev1.ProtocolTCP},
				{Name: opsPortName, ContainerPort: opsPort, Protocol: corev1.ProtocolTCP}},
			Env:             portalEnv(t),
			Resources:       corev1.ResourceRequirements{Requests: req, Limits: lim},
			ReadinessProbe:  probe("/readyz"),
			LivenessProbe:   probe("/healthz"),
			SecurityContext: restrictedContainer(),
			VolumeMounts: []corev1.VolumeMount{
				{Name: "config", MountPath: configDir, ReadOnly: true},
				{Name: "tls", MountPath: tenantconfig.DefaultTLSDir, ReadOnly: true},
				{Name: "vault-token", MountPath: path.Clean(tokenDir), ReadOnly: true},
				{Name: "tmp", MountPath: "/tmp"},
			},
			TerminationMessagePath:   corev1.TerminationMessagePathDefault,
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		}},
		Volumes: portalVolumes(tokenFile),
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: deploymentName, Namespace: t.Spec.Namespace,
			Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas(t)),
			Selector: &metav1.LabelSelector{MatchLabels: portalSelector(t)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       pod,
			},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromInt32(0)),
					MaxSurge:       ptr.To(intstr.FromInt32(1))}},
		},
	}, nil
}

// restrictedContainer is the container security context the restricted Pod
// Security level asks for, and a read-only root filesystem.
func restrictedContainer() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		ReadOnlyRootFilesystem:   ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		Privileged:               ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile: &corev1.SeccompProfile{
			Type: corev1.SeccompProfileTypeRuntimeDefault,
		},
	}
}

// portalVolumes are the tenant ConfigMap, the TLS Secret, a short-lived
// Vault login token and a small writable /tmp.
func portalVolumes(tokenFile string) []corev1.Volume {
	token := &corev1.ServiceAccountTokenProjection{Audience: VaultAudience,
		ExpirationSeconds: ptr.To(int64(vaultTokenLifetime)), Path: tokenFile}
	return []corev1.Volume{
		{Name: "config", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: configMapName},
				DefaultMode:          ptr.To(int32(0o444))}}},
		{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: tlsSecretName, DefaultMode: ptr.To(int32(0o440))}}},
		{Name: "vault-token", VolumeSource: corev1.VolumeSource{
			Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr.To(int32(0o440)),
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: token}}}}},
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			SizeLimit: ptr.To(resource.MustParse("64Mi"))}}},
	}
}

// portalEnv is the portal's configuration (see portal/config): where the
// operator mounted the tenant file, the TLS pair and the Vault login token,
// and the database connection from spec.database's Secret.
func portalEnv(t *portalv1.PortalTenant) []corev1.EnvVar {
	env := []corev1.EnvVar{
		{Name: tenantconfig.EnvConfigPath, Value: tenantconfig.DefaultConfigPath},
		{Name: "PLEURA_TLS_CERT", Value: path.Join(tenantconfig.DefaultTLSDir, "tls.crt")},
		{Name: "PLEURA_TLS_KEY", Value: path.Join(tenantconfig.DefaultTLSDir, "tls.key")},
		{Name: "PLEURA_VAULT_AUTH", Value: "kubernetes"},
		{Name: "PLEURA_SA_TOKEN_FILE", Value: tenantconfig.DefaultVaultTokenPath},
		{Name: "PLEURA_LISTEN", Value: fmt.Sprintf(":%d", portalPort)},
		{Name: "PLEURA_OPS_LISTEN", Value: fmt.Sprintf(":%d", opsPort)},
	}
	if db := t.Spec.Database; db != nil {
		key := db.Key
		if key == "" {
			key = "dsn"
		}
		env = append(env, corev1.EnvVar{Name: "PLEURA_DATABASE_DSN",
			ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: db.SecretName},
				Key:                  key}}})
	}
	return env
}
