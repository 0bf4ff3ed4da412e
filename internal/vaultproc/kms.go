package vaultproc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretslab/secretslab/internal/vaultops"
)

// KMSName names the KMS stand-in's node (vault-kms-0); its transit set-up is
// vaultops.SetUpTransitKMS.
const KMSName = "vault-kms"

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
	token, err := vaultops.SetUpTransitKMS(ctx, root, opts.Redact)
	if err != nil {
		return nil, err
	}
	return &TransitSeal{Address: root.Address(), Token: token, KeyName: vaultops.KMSKeyName, MountPath: vaultops.KMSMount + "/"}, nil
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
