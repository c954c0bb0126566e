package v1alpha1

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func parseResources(c ComputeResources) (corev1.ResourceList, error) {
	cpu, err := resource.ParseQuantity(c.CPU)
	if err != nil {
		return nil, fmt.Errorf("cpu %q: %w", c.CPU, err)
	}
	mem, err := resource.ParseQuantity(c.Memory)
	if err != nil {
		return nil, fmt.Errorf("memory %q: %w", c.Memory, err)
	}
	return corev1.ResourceList{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem}, nil
}

// ConfirmedCryptoShred reports whether the tenant's ConfirmCryptoShredAnnotation
// names the tenant, as CryptoShred requires.
func (t *PortalTenant) ConfirmedCryptoShred() bool {
	return t.Annotations[ConfirmCryptoShredAnnotation] == t.Name
}

// DeletionPolicyOrDefault returns spec.deletionPolicy, Retain when unset.
func (t *PortalTenant) DeletionPolicyOrDefault() DeletionPolicy {
	if t.Spec.DeletionPolicy == "" {
		return DeletionRetain
	}
	return t.Spec.DeletionPolicy
}
