package scenarios

import (
	"fmt"

	vault "github.com/hashicorp/vault/api"

	"github.com/secretslab/secretslab/fixtures"
)

// The fixtures are the single source of the demo values and of Vault's configuration; these
// read them for the scenarios.

var vaultMountInput = vault.MountInput{Type: "database"}

// only returns the single entry of m.
func only[V any](m map[string]V, what string) (string, V, error) {
	var zero V
	if len(m) != 1 {
		return "", zero, fmt.Errorf("fixtures vault/config.yaml: want exactly one %s, have %d", what, len(m))
	}
	for k, v := range m {
		return k, v, nil
	}
	return "", zero, nil
}

func authRole() (string, map[string]any, error) {
	c, err := fixtures.VaultConfig()
	if err != nil {
		return "", nil, err
	}
	name, role, err := only(c.KubernetesAuth.Roles, "Kubernetes auth role")
	if err != nil {
		return "", nil, err
	}
	return name, role.Params(), nil
}

func mustAuthRoleName() string {
	name, _, _ := authRole()
	return name
}

// readPolicy returns the (first) policy the auth role grants, and its text.
func readPolicy() (string, string, error) {
	c, err := fixtures.VaultConfig()
	if err != nil {
		return "", "", err
	}
	_, role, err := only(c.KubernetesAuth.Roles, "Kubernetes auth role")
	if err != nil {
		return "", "", err
	}
	if len(role.Policies) == 0 {
		return "", "", fmt.Errorf("fixtures vault/config.yaml: the auth role names no policy")
	}
	hcl, err := c.PolicyFile(role.Policies[0])
	return role.Policies[0], hcl, err
}

func kvTarget() (mount, path string, keys []string, err error) {
	c, err := fixtures.VaultConfig()
	if err != nil {
		return "", "", nil, err
	}
	return c.KV.Mount, c.KV.Path, c.KV.FromSecret.Keys, nil
}

// dbSetup returns the database engine's mount, connection (for Postgres at host; empty host:
// no connection body) and its one role.
func dbSetup(host string) (mount, connName string, conn map[string]any, role string, roleData map[string]any, err error) {
	c, err := fixtures.VaultConfig()
	if err != nil {
		return
	}
	if host != "" {
		if conn, err = c.ConnectionParams(host); err != nil {
			return
		}
	}
	name, r, err := only(c.Database.Roles, "database role")
	if err != nil {
		return
	}
	return c.Database.Mount, c.Database.Connection.Name, conn, name, r.Params(), nil
}
