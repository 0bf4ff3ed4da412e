package scenarios

import (
	"context"
	"testing"

	"github.com/secretslab/secretslab/lab"
)

type logNode struct {
	lab.VaultNode
	log string
}

func (n logNode) Name() string                        { return "vault-1" }
func (n logNode) Log(context.Context) (string, error) { return n.log, nil }

// The seal error is found in both shapes Vault 1.17 prints at start: a one-line dial error
// (embedded: the KMS process is gone) and a multi-line API error (kind: the KMS pod came back
// sealed), whose URL, code and errors are kept; a log without one is an error.
func TestSealErrorLine(t *testing.T) {
	for log, want := range map[string]string{
		"==> Vault server configuration:\nerror parsing Seal configuration: Put \"http://127.0.0.1:1/v1/transit/encrypt/autounseal\": dial tcp 127.0.0.1:1: connect: connection refused\n2026-11-30T17:40:48.932Z [INFO]  proxy environment\n":                                                                                                                                                                                                                              `error parsing Seal configuration: Put "http://127.0.0.1:1/v1/transit/encrypt/autounseal": dial tcp 127.0.0.1:1: connect: connection refused`,
		"error parsing Seal configuration: Error making API request.\n\nURL: PUT http://vault-kms.vault-kms.svc:8200/v1/transit/encrypt/autounseal\nCode: 503. Errors:\n\n* Vault is sealed\n":                                                                                                                                                                                                                                                                              `error parsing Seal configuration: Error making API request. URL: PUT http://vault-kms.vault-kms.svc:8200/v1/transit/encrypt/autounseal Code: 503. Errors: * Vault is sealed`,
		"2026-11-30T18:06:45.148401848Z error parsing Seal configuration: Error making API request.\n2026-11-30T18:06:45.148545367Z \n2026-11-30T18:06:45.148554534Z URL: PUT http://vault-kms.vault-kms.svc:8200/v1/transit/encrypt/autounseal\n2026-11-30T18:06:45.148559173Z Code: 503. Errors:\n2026-11-30T18:06:45.148561928Z \n2026-11-30T18:06:45.148564974Z * Vault is sealed\n2026-11-30T18:06:45.148734722Z 2026-11-30T18:06:37.776Z [INFO]  proxy environment\n": `2026-11-30T18:06:45.148401848Z error parsing Seal configuration: Error making API request. URL: PUT http://vault-kms.vault-kms.svc:8200/v1/transit/encrypt/autounseal Code: 503. Errors: * Vault is sealed`,
	} {
		got, err := sealErrorLine(context.Background(), logNode{log: log})
		if err != nil || got != want {
			t.Errorf("got %q, %v\nwant %q", got, err, want)
		}
	}
	if _, err := sealErrorLine(context.Background(), logNode{log: "core: vault is unsealed\n"}); err == nil {
		t.Error("a log without a seal error gave a line")
	}
}
