package scenarios

import (
	"context"
	"errors"
	"fmt"
	"strings"

	vault "github.com/hashicorp/vault/api"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/secretslab/secretslab/fixtures"
	"github.com/secretslab/secretslab/internal/redact"
)

// tenants: chapter 15.05's "one Vault shared by N tenants": two tenants onboarded by the
// platform admin, each with its namespace and ESO ServiceAccount; "cross-tenant isolation
// lives in the Vault policy" and the role's audience are observed from each tenant's
// ServiceAccount token. The ESO half (tenants_eso.go): a SecretStore per tenant, the route
// the chapter says production takes, each tenant's ExternalSecret synced, tenant A's
// ExternalSecret pointed at B's path refused by Vault, a store without the audience, and the
// chapter's ClusterSecretStore with its single role.
func tenants() Scenario {
	names := []string{"acme-books", "blue-pages"}
	var onboarded map[string]fixtures.Platform
	var values map[string]string
	eso := &tenantsESO{}
	return Scenario{Name: "tenants", Title: "ch15.05 tenants: each reads its own value, never the other's", Needs: []string{"vault-config"}, Checks: []Check{
		{"onboarded", "the platform admin onboards " + names[0] + " and " + names[1] + ": namespace, ESO ServiceAccount, policy, role, KV value", func(ctx context.Context, e *Env, r *Result) error {
			// the admin policy as bootstrap.admin-policy writes it: this scenario may run alone
			var err error
			onboarded, values, err = e.onboardTenants(ctx, names...)
			return err
		}},
		{"own-value", "each tenant's ServiceAccount (token for the role's audience) logs in with its role and reads its own value", func(ctx context.Context, e *Env, r *Result) error {
			mount, _, _, err := kvTarget()
			if err != nil {
				return err
			}
			for _, name := range names {
				t := onboarded[name]
				c, _, err := e.loginAs(ctx, t.TenantRole.BoundServiceAccountNamespaces[0], t.TenantRole.BoundServiceAccountNames[0], t.TenantRole.Name, audiences(t))
				if err != nil {
					return fmt.Errorf("tenant %s: %w", name, err)
				}
				s, err := c.KVv2(mount).Get(ctx, t.KVPath)
				if err != nil {
					return fmt.Errorf("tenant %s reads its own value: %w", name, err)
				}
				if got, _ := s.Data["password"].(string); got != values[name] {
					return fmt.Errorf("tenant %s read %s, want %s", name, redact.Fingerprint([]byte(got)), redact.Fingerprint([]byte(values[name])))
				}
			}
			return nil
		}},
		{"cross-tenant-read-denied", "a tenant's Vault token is denied the other tenant's value (isolation lives in the policy)", func(ctx context.Context, e *Env, r *Result) error {
			mount, _, _, err := kvTarget()
			if err != nil {
				return err
			}
			a, b := onboarded[names[0]], onboarded[names[1]]
			c, _, err := e.loginAs(ctx, a.TenantRole.BoundServiceAccountNamespaces[0], a.TenantRole.BoundServiceAccountNames[0], a.TenantRole.Name, audiences(a))
			if err != nil {
				return err
			}
			_, err = c.KVv2(mount).Get(ctx, b.KVPath)
			r.Claim("C15-05", isPermissionDenied(err), names[0]+"'s Vault token reading "+names[1]+"'s value")
			if err == nil {
				return fmt.Errorf("%s read %s's value", names[0], names[1])
			}
			return nil
		}},
		{"cross-tenant-login-denied", "a tenant's ServiceAccount cannot log in with the other tenant's role", func(ctx context.Context, e *Env, r *Result) error {
			a, b := onboarded[names[0]], onboarded[names[1]]
			_, _, err := e.loginAs(ctx, a.TenantRole.BoundServiceAccountNamespaces[0], a.TenantRole.BoundServiceAccountNames[0], b.TenantRole.Name, audiences(b))
			if err == nil {
				return fmt.Errorf("%s's ServiceAccount logged in as %s", names[0], b.TenantRole.Name)
			}
			r.Note("refused: %s", vaultReason(e, err))
			return nil
		}},
		{"audience-required", "a ServiceAccount token without the role's audience is refused", func(ctx context.Context, e *Env, r *Result) error {
			a := onboarded[names[0]]
			if len(audiences(a)) == 0 {
				r.Skip("the tenant role sets no audience")
				return nil
			}
			_, _, err := e.loginAs(ctx, a.TenantRole.BoundServiceAccountNamespaces[0], a.TenantRole.BoundServiceAccountNames[0], a.TenantRole.Name, nil)
			r.Claim("C15-06", err != nil, "a ServiceAccount token for the API server's default audience, not the role's, at "+a.TenantRole.Name)
			if err != nil {
				r.Note("refused: %s", vaultReason(e, err))
			}
			return nil
		}},
		{"store-audiences-field", "the served SecretStore CRD has auth.kubernetes.serviceAccountRef.audiences (the store can ask for the role's audience)", func(ctx context.Context, e *Env, r *Result) error {
			return eso.audiencesField(ctx, e, r)
		}},
		{"tenant-stores-ready", "each tenant's SecretStore (Kubernetes auth, its own role, its ESO ServiceAccount with the role's audience) becomes Ready", func(ctx context.Context, e *Env, r *Result) error {
			return eso.storesReady(ctx, e, r, onboarded, names)
		}},
		{"eso-own-value", "each tenant's ExternalSecret syncs its own value (compared by keyed fingerprint)", func(ctx context.Context, e *Env, r *Result) error {
			return eso.ownValue(ctx, e, r, onboarded, values, names)
		}},
		{"eso-cross-tenant-denied", "tenant " + names[0] + "'s ExternalSecret pointed at " + names[1] + "'s path is not synced, Vault's permission denied shows, and no Secret in " + names[0] + "'s namespace holds " + names[1] + "'s value", func(ctx context.Context, e *Env, r *Result) error {
			return eso.crossTenant(ctx, e, r, onboarded[names[0]], onboarded[names[1]], []byte(values[names[1]]))
		}},
		{"store-without-audience", "a SecretStore in " + names[0] + "'s namespace that does not ask for the role's audience: what happens (finding)", func(ctx context.Context, e *Env, r *Result) error {
			return eso.withoutAudience(ctx, e, r, onboarded[names[0]], []byte(values[names[0]]))
		}},
		{"cluster-secret-store", "the chapter's ClusterSecretStore (one role, the ServiceAccount in the ExternalSecret's namespace): Ready, and what each tenant's ExternalSecret through it gets", func(ctx context.Context, e *Env, r *Result) error {
			return eso.clusterStore(ctx, e, r, onboarded, values, names)
		}},
	}}
}

// audiences is the tenant role's audience, as a TokenRequest asks for it.
func audiences(t fixtures.Platform) []string {
	if a, ok := t.TenantRole.Other["audience"].(string); ok && a != "" {
		return []string{a}
	}
	return nil
}

// tenantNamespace creates the tenant's namespace and its ESO ServiceAccount; the namespace is
// deleted when the scenario ends.
func (e *Env) tenantNamespace(ctx context.Context, t fixtures.Platform) error {
	nsName, sa := t.TenantRole.BoundServiceAccountNamespaces[0], t.TenantRole.BoundServiceAccountNames[0]
	k := e.Lab.Kube().CoreV1()
	if _, err := k.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", nsName, err)
	}
	e.Defer("delete namespace "+nsName, func(ctx context.Context) error {
		if err := k.Namespaces().Delete(ctx, nsName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		o := &unstructured.Unstructured{}
		o.SetAPIVersion("v1")
		o.SetKind("Namespace")
		o.SetName(nsName)
		return e.Kube.WaitGone(ctx, o, e.Timeouts.Gone)
	})
	if _, err := k.ServiceAccounts(nsName).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ServiceAccount %s/%s: %w", nsName, sa, err)
	}
	return nil
}

// vaultReason is Vault's own error text (status and messages), redacted.
func vaultReason(e *Env, err error) string {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		return e.Lab.Secrets().String(fmt.Sprintf("%d %s", re.StatusCode, strings.Join(re.Errors, "; ")))
	}
	return e.redactErr("", err).Error()
}
