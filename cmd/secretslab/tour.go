package main

import (
	"context"
	"fmt"
	"io"

	"github.com/secretslab/secretslab/internal/labstate"
	"github.com/secretslab/secretslab/lab"
	"github.com/secretslab/secretslab/reports"
	"github.com/secretslab/secretslab/scenarios"
)

// setUpChapter05 runs chapter 05's steps on the lab, up to the swap, through the same
// scenario code the conformance suite runs; it returns the catalog's URL.
func setUpChapter05(ctx context.Context, l lab.Lab, out io.Writer) (string, error) {
	env, err := scenarios.NewEnv(l, out)
	if err != nil {
		return "", err
	}
	r := &scenarios.Runner{Env: env}
	if err := r.Ensure(ctx, "swap"); err != nil {
		return "", err
	}
	for _, c := range r.Results {
		if c.Status != reports.Passed {
			return "", fmt.Errorf("%s: %s: %s", c.ID, c.Status, c.Message)
		}
	}
	return env.CatalogURL(), nil
}

// printTour walks a learner through what the lab set up, chapter step by step, with
// commands to see each part. None of them is run by secretslab itself.
func printTour(w io.Writer, s *labstate.State) {
	fmt.Fprintf(w, `
Chapter 05, as this lab set it up (backend %s). First, in each shell:

  export KUBECONFIG=%s
  export VAULT_ADDR=%s
  export VAULT_TOKEN="$(cat %s)"

0. The bookstore runs on the demo Secret (raw-manifests/, namespace bookstore, Pod Security restricted):
     kubectl get pods,svc -n bookstore
     curl -s %s/books

1. Vault: Kubernetes auth, the least-privilege policy bookstore-ro, the role, the KV v2 value:
     vault auth list
     vault policy read bookstore-ro
     vault read auth/kubernetes/role/bookstore-eso
     vault kv get -field=POSTGRES_USER secret/bookstore/db      # fields, not the whole secret

2. External Secrets Operator (namespace external-secrets) and its CRDs:
     kubectl get crd | grep external-secrets.io
     kubectl api-versions | grep external-secrets      # v1beta1 and v1alpha1; the chapter's v1 is not served

3. The swap: db-credentials now comes from Vault through an ExternalSecret:
     kubectl get externalsecret,secretstore -n bookstore
     kubectl get externalsecret db-credentials -n bookstore -o jsonpath='{.status.conditions[*].type}={.status.conditions[*].reason}{"\n"}'
                                                        # Ready=SecretSynced (the chapter says SecretSynced=True)
     kubectl get secret db-credentials -n bookstore -o jsonpath='{.metadata.ownerReferences[0].kind}{"\n"}'
     curl -s %s/books                                   # the catalog, restarted, still serves

5. Revert to the demo Secret, as the chapter does:
     kubectl delete externalsecret db-credentials -n bookstore     # ESO's Secret is garbage-collected
     kubectl apply --server-side -f fixtures/bookstore/raw-manifests/16-db-credentials.yaml

Step 4 (dynamic credentials) and everything above run unattended in: make conformance BACKEND=%s
Stop the lab: make lab-down (secretslab lab down)
`, s.Backend, s.Kubeconfig, s.VaultAddr, s.RootTokenFile, s.CatalogURL, s.CatalogURL, s.Backend)
}
