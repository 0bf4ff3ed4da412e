package scenarios

import (
	"fmt"
	"sort"
)

// All lists the scenarios in the order the chapters take them. A new scenario is one file
// with a func returning its Scenario, and one entry here.
func All() []Scenario {
	return []Scenario{
		baseline(),
		vaultConfig(),
		swap(),
		revert(),
		dynamic(),
		rotation(),
		breakGlass(),
		bootstrap(),
		tenants(),
		audit(),
		injectorPSA(),
		refreshRace(),
		rolloutOnRotation(),
		failover(),
		leaseStorm(),
		devLeaseLoss(),
		autoUnseal(),
		upgrade(), // last: it moves the lab to other versions
	}
}

// ByName finds a scenario.
func ByName(name string) (Scenario, error) {
	var names []string
	for _, s := range All() {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return Scenario{}, fmt.Errorf("unknown scenario %q (have %v)", name, names)
}
