package scenarios

import (
	"context"
	"fmt"
	"slices"
	"strings"

	vault "github.com/hashicorp/vault/api"
)

// vaultConfig: chapter 05 step 1, Kubernetes auth, the least-privilege policy, the role, the KV value.
func vaultConfig() Scenario {
	return Scenario{Name: "vault-config", Title: "Vault: Kubernetes auth, least-privilege policy, role, KV v2 value", Needs: []string{"baseline"}, Checks: []Check{
		{"kubernetes-auth", "auth/kubernetes is enabled and configured for this cluster", func(ctx context.Context, e *Env, r *Result) error {
			v := e.Lab.Vault()
			auths, err := v.Sys().ListAuthWithContext(ctx)
			if err != nil {
				return err
			}
			if a, ok := auths["kubernetes/"]; !ok {
				if err := v.Sys().EnableAuthWithOptionsWithContext(ctx, "kubernetes", &vault.EnableAuthOptions{Type: "kubernetes"}); err != nil {
					return err
				}
			} else if a.Type != "kubernetes" {
				return fmt.Errorf("Vault's auth mount kubernetes/ is a %s method, not kubernetes", a.Type)
			}
			cfg, err := e.Lab.VaultKubernetesAuthConfig(ctx)
			if err != nil {
				return err
			}
			// The reviewer JWT is not returned by Vault; everything else written is compared.
			_, err = e.writeChecked(ctx, "auth/kubernetes/config", cfg)
			return err
		}},
		{"policy", "the bookstore-ro policy is written exactly as the fixture says", func(ctx context.Context, e *Env, r *Result) error {
			name, hcl, err := readPolicy()
			if err != nil {
				return err
			}
			// Written as sys/policies/acl/NAME (what PutPolicy does) so that Vault's warnings are seen.
			_, err = e.writeChecked(ctx, "sys/policies/acl/"+name, map[string]any{"policy": hcl})
			return err
		}},
		{"role", "the Kubernetes auth role is bound to bookstore:bookstore-eso", func(ctx context.Context, e *Env, r *Result) error {
			name, data, err := authRole()
			if err != nil {
				return err
			}
			_, err = e.writeChecked(ctx, "auth/kubernetes/role/"+name, data)
			return err
		}},
		{"kv", "the KV v2 value holds the demo Secret's keys", func(ctx context.Context, e *Env, r *Result) error {
			mount, path, keys, err := kvTarget()
			if err != nil {
				return err
			}
			data := map[string]any{}
			for _, k := range keys {
				v, ok := e.State.Demo[k]
				if !ok {
					return fmt.Errorf("the demo Secret has no key %s", k)
				}
				data[k] = string(v)
			}
			kv := e.Lab.Vault().KVv2(mount)
			put, err := kv.Put(ctx, path, data)
			if err != nil {
				return err
			}
			if put == nil || put.VersionMetadata == nil {
				return fmt.Errorf("KV put %s/%s returned no version", mount, path)
			}
			if put.Raw != nil && len(put.Raw.Warnings) > 0 {
				return fmt.Errorf("KV put %s/%s: Vault warned: %s", mount, path, e.Lab.Secrets().String(strings.Join(put.Raw.Warnings, "; ")))
			}
			version := put.VersionMetadata.Version
			got, err := kv.GetVersion(ctx, path, version)
			if err != nil {
				return fmt.Errorf("read back %s/%s version %d: %w", mount, path, version, err)
			}
			if got == nil || got.VersionMetadata == nil || got.VersionMetadata.Version != version {
				return fmt.Errorf("read back %s/%s: version %d is not there", mount, path, version)
			}
			if d := kvDiff(data, got.Data); d != "" {
				return fmt.Errorf("%s/%s version %d reads back differently: %s", mount, path, version, d)
			}
			r.Figure("kv-version", float64(version))
			r.Note("%s/%s version %d, keys %v, read back", mount, path, version, keys)
			return nil
		}},
		{"login", "a bookstore-eso ServiceAccount token logs in and gets the policy", func(ctx context.Context, e *Env, r *Result) error {
			if _, err := e.apply(ctx, sec+"05-eso-serviceaccount.yaml"); err != nil {
				return err
			}
			role, _, err := authRole()
			if err != nil {
				return err
			}
			policy, _, err := readPolicy()
			if err != nil {
				return err
			}
			_, auth, err := e.loginAsESO(ctx, role)
			if err != nil {
				return err
			}
			if !slices.Contains(auth.Policies, policy) {
				return fmt.Errorf("login got policies %v, want %s", auth.Policies, policy)
			}
			r.Figure("token-ttl-seconds", float64(auth.LeaseDuration))
			return nil
		}},
		{"denied-outside-policy", "the role's token is denied outside its policy", func(ctx context.Context, e *Env, r *Result) error {
			role, _, err := authRole()
			if err != nil {
				return err
			}
			c, _, err := e.loginAsESO(ctx, role)
			if err != nil {
				return err
			}
			mount, path, _, err := kvTarget()
			if err != nil {
				return err
			}
			n, err := deniedBeyondKV(ctx, c, "the role's token", mount, path, map[string]func() error{
				"list sys/policies/acl": func() error {
					_, err := c.Logical().ListWithContext(ctx, "sys/policies/acl")
					return err
				},
			})
			if err != nil {
				return err
			}
			r.Note("%d out-of-policy requests denied", n)
			return nil
		}},
	}}
}

// kvDiff compares a KV value written with its read-back: the same keys, each with the same
// string. It names the keys that differ, never the values.
func kvDiff(want, got map[string]any) string {
	var d []string
	for _, k := range sortedKeys(want) {
		g, ok := got[k]
		switch {
		case !ok:
			d = append(d, k+" missing")
		case g != want[k]:
			d = append(d, k+" differs")
		}
	}
	for _, k := range sortedKeys(got) {
		if _, ok := want[k]; !ok {
			d = append(d, k+" not written")
		}
	}
	return strings.Join(d, ", ")
}
