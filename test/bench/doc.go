// Package bench measures the operator at scale against the real local
// stack: `make bench` runs BenchmarkConvergence, which times 200 tenants
// converging (every condition but PortalAvailable), counts API writes per
// tenant during convergence and in steady state, samples the operator's
// heap, and in the same run times a plain client creating the same objects
// (the floor).
package bench
