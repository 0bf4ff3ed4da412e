package scenarios

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/secretslab/secretslab/claims"
	"github.com/secretslab/secretslab/reports"
)

var ledgerIDLike = regexp.MustCompile(`^C\d+-\d+$`)

// Every claim id the scenarios name is in the ledger: the source is scanned, so that an id in
// a check that did not run in any test is caught too. r.Claim takes its id as a literal, or as
// a parameter named claimID that a caller fills with a literal (the literal scan covers those).
func TestEveryClaimIDInTheScenariosIsInTheLedger(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var ids []string
	calls := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if n.Kind == token.STRING {
					if s, err := strconv.Unquote(n.Value); err == nil && ledgerIDLike.MatchString(s) {
						ids = append(ids, s)
						if _, ok := claims.Lookup(s); !ok {
							t.Errorf("%s: claim id %s is not in the ledger (claims/ledger.md)", fset.Position(n.Pos()), s)
						}
					}
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Claim" {
					return true
				}
				calls++
				if len(n.Args) != 3 {
					t.Errorf("%s: Claim with %d arguments, want (id, holds, detail)", fset.Position(n.Pos()), len(n.Args))
					return true
				}
				switch a := n.Args[0].(type) {
				case *ast.BasicLit: // checked above
				case *ast.Ident:
					if a.Name != "claimID" {
						t.Errorf("%s: Claim's id is the variable %s; pass a literal or a parameter named claimID", fset.Position(n.Pos()), a.Name)
					}
				default:
					t.Errorf("%s: Claim's id is not a literal", fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
	// the scan sees what it should: the claims of swap and tenants at least
	for _, want := range []string{"C05-03", "C05-05", "C05-06", "C15-05", "C15-06"} {
		if !slices.Contains(ids, want) {
			t.Errorf("the scan did not find %s (found %v)", want, ids)
		}
	}
	if calls < 15 {
		t.Errorf("only %d Claim calls found", calls)
	}
}

// A claim is recorded with the ledger's text and source, and the versions running; an id the
// ledger does not list fails the check, whatever the check returned.
func TestClaimTakesItsTextFromTheLedger(t *testing.T) {
	e := &Env{Lab: &fakeLab{kube: fake.NewSimpleClientset()}}
	s := Scenario{Name: "s"}
	rc := runCheck(context.Background(), e, s, Check{Name: "ok", Run: func(ctx context.Context, e *Env, r *Result) error {
		r.Claim("C05-05", false, "conditions [Ready=True/SecretSynced]")
		r.Claim("C15-09", true, "")
		return nil
	}})
	want := []reports.Claim{
		{ID: "C05-05", Source: "ch05 §3", Text: "the ExternalSecret shows `SecretSynced=True`", Holds: false, Detail: "conditions [Ready=True/SecretSynced]", Versions: "ESO v0.16.2, Vault 1.17.2"},
		{ID: "C15-09", Source: "ch15.05 failover", Text: `"Raft elects a new active in <30s; the Service follows"`, Holds: true, Versions: "ESO v0.16.2, Vault 1.17.2"},
	}
	if rc.Status != reports.Passed || !slices.Equal(rc.Claims, want) {
		t.Fatalf("%s %s\n got %+v\nwant %+v", rc.Status, rc.Message, rc.Claims, want)
	}

	rc = runCheck(context.Background(), e, s, Check{Name: "typo", Run: func(ctx context.Context, e *Env, r *Result) error {
		r.Claim("C05-5", true, "")
		return nil
	}})
	if rc.Status != reports.Failed || !strings.Contains(rc.Message, `claim "C05-5" is not in the ledger`) || len(rc.Claims) != 0 {
		t.Fatalf("unknown id: %s %q %+v", rc.Status, rc.Message, rc.Claims)
	}
}
