package build

import "github.com/secretslab/secretslab/versions"

// Want is a component at a version.
type Want struct{ Name, Version string }

// Components lists what the embedded lab runs, in build order, at the versions of v.
func Components(v versions.Set) []Want {
	return []Want{
		{"etcd", v.Etcd}, {"kube-apiserver", v.Kubernetes}, {"kube-controller-manager", v.Kubernetes},
		{"vault", v.Vault}, {"eso", v.ESO},
	}
}
