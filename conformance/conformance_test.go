package conformance

import (
	"strings"
	"testing"

	"github.com/secretslab/secretslab/scenarios"
)

func TestSelect(t *testing.T) {
	var all []string
	for _, s := range scenarios.All() {
		all = append(all, s.Name)
	}
	for labels, want := range map[string]string{
		"":                               strings.Join(all, ","),
		"scenario=swap":                  "swap",
		"scenario=failover,swap":         "swap,failover",
		" scenario=revert ":              "revert",
		"scenario=swap,scenario=dynamic": "swap,dynamic",
	} {
		list, err := Select(labels)
		if err != nil {
			t.Fatalf("%q: %v", labels, err)
		}
		var names []string
		for _, s := range list {
			names = append(names, s.Name)
		}
		if got := strings.Join(names, ","); got != want {
			t.Errorf("%q: got %s, want %s", labels, got, want)
		}
	}
	for labels, want := range map[string]string{
		"scenario=nope": `unknown scenario "nope"`,
		"app=bookstore": "want scenario=NAME",
	} {
		if _, err := Select(labels); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: want an error containing %q, got %v", labels, want, err)
		}
	}
}
