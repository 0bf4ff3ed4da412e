package scenarios

import (
	"context"
	"fmt"

	"github.com/secretslab/secretslab/internal/vaultops"
	"github.com/secretslab/secretslab/lab"
)

// restoreVaultNodes restarts each of nodes that is down, unseals each, then waits for three
// healthy Raft voters. A node that is up and unsealed is left as it is.
func (e *Env) restoreVaultNodes(ctx context.Context, nodes ...lab.VaultNode) error {
	for _, n := range nodes {
		if _, err := n.Client().Sys().SealStatusWithContext(ctx); err != nil {
			if err := n.Restart(ctx); err != nil {
				return fmt.Errorf("restart %s: %w", n.Name(), err)
			}
		}
	}
	for _, n := range nodes {
		if err := n.Unseal(ctx); err != nil {
			return fmt.Errorf("unseal %s: %w", n.Name(), err)
		}
	}
	_, err := vaultops.WaitHealthyVoters(ctx, e.Lab.Vault(), 3, e.Timeouts.Rejoin)
	return err
}

// restoreVault brings Vault back after its nodes were stopped. HA: restoreVaultNodes. Dev:
// restart the server if it is down, wait until it answers unsealed, say what it lost (the
// returned text: "lost ..." or "kept ..."), and if it lost vault-config's data write it
// again, as an operator would have to. A server that is up and holds the KV value is left
// as it is.
func (e *Env) restoreVault(ctx context.Context, nodes []lab.VaultNode) (string, error) {
	if len(nodes) >= 3 {
		return "", e.restoreVaultNodes(ctx, nodes...)
	}
	for _, n := range nodes {
		if _, err := n.Client().Sys().SealStatusWithContext(ctx); err != nil {
			if err := n.Restart(ctx); err != nil {
				return "", fmt.Errorf("restart %s: %w", n.Name(), err)
			}
		}
		err := waitFor(ctx, "dev server "+n.Name()+" to answer unsealed", e.Timeouts.Rejoin, func(ctx context.Context) (bool, error) {
			st, err := n.Client().Sys().SealStatusWithContext(ctx)
			return err == nil && !st.Sealed, nil
		})
		if err != nil {
			return "", err
		}
	}
	mount, path, _, err := kvTarget()
	if err != nil {
		return "", err
	}
	kvv, kvErr := e.Lab.Vault().KVv2(mount).Get(ctx, path)
	auths, aErr := e.Lab.Vault().Sys().ListAuthWithContext(ctx)
	if aErr != nil {
		return "", aErr
	}
	_, hasK8s := auths["kubernetes/"]
	if kvErr == nil && kvv != nil && hasK8s {
		return "kept " + mount + "/data/" + path, nil
	}
	lost := fmt.Sprintf("lost its data: %s/data/%s absent (%v), auth/kubernetes enabled %v", mount, path, kvErr != nil, hasK8s)
	vc := vaultConfig()
	for _, name := range []string{"kubernetes-auth", "policy", "role", "kv"} {
		found := false
		for _, c := range vc.Checks {
			if c.Name == name {
				found = true
				if err := c.Run(ctx, e, &Result{}); err != nil {
					return lost, fmt.Errorf("writing again vault-config.%s: %w", name, err)
				}
			}
		}
		if !found {
			return lost, fmt.Errorf("vault-config has no check %s", name)
		}
	}
	return lost, nil
}
