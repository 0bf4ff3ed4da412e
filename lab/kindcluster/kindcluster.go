// Package kindcluster deletes a kind cluster by name, for `lab down` when the lab that
// created it is no longer running.
package kindcluster

import (
	"slices"

	"sigs.k8s.io/kind/pkg/cluster"
)

// Delete deletes the kind cluster name if it exists.
func Delete(name string) error {
	p := cluster.NewProvider(cluster.ProviderWithDocker())
	names, err := p.List()
	if err != nil {
		return err
	}
	if !slices.Contains(names, name) {
		return nil
	}
	return p.Delete(name, "")
}
