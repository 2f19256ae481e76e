// Package rocks holds the rockcraft.yaml of socflow's workload and worker images and,
// in its tests, the checks that keep them pinned and in step with socflow's defaults;
// it has no product code.
package rocks
