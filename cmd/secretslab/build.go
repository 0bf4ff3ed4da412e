package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/secretslab/secretslab/internal/build"
	"github.com/secretslab/secretslab/internal/esoproc"
	"github.com/secretslab/secretslab/versions"
)

func buildCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	var c versions.Choice
	c.RegisterFlags(fs)
	cacheDir := fs.String("cache-dir", "", "build cache (default: the user cache dir/secretslab)")
	asEnv := fs.Bool("env", false, "print VAULT_BIN=... lines (for tests and scripts) instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	v, err := c.Resolve(versions.Embedded) // only the embedded backend runs built binaries
	if err != nil {
		return err
	}
	b := &build.Builder{CacheDir: *cacheDir, Progress: os.Stderr}
	for _, c := range build.Components(v) {
		path, err := b.Ensure(ctx, c.Name, c.Version)
		if err != nil {
			return err
		}
		if *asEnv {
			fmt.Printf("%s=%s\n", build.EnvVar(c.Name), path)
			continue
		}
		fmt.Printf("%-24s %-9s %s\n", c.Name, c.Version, path)
	}
	if *asEnv {
		return nil
	}
	if crds := os.Getenv("ESO_CRDS"); crds != "" { // an ESO given as ESO_BIN brings its own
		fmt.Printf("%-24s %-9s %s\n", "eso-crds", v.ESO, crds)
		return nil
	}
	dir, err := b.ModuleDir(ctx, esoproc.Module, v.ESO)
	if err != nil {
		return fmt.Errorf("ESO %s CRDs: %w (an ESO the module proxy does not serve runs with ESO_BIN and ESO_CRDS)", v.ESO, err)
	}
	fmt.Printf("%-24s %-9s %s/%s\n", "eso-crds", v.ESO, dir, esoproc.CRDSubdir)
	return nil
}

func versionsCmd(args []string) error {
	fs := flag.NewFlagSet("versions", flag.ContinueOnError)
	var c versions.Choice
	c.RegisterFlags(fs)
	backendName := fs.String("backend", envOr("BACKEND", "kind"), "the backend whose view of the set to print: kind | embedded (env BACKEND)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	v, err := c.Resolve(*backendName)
	if err != nil {
		return err
	}
	fmt.Printf("set            %s (%s view)\nkubernetes     %s\nkindNodeImage  %s\netcd           %s\nvault          %s\nvaultChart     %s\neso            %s\nesoChart       %s\npostgres       %s\n",
		v.Name, *backendName, v.Kubernetes, v.KindNodeImage, v.Etcd, v.Vault, v.VaultChart, v.ESO, v.ESOChart, v.Postgres)
	return nil
}
