// Package backend brings a lab up on the chosen backend.
package backend

import (
	"context"
	"fmt"
	"io"

	"github.com/secretslab/secretslab/internal/docker"
	"github.com/secretslab/secretslab/lab"
	"github.com/secretslab/secretslab/lab/internal/embedded"
)

// Resolve turns "auto" into a concrete backend and explains the choice on w.
func Resolve(ctx context.Context, name string, w io.Writer) (string, error) {
	switch name {
	case lab.BackendEmbedded:
		return name, nil
	case lab.BackendKind:
		return "", errKindNotYet
	case lab.BackendAuto, "":
		if err := docker.Ping(ctx); err != nil {
			fmt.Fprintf(w, "backend auto: %v; using embedded\n", err)
			return lab.BackendEmbedded, nil
		}
		fmt.Fprintln(w, "backend auto: a Docker engine answers, but the kind backend is not implemented yet; using embedded")
		return lab.BackendEmbedded, nil
	default:
		return "", fmt.Errorf("unknown backend %q: choose embedded, kind or auto", name)
	}
}

var errKindNotYet = fmt.Errorf("backend kind is not implemented yet (it arrives with the kind backend issue); use --backend embedded")

// Up starts a lab. Closing it stops everything it started.
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
	return embedded.Up(ctx, opts)
}
