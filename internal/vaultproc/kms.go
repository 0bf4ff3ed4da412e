package vaultproc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/api"
)

// The KMS stand-in: a second Vault whose transit engine holds the key that protects the HA
// cluster's root key, as seal "awskms" uses a cloud KMS key in the chapter. Its token may
// only encrypt and decrypt with that key (the IAM policy of the chapter's IRSA role).
const (
	KMSName       = "vault-kms"
	KMSMount      = "transit"
	KMSKeyName    = "autounseal"
	KMSPolicy     = "autounseal"
	kmsTokenTTL   = "768h" // the seal renews its (periodic) token; the period only bounds a lost renewer
	kmsPolicyBody = `path "transit/encrypt/autounseal" { capabilities = ["update"] }
path "transit/decrypt/autounseal" { capabilities = ["update"] }
`
)

// StartKMS starts the KMS stand-in: a one-node Raft Vault (its storage survives a restart, as a
// KMS key does; it is Shamir-sealed itself, so its own restart needs its own unseal, the KMS
// operator's business), with the transit engine at transit/, the key autounseal, a policy
// allowing only encrypt and decrypt with it, and a periodic orphan token of that policy. The
// token is added to opts.Redact. opts.Name defaults to vault-kms (node vault-kms-0).
func StartKMS(ctx context.Context, opts Options) (*Cluster, *TransitSeal, error) {
	if opts.Name == "" {
		opts.Name = KMSName
	}
	opts.Seal = nil
	c, err := StartRaft(ctx, opts, 1)
	if err != nil {
		return nil, nil, fmt.Errorf("KMS vault: %w", err)
	}
	seal, err := configureTransit(ctx, c.nodes[0].client, c.opts)
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("KMS vault: %w", err), c.Stop(5*time.Second))
	}
	return c, seal, nil
}

func configureTransit(ctx context.Context, root *api.Client, opts Options) (*TransitSeal, error) {
	if err := root.Sys().MountWithContext(ctx, KMSMount, &api.MountInput{Type: "transit"}); err != nil {
		return nil, fmt.Errorf("enable transit at %s/: %w", KMSMount, err)
	}
	if _, err := root.Logical().WriteWithContext(ctx, KMSMount+"/keys/"+KMSKeyName, map[string]any{"type": "aes256-gcm96"}); err != nil {
		return nil, fmt.Errorf("create transit key %s: %w", KMSKeyName, err)
	}
	if err := root.Sys().PutPolicyWithContext(ctx, KMSPolicy, kmsPolicyBody); err != nil {
		return nil, fmt.Errorf("write policy %s: %w", KMSPolicy, err)
	}
	sec, err := root.Auth().Token().CreateOrphanWithContext(ctx, &api.TokenCreateRequest{
		Policies: []string{KMSPolicy}, NoDefaultPolicy: true, Period: kmsTokenTTL, DisplayName: "autounseal",
	})
	if sec != nil && sec.Auth != nil {
		opts.Redact.Add(sec.Auth.ClientToken, sec.Auth.Accessor)
	}
	if err != nil {
		return nil, fmt.Errorf("create the seal's token: %w", err)
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return nil, errors.New("create the seal's token: no token in the answer")
	}
	// the token can do what the seal needs and nothing else
	tc, err := root.Clone()
	if err != nil {
		return nil, err
	}
	tc.SetToken(sec.Auth.ClientToken)
	if _, err := tc.Logical().WriteWithContext(ctx, KMSMount+"/encrypt/"+KMSKeyName, map[string]any{"plaintext": "cHJvYmU="}); err != nil {
		return nil, fmt.Errorf("the seal's token cannot encrypt with %s: %w", KMSKeyName, err)
	}
	if _, err := tc.Logical().ReadWithContext(ctx, KMSMount+"/keys/"+KMSKeyName); err == nil {
		return nil, fmt.Errorf("the seal's token can read %s/keys/%s: its policy is wider than encrypt/decrypt", KMSMount, KMSKeyName)
	}
	return &TransitSeal{Address: root.Address(), Token: sec.Auth.ClientToken, KeyName: KMSKeyName, MountPath: KMSMount + "/"}, nil
}

// Seal is "transit" for a cluster auto-unsealed by a transit seal, else "shamir" ("" for a dev
// server).
func (c *Cluster) Seal() string {
	switch {
	case c.dev:
		return ""
	case c.opts.Seal != nil:
		return "transit"
	default:
		return "shamir"
	}
}
