package scenarios

import (
	"slices"
	"testing"

	"github.com/secretslab/secretslab/fixtures"
)

// TestStormGrantsThroughTheGroupRole: the fixture's GRANT on tables becomes one GRANT of the
// group role; CREATE ROLE (login, password, VALID UNTIL) stays as the chapter has it.
func TestStormGrantsThroughTheGroupRole(t *testing.T) {
	c, err := fixtures.VaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	_, r, err := only(c.Database.Roles, "database role")
	if err != nil {
		t.Fatal(err)
	}
	got, err := grantThroughGroup(r.CreationStatements, "readers")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{r.CreationStatements[0], `GRANT "readers" TO "{{name}}";`}
	if !slices.Equal(got, want) {
		t.Errorf("storm statements %q, want %q", got, want)
	}
	if _, err := grantThroughGroup([]string{`CREATE ROLE "{{name}}";`}, "readers"); err == nil {
		t.Error("statements without a GRANT ... ON: no error, want one (nothing to replace)")
	}
}
