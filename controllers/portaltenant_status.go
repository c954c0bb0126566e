package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	portalv1 "github.com/pleura-dev/pleura/api/v1alpha1"
)

// safeguards are the conditions that must all be True before the portal is
// exposed, in the order Ready reports the first failing one.
var safeguards = []string{
	portalv1.ConditionNamespaceReady,
	portalv1.ConditionNetworkIsolated,
	portalv1.ConditionEncryptionKeyReady,
	portalv1.ConditionTLSReady,
	portalv1.ConditionAccessPolicyLoaded,
}

// degradedReasons are reasons that need a person or an outage to end, as
// opposed to the operator still working.
var degradedReasons = map[string]bool{
	portalv1.ReasonNamespaceConflict:    true,
	portalv1.ReasonHostnameConflict:     true,
	portalv1.ReasonVaultUnavailable:     true,
	portalv1.ReasonIssuerNotFound:       true,
	portalv1.ReasonIssuerNotReady:       true,
	portalv1.ReasonAccessPolicyNotFound: true,
	portalv1.ReasonAccessPolicyInvalid:  true,
}

// observation collects what one reconcile found: a condition per safeguard,
// the dated facts for status, the errors to retry on and when to look again.
type observation struct {
	generation int64
	conditions map[string]metav1.Condition
	encryption *portalv1.EncryptionStatus
	tls        *portalv1.TLSStatus
	policy     *portalv1.LoadedPolicy
	exposed    bool
	errs       []error
	requeue    time.Duration
}

func newObservation(t *portalv1.PortalTenant) *observation {
	o := &observation{generation: t.Generation, conditions: map[string]metav1.Condition{}}
	// Carry forward what a failed step could not re-read, so that an outage
	// does not erase the last known facts.
	o.encryption = t.Status.Encryption.DeepCopy()
	o.tls = t.Status.TLS.DeepCopy()
	o.policy = t.Status.AccessPolicy.DeepCopy()
	return o
}

// set records a condition.
func (o *observation) set(typ string, ok bool, reason, format string, args ...any) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	o.conditions[typ] = metav1.Condition{Type: typ, Status: status, Reason: reason,
		Message: fmt.Sprintf(format, args...), ObservedGeneration: o.generation}
}

// fail records a False condition for an unexpected error and keeps the error
// so the reconcile is retried with backoff.
func (o *observation) fail(typ, reason string, err error) {
	o.set(typ, false, reason, "%v", err)
	o.errs = append(o.errs, err)
}

// retryAfter asks for another reconcile within d.
func (o *observation) retryAfter(d time.Duration) {
	if o.requeue == 0 || d < o.requeue {
		o.requeue = d
	}
}

// isTrue reports whether the condition was recorded True in this pass.
func (o *observation) isTrue(typ string) bool {
	c, ok := o.conditions[typ]
	return ok && c.Status == metav1.ConditionTrue
}

// safeguardsHold reports whether every safeguard is True.
func (o *observation) safeguardsHold() bool {
	for _, s := range safeguards {
		if !o.isTrue(s) {
			return false
		}
	}
	return true
}

// summarise adds Ready and returns the phase.
func (o *observation) summarise() portalv1.TenantPhase {
	for _, typ := range append(safeguards, portalv1.ConditionPortalAvailable) {
		c, ok := o.conditions[typ]
		if !ok {
			o.set(typ, false, portalv1.ReasonReconciling, "not checked yet: an earlier "+
				"step has not finished")
			c = o.conditions[typ]
		}
		if c.Status != metav1.ConditionTrue {
			o.set(portalv1.ConditionReady, false, c.Reason, "%s: %s", typ, c.Message)
			if degradedReasons[c.Reason] {
				return portalv1.PhaseDegraded
			}
			return portalv1.PhaseProvisioning
		}
	}
	o.set(portalv1.ConditionReady, true, portalv1.ReasonAllSafeguardsReady,
		"every safeguard holds and the portal is available")
	return portalv1.PhaseReady
}

// status renders the new status from the old one, keeping the transition
// time of every condition whose status did not change.
func (o *observation) status(old portalv1.PortalTenantStatus,
	phase portalv1.TenantPhase) portalv1.PortalTenantStatus {
	s := portalv1.PortalTenantStatus{
		ObservedGeneration: o.generation,
		Phase:              phase,
		Conditions:         append([]metav1.Condition(nil), old.Conditions...),
		Encryption:         o.encryption,
		TLS:                o.tls,
		AccessPolicy:       o.policy,
		Exposed:            o.exposed,
	}
	for _, typ := range append([]string{portalv1.ConditionReady},
		append(safeguards, portalv1.ConditionPortalAvailable)...) {
		meta.SetStatusCondition(&s.Conditions, o.conditions[typ])
	}
	return s
}

// writeStatus summarises the observation, patches status only when it
// differs, emits an event for each condition that changed status, and
// decides when to reconcile again.
func (r *PortalTenantReconciler) writeStatus(ctx context.Context, t *portalv1.PortalTenant,
	o *observation) (ctrl.Result, error) {
	phase := o.summarise()
	next := o.status(t.Status, phase)
	if !equality.Semantic.DeepEqual(t.Status, next) {
		old := t.DeepCopy()
		t.Status = next
		if err := r.Status().Patch(ctx, t, client.MergeFrom(old),
			client.FieldOwner(FieldOwner)); err != nil {
			return ctrl.Result{}, errors.Join(append(o.errs,
				fmt.Errorf("writing status of PortalTenant %s: %w", t.Name, err))...)
		}
		r.emitTransitions(old, t)
		logf.FromContext(ctx).V(1).Info("Status updated", "phase", phase)
	}
	if len(o.errs) > 0 {
		return ctrl.Result{}, errors.Join(o.errs...)
	}
	requeue := r.Settings.resyncPeriod()
	if o.requeue > 0 && o.requeue < requeue {
		requeue = o.requeue
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// emitTransitions emits one event per condition whose status changed.
func (r *PortalTenantReconciler) emitTransitions(old, now *portalv1.PortalTenant) {
	if r.Recorder == nil {
		return
	}
	for _, c := range now.Status.Conditions {
		prev := meta.FindStatusCondition(old.Status.Conditions, c.Type)
		if prev == nil || prev.Status == c.Status {
			continue // a condition's first value is not a transition
		}
		kind := corev1.EventTypeNormal
		if c.Status != metav1.ConditionTrue {
			kind = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(now, nil, kind, c.Reason, c.Type,
			"PortalTenant %s: %s is %s: %s", now.Name, c.Type, c.Status, c.Message)
	}
}
