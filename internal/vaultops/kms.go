package vaultops

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/vault/api"

	"github.com/secretslab/secretslab/internal/redact"
)

// The KMS stand-in: a Vault whose transit engine holds the key that protects an HA cluster's
// root key (seal "transit"), as seal "awskms" uses a cloud KMS key in chapter 15.05.
const (
	KMSMount      = "transit"
	KMSKeyName    = "autounseal"
	KMSPolicy     = "autounseal"
	kmsTokenTTL   = "768h" // the seal renews its (periodic) token; the period only bounds a lost renewer
	kmsPolicyBody = `path "transit/encrypt/autounseal" { capabilities = ["update"] }
path "transit/decrypt/autounseal" { capabilities = ["update"] }
`
)

// SetUpTransitKMS makes the Vault behind root (a root token client) the KMS stand-in: the
// transit engine at KMSMount/, the key KMSKeyName, a policy allowing only encrypt and decrypt
// with it (the IAM policy of the chapter's IRSA role), and a periodic orphan token of that
// policy, which it returns after checking that it can encrypt and cannot read the key. The
// token is added to secrets.
func SetUpTransitKMS(ctx context.Context, root *api.Client, secrets *redact.Set) (string, error) {
	if err := root.Sys().MountWithContext(ctx, KMSMount, &api.MountInput{Type: "transit"}); err != nil {
		return "", fmt.Errorf("enable transit at %s/: %w", KMSMount, err)
	}
	if _, err := root.Logical().WriteWithContext(ctx, KMSMount+"/keys/"+KMSKeyName, map[string]any{"type": "aes256-gcm96"}); err != nil {
		return "", fmt.Errorf("create transit key %s: %w", KMSKeyName, err)
	}
	if err := root.Sys().PutPolicyWithContext(ctx, KMSPolicy, kmsPolicyBody); err != nil {
		return "", fmt.Errorf("write policy %s: %w", KMSPolicy, err)
	}
	sec, err := root.Auth().Token().CreateOrphanWithContext(ctx, &api.TokenCreateRequest{
		Policies: []string{KMSPolicy}, NoDefaultPolicy: true, Period: kmsTokenTTL, DisplayName: "autounseal",
	})
	if sec != nil && sec.Auth != nil {
		secrets.Add(sec.Auth.ClientToken, sec.Auth.Accessor)
	}
	if err != nil {
		return "", fmt.Errorf("create the seal's token: %w", err)
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return "", errors.New("create the seal's token: no token in the answer")
	}
	// the token can do what the seal needs and nothing else
	tc, err := root.Clone()
	if err != nil {
		return "", err
	}
	tc.SetToken(sec.Auth.ClientToken)
	if _, err := tc.Logical().WriteWithContext(ctx, KMSMount+"/encrypt/"+KMSKeyName, map[string]any{"plaintext": "cHJvYmU="}); err != nil {
		return "", fmt.Errorf("the seal's token cannot encrypt with %s: %w", KMSKeyName, err)
	}
	if _, err := tc.Logical().ReadWithContext(ctx, KMSMount+"/keys/"+KMSKeyName); err == nil {
		return "", fmt.Errorf("the seal's token can read %s/keys/%s: its policy is wider than encrypt/decrypt", KMSMount, KMSKeyName)
	}
	return sec.Auth.ClientToken, nil
}
