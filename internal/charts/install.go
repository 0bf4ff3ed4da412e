package charts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"helm.sh/helm/v4/pkg/action"
	chartcommon "helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/kube"
	helmreleasei "helm.sh/helm/v4/pkg/release"
	releasecommon "helm.sh/helm/v4/pkg/release/common"
	helmrelease "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	"k8s.io/cli-runtime/pkg/genericclioptions"
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
// values of an earlier revision. RollbackOnFailure is off: a failed release
// stays for inspection.
//
// With Wait, Helm v4 waits with its kstatus-based watcher (the CLI's default
// --wait=watcher): every resource of the release must reach kstatus Current
// (Deployments rolled out, StatefulSets' pods ready, and so on); the wait
// ends early when ctx is done. Without Wait only hooks are waited for.
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

	var last *helmrelease.Release
	switch r, err := cfg.Releases.Last(release); {
	case errors.Is(err, driver.ErrReleaseNotFound):
	case err != nil:
		return nil, fmt.Errorf("look up release %s in namespace %s (kubeconfig %q): %w", release, namespace, kubeconfig, err)
	default:
		if last, err = asRelease(r); err != nil {
			return nil, fmt.Errorf("look up release %s in namespace %s: %w", release, namespace, err)
		}
	}

	wait, waitOpts := waitStrategy(ctx, opts.Wait)
	var r helmreleasei.Releaser
	if last == nil || last.Info.Status == releasecommon.StatusUninstalled {
		in := action.NewInstall(cfg)
		in.ReleaseName = release
		in.Namespace = namespace
		in.CreateNamespace = true
		in.Timeout = opts.Timeout
		in.WaitStrategy, in.WaitOptions = wait, waitOpts
		in.RollbackOnFailure = false
		in.Replace = last != nil // re-use the name of a release uninstalled with --keep-history
		r, err = in.RunWithContext(ctx, ch, values)
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
		up.WaitStrategy, up.WaitOptions = wait, waitOpts
		up.RollbackOnFailure = false
		up.ResetValues = true // the given values are the whole configuration
		up.MaxHistory = 10
		r, err = up.RunWithContext(ctx, release, ch, values)
		if err != nil {
			return nil, fmt.Errorf("helm upgrade %s (chart %s %s) in namespace %s: %w", release, ch.Name(), ch.Metadata.Version, namespace, err)
		}
	}
	rel, err := asRelease(r)
	if err != nil {
		return nil, fmt.Errorf("helm release %s in namespace %s: %w", release, namespace, err)
	}
	return summarize(rel), nil
}

// waitStrategy maps InstallOptions.Wait to Helm v4's wait strategy: the
// kstatus watcher, or hooks only. Helm v4 has no "no strategy": an empty one
// is an error.
func waitStrategy(ctx context.Context, wait bool) (kube.WaitStrategy, []kube.WaitOption) {
	opts := []kube.WaitOption{kube.WithWaitContext(ctx)}
	if wait {
		return kube.StatusWatcherStrategy, opts
	}
	return kube.HookOnlyStrategy, opts
}

// asRelease returns the Helm v1 release (the only kind that charts of
// apiVersion v1/v2 produce) behind Helm v4's untyped Releaser.
func asRelease(r helmreleasei.Releaser) (*helmrelease.Release, error) {
	switch rel := r.(type) {
	case *helmrelease.Release:
		if rel != nil {
			return rel, nil
		}
	case helmrelease.Release:
		return &rel, nil
	}
	return nil, fmt.Errorf("unexpected Helm release type %T", r)
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
	un.WaitStrategy, un.WaitOptions = waitStrategy(ctx, false)
	if _, err := un.Run(release); err != nil {
		return fmt.Errorf("helm uninstall %s in namespace %s: %w", release, namespace, err)
	}
	return nil
}

// ValuesFromFile reads a Helm values YAML file.
func ValuesFromFile(path string) (map[string]any, error) {
	v, err := chartcommon.ReadValuesFile(path)
	if err != nil {
		return nil, fmt.Errorf("read values file %s: %w", path, err)
	}
	return v.AsMap(), nil
}

// ValuesFromBytes parses Helm values YAML (e.g. an embedded fixture).
func ValuesFromBytes(raw []byte) (map[string]any, error) {
	v, err := chartcommon.ReadValues(raw)
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
// Helm's log (slog, debug level and up) goes to logw, one "helm: " line per
// record; nil discards it.
func newConfig(kubeconfig, namespace string, logw io.Writer) (*action.Configuration, error) {
	if logw == nil {
		logw = io.Discard
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &kubeconfig
	flags.Namespace = &namespace
	flags.WrapConfigFn = func(c *rest.Config) *rest.Config {
		// API deprecation warnings go to the log, not to stderr.
		c.WarningHandler = rest.NewWarningWriter(logw, rest.WarningWriterOptions{Deduplicate: true})
		return c
	}
	// The logger must be set before Init: Init hands it to the kube client
	// and the storage driver.
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(newLogHandler(logw)))
	if err := cfg.Init(flags, namespace, "secret"); err != nil {
		return nil, fmt.Errorf("helm configuration for kubeconfig %q: %w", kubeconfig, err)
	}
	return cfg, nil
}

// newLogHandler writes Helm's slog records to w as "helm: level=... msg=..."
// lines, without timestamps.
func newLogHandler(w io.Writer) slog.Handler {
	if w == io.Discard {
		return slog.DiscardHandler
	}
	return slog.NewTextHandler(&linePrefixer{w: w, prefix: []byte("helm: ")}, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
}

// linePrefixer prefixes every write (slog's handlers write one record per
// call) with prefix; it is safe for concurrent use.
type linePrefixer struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
}

func (p *linePrefixer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.w.Write(append(bytes.Clone(p.prefix), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
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
	if err := chartutil.ProcessDependencies(probe, values); err != nil {
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
