// Package charts loads pinned Helm charts (from a chart repository or from a
// local directory / .tgz) and installs them with the Helm v4 Go SDK. It never
// runs the helm binary.
package charts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
)

// Source says where a chart comes from. When Path is set it wins: the chart
// is loaded from that directory or .tgz and Repo is ignored. Otherwise the
// chart Name at Version is downloaded from the HTTP(S) chart repository Repo.
type Source struct {
	Repo    string // chart repository URL, e.g. https://helm.releases.hashicorp.com
	Name    string // chart name in the repository index, e.g. "vault"
	Version string // exact chart version; required in repo mode, checked in local mode when set
	Path    string // local chart directory or packaged .tgz
}

func (s Source) String() string {
	if s.Path != "" {
		return s.Path
	}
	return fmt.Sprintf("%s@%s from %s", s.Name, s.Version, s.Repo)
}

// Load returns the chart described by src. In repo mode the downloaded
// archive is kept in cacheDir (default: the user cache dir) and reused by
// later calls without touching the network.
//
// Dependencies listed in Chart.yaml but absent from charts/ are left alone:
// Helm's install/upgrade (chartutil.ProcessDependenciesWithMerge) drops the
// ones disabled by their condition or tags, and Install refuses to proceed
// when one that the final values enable is missing.
func Load(ctx context.Context, src Source, cacheDir string) (*chart.Chart, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if src.Path != "" {
		return loadLocal(src)
	}
	if src.Repo == "" || src.Name == "" || src.Version == "" {
		return nil, fmt.Errorf("chart source %+v: need either Path or all of Repo, Name and Version", src)
	}
	if cacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("no chart cache directory given and no user cache dir: %w", err)
		}
		cacheDir = filepath.Join(base, "secretslab", "charts")
	}
	return loadFromRepo(ctx, src, cacheDir)
}

func loadLocal(src Source) (*chart.Chart, error) {
	if _, err := os.Stat(src.Path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("local chart %s does not exist (expected a chart directory or a .tgz)", src.Path)
		}
		return nil, fmt.Errorf("local chart %s: %w", src.Path, err)
	}
	ch, err := loader.Load(src.Path)
	if err != nil {
		return nil, fmt.Errorf("load local chart %s: %w", src.Path, err)
	}
	if err := checkChart(ch, src, src.Path); err != nil {
		return nil, err
	}
	return ch, nil
}

// checkChart verifies the loaded chart is the one src asks for.
func checkChart(ch *chart.Chart, src Source, where string) error {
	if ch.Metadata == nil {
		return fmt.Errorf("chart %s has no Chart.yaml metadata", where)
	}
	if src.Name != "" && ch.Name() != src.Name {
		return fmt.Errorf("chart %s is named %q, expected %q", where, ch.Name(), src.Name)
	}
	if src.Version != "" && !sameVersion(ch.Metadata.Version, src.Version) {
		return fmt.Errorf("chart %s is %s version %s, but version %s is pinned; use the chart at version %s or change the pin",
			where, ch.Name(), ch.Metadata.Version, src.Version, src.Version)
	}
	return nil
}

func sameVersion(a, b string) bool {
	return strings.TrimPrefix(a, "v") == strings.TrimPrefix(b, "v")
}
