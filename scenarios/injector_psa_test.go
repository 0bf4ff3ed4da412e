package scenarios

import (
	"strings"
	"testing"
)

func TestViolatedFieldsNamesEachCheckAndField(t *testing.T) {
	// the API server's answer, as kube-apiserver 1.31 words it
	msg := `pods "catalog-injector-probe" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "vault-agent-init" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (containers "vault-agent-init", "vault-agent" must set securityContext.capabilities.drop=["ALL"]), seccompProfile (pod or containers "vault-agent-init", "vault-agent" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`
	got := strings.Join(violatedFields(msg), "\n")
	want := strings.Join([]string{
		`allowPrivilegeEscalation != false: container "vault-agent-init" must set securityContext.allowPrivilegeEscalation=false`,
		`unrestricted capabilities: containers "vault-agent-init", "vault-agent" must set securityContext.capabilities.drop=["ALL"]`,
		`seccompProfile: pod or containers "vault-agent-init", "vault-agent" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"`,
	}, "\n")
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := violatedFields("something else"); len(got) != 1 || got[0] != "something else" {
		t.Fatalf("an unknown message is kept whole: %q", got)
	}
}
