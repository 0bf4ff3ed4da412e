package charts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/kube"
	helmrelease "helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/client-go/rest"
)

// Release summarises an installed Helm release.
type Release struct {
	Name         string
	Namespace    string
	Chart        string
	ChartVersion string
	AppVersion   string
	Revision     int
}

// InstallOptions tune Install.
type InstallOptions struct {
	// Timeout for the Kubernetes operations (and for Wait). Default 5m.
	Timeout time.Duration
	// Wait for the release's resources to become ready.
	Wait bool
	// Log receives Helm's debug log and Kubernetes API warnings. nil
	// discards them. Nothing is ever written to stdout.
	Log io.Writer
}

// Install installs ch as release in namespace (created when missing), or
// upgrades the release when it already exists, so calling it again with the
// same chart and values is harmless. values replace (not merge with) the
// values of an earlier revision. Atomic is off: a failed release stays for
// inspection.
func Install(ctx context.Context, kubeconfig string, ch *chart.Chart, release, namespace string, values map[string]any, opts InstallOptions) (*Release, error) {
	if ch == nil || ch.Metadata == nil {
		return nil, errors.New("install: no chart")
	}
	if values == nil {
		values = map[string]any{}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	if err := checkEnabledDependencies(ch, values); err != nil {
		return nil, fmt.Errorf("install %s: %w", release, err)
	}
	cfg, err := newConfig(kubeconfig, namespace, opts.Log)
	if err != nil {
		return nil, err
	}

	last, err := cfg.Releases.Last(release)
	switch {
	case errors.Is(err, driver.ErrReleaseNotFound):
		last = nil
	case err != nil:
		return nil, fmt.Errorf("look up release %s in namespace %s (kubeconfig %q): %w", release, namespace, kubeconfig, err)
	}

	var rel *helmrelease.Release
	if last == nil || last.Info.Status == helmrelease.StatusUninstalled {
		in := action.NewInstall(cfg)
		in.ReleaseName = release
		in.Namespace = namespace
		in.CreateNamespace = true
		in.Timeout = opts.Timeout
		in.Wait = opts.Wait
		in.Atomic = false
		in.Replace = last != nil // re-use the name of a release uninstalled with --keep-history
		rel, err = in.RunWithContext(ctx, ch, values)
		if err != nil {
			return nil, fmt.Errorf("helm install %s (chart %s %s) in namespace %s: %w", release, ch.Name(), ch.Metadata.Version, namespace, err)
		}
	} else {
		if last.Info.Status.IsPending() {
			return nil, fmt.Errorf("release %s in namespace %s is stuck in state %q (an earlier install/upgrade was interrupted); uninstall it and retry",
				release, namespace, last.Info.Status)
		}
		up := action.NewUpgrade(cfg)
		up.Namespace = namespace
		up.Timeout = opts.Timeout
		up.Wait = opts.Wait
		up.Atomic = false
		up.ResetValues = true // the given values are the whole configuration
		up.MaxHistory = 10
		rel, err = up.RunWithContext(ctx, release, ch, values)
		if err != nil {
			return nil, fmt.Errorf("helm upgrade %s (chart %s %s) in namespace %s: %w", release, ch.Name(), ch.Metadata.Version, namespace, err)
		}
	}
	return summarize(rel), nil
}

// Uninstall removes release from namespace. A release that does not exist
// is not an error.
func Uninstall(ctx context.Context, kubeconfig, release, namespace string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cfg, err := newConfig(kubeconfig, namespace, nil)
	if err != nil {
		return err
	}
	un := action.NewUninstall(cfg)
	un.IgnoreNotFound = true
	un.Timeout = 5 * time.Minute
	if _, err := un.Run(release); err != nil {
		return fmt.Errorf("helm uninstall %s in namespace %s: %w", release, namespace, err)
	}
	return nil
}

// ValuesFromFile reads a Helm values YAML file.
func ValuesFromFile(path string) (map[string]any, error) {
	v, err := chartutil.ReadValuesFile(path)
	if err != nil {
		return nil, fmt.Errorf("read values file %s: %w", path, err)
	}
	return v.AsMap(), nil
}

// ValuesFromBytes parses Helm values YAML (e.g. an embedded fixture).
func ValuesFromBytes(raw []byte) (map[string]any, error) {
	v, err := chartutil.ReadValues(raw)
	if err != nil {
		return nil, fmt.Errorf("read values: %w", err)
	}
	return v.AsMap(), nil
}

func summarize(r *helmrelease.Release) *Release {
	out := &Release{Name: r.Name, Namespace: r.Namespace, Revision: r.Version}
	if r.Chart != nil && r.Chart.Metadata != nil {
		out.Chart = r.Chart.Metadata.Name
		out.ChartVersion = r.Chart.Metadata.Version
		out.AppVersion = r.Chart.Metadata.AppVersion
	}
	return out
}

// newConfig builds a Helm action configuration talking to the cluster of
// the given kubeconfig file, storing releases as Secrets in namespace.
func newConfig(kubeconfig, namespace string, logw io.Writer) (*action.Configuration, error) {
	if logw == nil {
		logw = io.Discard
	}
	logf := func(format string, v ...any) {
		msg := fmt.Sprintf(format, v...)
		if !strings.HasSuffix(msg, "\n") {
			msg += "\n"
		}
		io.WriteString(logw, "helm: "+msg)
	}
	flags := kube.GetConfig(kubeconfig, "", namespace)
	flags.WrapConfigFn = func(c *rest.Config) *rest.Config {
		// API deprecation warnings go to the log, not to stderr.
		c.WarningHandler = rest.NewWarningWriter(logw, rest.WarningWriterOptions{Deduplicate: true})
		return c
	}
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, namespace, "secret", logf); err != nil {
		return nil, fmt.Errorf("helm configuration for kubeconfig %q: %w", kubeconfig, err)
	}
	return cfg, nil
}

// checkEnabledDependencies fails when a dependency that values enable is
// not vendored in the chart. Helm's SDK would silently skip it
// (action.CheckDependencies is only called by the helm CLI); disabled
// missing dependencies are fine and are dropped by Helm itself.
func checkEnabledDependencies(ch *chart.Chart, values map[string]any) error {
	if len(ch.Metadata.Dependencies) == 0 {
		return nil
	}
	// Work on a copy: ProcessDependencies rewrites the chart's metadata.
	md := *ch.Metadata
	md.Dependencies = make([]*chart.Dependency, 0, len(ch.Metadata.Dependencies))
	for _, d := range ch.Metadata.Dependencies {
		if d != nil {
			dc := *d
			md.Dependencies = append(md.Dependencies, &dc)
		}
	}
	probe := &chart.Chart{Metadata: &md, Values: ch.Values}
	// Vendored subcharts are represented by stubs carrying their default
	// values (conditions may refer to them) but not their own dependencies,
	// so the real subcharts are not touched.
	var stubs []*chart.Chart
	for _, sub := range ch.Dependencies() {
		if sub.Metadata == nil {
			continue
		}
		smd := *sub.Metadata
		smd.Dependencies = nil
		stubs = append(stubs, &chart.Chart{Metadata: &smd, Values: sub.Values})
	}
	probe.SetDependencies(stubs...)
	if err := chartutil.ProcessDependenciesWithMerge(probe, values); err != nil {
		return fmt.Errorf("chart %s: dependencies: %w", ch.Name(), err)
	}
	present := map[string]bool{}
	for _, sub := range probe.Dependencies() {
		present[sub.Name()] = true
	}
	var missing []string
	for _, d := range probe.Metadata.Dependencies {
		if d.Enabled && !present[d.Name] {
			what := d.Name + " " + d.Version
			if d.Condition != "" {
				what += " (condition " + d.Condition + ")"
			}
			missing = append(missing, what)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("chart %s %s: enabled dependencies are not in its charts/ directory: %s; disable them in the values or vendor them into the chart",
			ch.Name(), ch.Metadata.Version, strings.Join(missing, ", "))
	}
	return nil
}
