package build

import "github.com/secretslab/secretslab/versions"

// Want is a component at a version.
type Want struct{ Name, Version string }

// Components lists what the embedded lab runs, and the CLIs its learner uses (kubectl; the
// vault binary is also Vault's CLI), in build order, at the versions of v.
func Components(v versions.Set) []Want {
	return []Want{
		{"etcd", v.Etcd}, {"kube-apiserver", v.Kubernetes}, {"kube-controller-manager", v.Kubernetes},
		{"kubectl", v.Kubernetes}, {"vault", v.Vault}, {"eso", v.ESO},
	}
}
