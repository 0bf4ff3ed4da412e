package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/secretslab/secretslab/fixtures"
	"github.com/secretslab/secretslab/internal/build"
	"github.com/secretslab/secretslab/internal/labstate"
	"github.com/secretslab/secretslab/lab"
	"github.com/secretslab/secretslab/reports"
	"github.com/secretslab/secretslab/scenarios"
	"github.com/secretslab/secretslab/versions"
)

// setUpChapter05 runs chapter 05's steps on the lab, up to the swap, through the same
// scenario code the conformance suite runs; it records in s the catalog's URL and what the
// run observed for the tour to print.
func setUpChapter05(ctx context.Context, l lab.Lab, out io.Writer, s *labstate.State) error {
	env, err := scenarios.NewEnv(l, out)
	if err != nil {
		return err
	}
	r := &scenarios.Runner{Env: env}
	if err := r.Ensure(ctx, "swap"); err != nil {
		return err
	}
	s.Claims = map[string]bool{}
	for _, c := range r.Results {
		if c.Status != reports.Passed {
			return fmt.Errorf("%s: %s: %s", c.ID, c.Status, c.Message)
		}
		for _, cl := range c.Claims {
			s.Claims[cl.ID] = cl.Holds
		}
	}
	if s.ESOServed, err = env.Kube.ServedVersions("external-secrets.io"); err != nil {
		return err
	}
	s.CatalogURL = env.CatalogURL()
	return nil
}

// claimNote says whether the chapter's claim (ledger id) held on this lab.
func claimNote(s *labstate.State, id, claim string) string {
	holds, ok := s.Claims[id]
	switch {
	case !ok:
		return "the chapter: " + claim + " (not observed)"
	case holds:
		return "the chapter: " + claim + ": holds here"
	}
	return "the chapter: " + claim + ": does not hold here"
}

// learnerCLIs are the CLIs the printed commands use, as built components: the vault
// binary is also Vault's CLI.
func learnerCLIs(v versions.Set) []build.Want {
	return []build.Want{{Name: "kubectl", Version: v.Kubernetes}, {Name: "vault", Version: v.Vault}}
}

// linkCLIs links the lab's kubectl and vault (from the build cache, or KUBECTL_BIN and
// VAULT_BIN) into stateDir/bin, which the printed commands put first on PATH: a learner
// of the embedded lab needs neither installed. It returns that directory.
func linkCLIs(ctx context.Context, b *build.Builder, v versions.Set, stateDir string) (string, error) {
	bin := filepath.Join(stateDir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	for _, c := range learnerCLIs(v) {
		p, err := b.Ensure(ctx, c.Name, c.Version)
		if err != nil {
			return "", fmt.Errorf("%s for the learner's PATH: %w", c.Name, err)
		}
		link := filepath.Join(bin, c.Name)
		if err := os.Remove(link); err != nil && !os.IsNotExist(err) {
			return "", err
		}
		if err := os.Symlink(p, link); err != nil {
			return "", err
		}
	}
	return bin, nil
}

// writeDemoSecret copies the demo Secret manifest into stateDir, for the tour's revert
// step: the printed path then works from any directory, the repository or not.
func writeDemoSecret(stateDir string) (string, error) {
	b, err := fixtures.Manifest(fixtures.DemoSecretPath)
	if err != nil {
		return "", err
	}
	p := filepath.Join(stateDir, path.Base(fixtures.DemoSecretPath))
	if err := os.WriteFile(p, b, 0o600); err != nil {
		return "", err
	}
	return p, nil
}

// shellSafe matches words a POSIX shell takes literally.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./~-]+$`)

// shq quotes s for a POSIX shell when it needs quoting (a state dir with a space).
func shq(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// printExports prints the lines that point a shell at the lab: the lab's CLIs first on
// PATH (embedded), its kubeconfig, Vault's address and the root token, read from its file.
func printExports(w io.Writer, s *labstate.State, tokenNote string) {
	if s.BinDir != "" {
		fmt.Fprintf(w, "  export PATH=%s:$PATH   # kubectl and vault, built for this lab\n", shq(s.BinDir))
	}
	fmt.Fprintf(w, "  export KUBECONFIG=%s\n  export VAULT_ADDR=%s\n  export VAULT_TOKEN=\"$(cat %s)\"%s\n",
		shq(s.Kubeconfig), shq(s.VaultAddr), shq(s.RootTokenFile), tokenNote)
}

// printTour walks a learner through what the lab set up, chapter step by step, with
// commands to see each part. None of them is run by secretslab itself; every indented
// kubectl, vault and curl line is a command that works on this lab, after the exports
// (TestLabUpStatusDownFromSeparateProcesses runs them all on the embedded backend).
func printTour(w io.Writer, s *labstate.State) {
	books := "curl -fsS " + s.CatalogURL + "/books"
	fmt.Fprintf(w, "\nChapter 05, as this lab set it up (backend %s). First, in each shell:\n\n", s.Backend)
	printExports(w, s, "")
	if s.Backend == lab.BackendEmbedded {
		fmt.Fprintf(w, `
0. The bookstore runs on the demo Secret (raw-manifests/, namespace bookstore, Pod Security restricted).
   This backend has no kubelet, hence no pods: catalog, orders and Postgres run as host processes.
   Their Services, ServiceAccounts, ConfigMap and Secret are API objects:
     kubectl get svc,serviceaccounts,configmaps,secrets -n bookstore
     kubectl get namespace bookstore --show-labels
     %s
`, books)
	} else {
		fmt.Fprintf(w, `
0. The bookstore runs on the demo Secret (raw-manifests/, namespace bookstore, Pod Security restricted):
     kubectl get pods,svc -n bookstore
     %s
`, books)
	}
	demo := "fixtures/" + fixtures.DemoSecretPath + "     # from the secretslab repository's root"
	if s.DemoSecretFile != "" {
		demo = shq(s.DemoSecretFile) + "     # raw-manifests/16-db-credentials.yaml"
	}
	fmt.Fprintf(w, `
1. Vault: Kubernetes auth, the least-privilege policy bookstore-ro, the role, the KV v2 value:
     vault auth list
     vault policy read bookstore-ro
     vault read auth/kubernetes/role/bookstore-eso
     vault kv get -field=POSTGRES_USER secret/bookstore/db      # one field, not the whole secret

2. External Secrets Operator (namespace external-secrets) and its CRDs:
     kubectl get crd | grep external-secrets.io
     kubectl api-versions | grep external-secrets      # this lab serves %s; %s

3. The swap: db-credentials now comes from Vault through an ExternalSecret:
     kubectl get externalsecret,secretstore -n bookstore
     kubectl get externalsecret db-credentials -n bookstore -o jsonpath='{.status.conditions[*].type}={.status.conditions[*].reason}{"\n"}'
                                                        # %s
     kubectl get secret db-credentials -n bookstore -o jsonpath='{.metadata.ownerReferences[0].kind}{"\n"}'
     %s                                   # the catalog, restarted, still serves

5. Revert to the demo Secret, as the chapter does:
     kubectl delete externalsecret db-credentials -n bookstore
     kubectl wait --for=delete secret/db-credentials -n bookstore --timeout=60s   # ESO's Secret is garbage-collected
     kubectl apply --server-side -f %s

Step 4 (dynamic credentials) and everything above run unattended in: make conformance BACKEND=%s
Stop the lab: make lab-down (secretslab lab down)
`, strings.Join(s.ESOServed, " "), claimNote(s, "C05-03", "SecretStore and ExternalSecret are served as v1"),
		claimNote(s, "C05-05", "condition SecretSynced=True"), books, demo, s.Backend)
}
