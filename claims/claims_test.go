package claims

import (
	"fmt"
	"strings"
	"testing"
)

func TestTheEmbeddedLedgerListsBothChaptersInOrder(t *testing.T) {
	all := All()
	// the ledger numbers each chapter's claims from 01 without gaps
	var want []string
	for i := 1; i <= 20; i++ {
		want = append(want, fmt.Sprintf("C05-%02d", i))
	}
	for i := 1; i <= 20; i++ {
		want = append(want, fmt.Sprintf("C15-%02d", i))
	}
	var got []string
	for _, c := range all {
		got = append(got, c.ID)
		if c.Text == "" || c.Section == "" {
			t.Errorf("%s: section %q, text %q", c.ID, c.Section, c.Text)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("ids:\n got %v\nwant %v", got, want)
	}
	c, ok := Lookup("C05-01")
	if !ok || !strings.Contains(c.Text, "printf ... | vault policy write") || c.Source() != "ch05 §1" {
		t.Errorf("C05-01: %+v (the escaped pipe belongs to the claim)", c)
	}
	if c, ok := Lookup("C15-05"); !ok || c.Chapter != "ch15.05" || !strings.Contains(c.Text, "tenant A") {
		t.Errorf("C15-05: %+v", c)
	}
	if _, ok := Lookup("C05-99"); ok {
		t.Error("C05-99 found")
	}
}

func TestParseRejectsABrokenLedger(t *testing.T) {
	for name, src := range map[string]string{
		"empty":         "# nothing\n",
		"duplicate":     "| C05-01 | §1 | a |\n| C05-01 | §2 | b |\n",
		"bad id":        "| C5-1 | §1 | a |\n",
		"other chapter": "| C07-01 | §1 | a |\n",
		"no text":       "| C05-01 | §1 |  |\n",
		"two cells":     "| C05-01 | §1 |\n",
	} {
		if _, err := Parse(src); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	got, err := Parse("prose\n| C15-02 | b | y \\| z |\n| C05-03 | a | x |\n")
	if err != nil || len(got) != 2 || got[0].ID != "C05-03" || got[1].Text != "y | z" {
		t.Fatalf("%+v %v", got, err)
	}
}
