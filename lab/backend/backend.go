// Package backend brings a lab up on the chosen backend.
package backend

import (
	"context"
	"fmt"
	"io"

	"github.com/secretslab/secretslab/internal/docker"
	"github.com/secretslab/secretslab/lab"
	"github.com/secretslab/secretslab/lab/internal/embedded"
	"github.com/secretslab/secretslab/lab/internal/kind"
)

// Resolve turns "auto" into a concrete backend and explains the choice on w.
func Resolve(ctx context.Context, name string, w io.Writer) (string, error) {
	switch name {
	case lab.BackendEmbedded, lab.BackendCluster:
		return name, nil
	case lab.BackendKind:
		if err := docker.Ping(ctx); err != nil {
			return "", fmt.Errorf("backend kind needs a Docker engine: %w (or use --backend embedded)", err)
		}
		return name, nil
	case lab.BackendAuto, "":
		if err := docker.Ping(ctx); err != nil {
			fmt.Fprintf(w, "backend auto: %v; using embedded\n", err)
			return lab.BackendEmbedded, nil
		}
		fmt.Fprintln(w, "backend auto: a Docker engine answers; using kind")
		return lab.BackendKind, nil
	default:
		return "", fmt.Errorf("unknown backend %q: choose embedded, kind, cluster (the cluster in KUBECONFIG) or auto", name)
	}
}

// Up starts a lab. Closing it stops everything it started (on the cluster backend: removes
// everything the run created, and fails when the cluster is not as it was found).
func Up(ctx context.Context, opts lab.Options) (lab.Lab, error) {
	w := opts.Progress
	if w == nil {
		w = io.Discard
	}
	name, err := Resolve(ctx, opts.Backend, w)
	if err != nil {
		return nil, err
	}
	opts.Backend = name
	if name == lab.BackendKind || name == lab.BackendCluster {
		return kind.Up(ctx, opts)
	}
	return embedded.Up(ctx, opts)
}

// ClusterLeftoverHelp says how to remove by hand what a cluster-backend run created, for when
// the process that should have removed it is gone.
func ClusterLeftoverHelp(run string) string { return kind.LeftoverHelp(run) }
