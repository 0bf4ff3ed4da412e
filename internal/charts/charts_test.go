package charts

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	chartcommon "helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/provenance"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"
)

// tinyChart builds a chart with one ConfigMap template and, optionally,
// a dependency "extra" (condition extra.enabled) that is not vendored.
func tinyChart(name, version string, withAbsentDep bool) *chart.Chart {
	ch := &chart.Chart{
		Metadata: &chart.Metadata{
			APIVersion: chart.APIVersionV2,
			Name:       name,
			Version:    version,
			AppVersion: "9.9.9",
			Type:       "application",
		},
		Templates: []*chartcommon.File{{
			Name: "templates/cm.yaml",
			Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\ndata:\n  greeting: {{ .Values.greeting | quote }}\n"),
		}},
		Values: map[string]any{"greeting": "hello", "extra": map[string]any{"enabled": false}},
	}
	ch.Raw = []*chartcommon.File{{Name: "values.yaml", Data: []byte("greeting: hello\nextra:\n  enabled: false\n")}}
	if withAbsentDep {
		ch.Metadata.Dependencies = []*chart.Dependency{{
			Name:       "extra",
			Version:    "v0.3.1",
			Repository: "oci://example.invalid/charts",
			Condition:  "extra.enabled",
		}}
	}
	return ch
}

func saveDir(t *testing.T, ch *chart.Chart) string {
	t.Helper()
	dir := t.TempDir()
	if err := chartutil.SaveDir(ch, dir); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, ch.Name())
}

func saveTgz(t *testing.T, ch *chart.Chart) string {
	t.Helper()
	p, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// render templates ch as `helm template` would, without a cluster.
func render(t *testing.T, ch *chart.Chart, name, ns string, values map[string]any) (string, error) {
	t.Helper()
	in := action.NewInstall(action.NewConfiguration(action.ConfigurationSetLogger(newLogHandler(tWriter{t}))))
	in.ReleaseName = name
	in.Namespace = ns
	in.DryRunStrategy = action.DryRunClient
	in.Replace = true
	kv, err := chartcommon.ParseKubeVersion("v1.31.0")
	if err != nil {
		t.Fatal(err)
	}
	in.KubeVersion = kv
	r, err := in.RunWithContext(context.Background(), ch, values)
	if err != nil {
		return "", err
	}
	rel, err := asRelease(r)
	if err != nil {
		return "", err
	}
	return rel.Manifest, nil
}

// tWriter sends Helm's log to the test log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

func objects(t *testing.T, manifest string) []object {
	t.Helper()
	var out []object
	for _, doc := range releaseutil.SplitManifests(manifest) {
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("bad manifest document: %v\n%s", err, doc)
		}
		if o.Kind != "" {
			out = append(out, o)
		}
	}
	return out
}

func hasObject(objs []object, kind, name string) bool {
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return true
		}
	}
	return false
}

func TestLoadLocalDirAndTgz(t *testing.T) {
	ch := tinyChart("tiny", "1.2.3", false)
	for what, p := range map[string]string{"dir": saveDir(t, ch), "tgz": saveTgz(t, ch)} {
		t.Run(what, func(t *testing.T) {
			got, err := Load(context.Background(), Source{Path: p, Name: "tiny", Version: "1.2.3", Repo: "http://unused.invalid"}, "")
			if err != nil {
				t.Fatal(err)
			}
			if got.Name() != "tiny" || got.Metadata.Version != "1.2.3" || len(got.Templates) != 1 {
				t.Fatalf("loaded %s %s with %d templates", got.Name(), got.Metadata.Version, len(got.Templates))
			}
			// Version unset: not checked.
			if _, err := Load(context.Background(), Source{Path: p}, ""); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLoadLocalVersionMismatch(t *testing.T) {
	p := saveTgz(t, tinyChart("tiny", "1.2.3", false))
	_, err := Load(context.Background(), Source{Path: p, Version: "1.2.4"}, "")
	if err == nil {
		t.Fatal("no error for version mismatch")
	}
	for _, want := range []string{"1.2.3", "1.2.4", p} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := Load(context.Background(), Source{Path: p, Version: "v1.2.3"}, ""); err != nil {
		t.Errorf("leading v should be tolerated: %v", err)
	}
	if _, err := Load(context.Background(), Source{Path: filepath.Join(t.TempDir(), "nope")}, ""); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing path: %v", err)
	}
}

func TestDisabledAbsentDependencyTolerated(t *testing.T) {
	p := saveDir(t, tinyChart("tiny", "1.2.3", true))
	ch, err := Load(context.Background(), Source{Path: p, Version: "1.2.3"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Metadata.Dependencies) != 1 || len(ch.Dependencies()) != 0 {
		t.Fatalf("want 1 declared, 0 vendored dependency; got %d, %d", len(ch.Metadata.Dependencies), len(ch.Dependencies()))
	}

	// Disabled by default: our check and helm's own processing accept it.
	if err := checkEnabledDependencies(ch, nil); err != nil {
		t.Fatalf("disabled absent dependency rejected: %v", err)
	}
	if len(ch.Metadata.Dependencies) != 1 {
		t.Fatal("checkEnabledDependencies modified the chart")
	}
	manifest, err := render(t, ch, "r1", "ns1", map[string]any{"greeting": "hi"})
	if err != nil {
		t.Fatalf("helm install (dry run) with a disabled absent dependency: %v", err)
	}
	if !hasObject(objects(t, manifest), "ConfigMap", "r1-cm") || !strings.Contains(manifest, `"hi"`) {
		t.Fatalf("unexpected manifest:\n%s", manifest)
	}

	// Enabled through the values: helm's SDK would silently skip it; we refuse.
	ch, _ = Load(context.Background(), Source{Path: p}, "")
	err = checkEnabledDependencies(ch, map[string]any{"extra": map[string]any{"enabled": true}})
	if err == nil || !strings.Contains(err.Error(), "extra") || !strings.Contains(err.Error(), "extra.enabled") {
		t.Fatalf("enabled absent dependency: %v", err)
	}
	_, err = Install(context.Background(), filepath.Join(t.TempDir(), "no-kubeconfig"), ch, "r1", "ns1",
		map[string]any{"extra": map[string]any{"enabled": true}}, InstallOptions{})
	if err == nil || !strings.Contains(err.Error(), "not in its charts/ directory") {
		t.Fatalf("Install with enabled absent dependency: %v", err)
	}

	// Enabled and vendored: fine.
	ch, _ = Load(context.Background(), Source{Path: p}, "")
	sub := tinyChart("extra", "v0.3.1", false)
	ch.AddDependency(sub)
	if err := checkEnabledDependencies(ch, map[string]any{"extra": map[string]any{"enabled": true}}); err != nil {
		t.Fatalf("enabled vendored dependency: %v", err)
	}
}

func TestValuesFromFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "v.yaml")
	if err := os.WriteFile(p, []byte("server:\n  dev:\n    enabled: true\ninjector:\n  enabled: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := ValuesFromFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if v["injector"].(map[string]any)["enabled"] != false {
		t.Fatalf("got %v", v)
	}
	if _, err := ValuesFromFile(p + ".missing"); err == nil {
		t.Fatal("no error for a missing file")
	}
}

// chartRepo serves index.yaml plus one .tgz per chart version.
func chartRepo(t *testing.T, name string, versions ...string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	dir := t.TempDir()
	index := repo.NewIndexFile()
	for _, v := range versions {
		p, err := chartutil.Save(tinyChart(name, v, false), dir)
		if err != nil {
			t.Fatal(err)
		}
		digest, err := provenance.DigestFile(p)
		if err != nil {
			t.Fatal(err)
		}
		md := tinyChart(name, v, false).Metadata
		if err := index.MustAdd(md, filepath.Base(p), "", digest); err != nil {
			t.Fatal(err)
		}
	}
	index.SortEntries()
	if err := index.WriteFile(filepath.Join(dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestLoadFromRepo(t *testing.T) {
	srv, hits := chartRepo(t, "vault", "0.27.0", "0.28.0", "0.28.1", "0.29.0")
	cache := t.TempDir()
	src := Source{Repo: srv.URL + "/", Name: "vault", Version: "0.28.1"}

	ch, err := Load(context.Background(), src, cache)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Name() != "vault" || ch.Metadata.Version != "0.28.1" {
		t.Fatalf("got %s %s", ch.Name(), ch.Metadata.Version)
	}
	if _, err := os.Stat(filepath.Join(cache, "vault-0.28.1.tgz")); err != nil {
		t.Fatalf("chart not cached: %v", err)
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("want 2 requests (index + tgz), got %d", n)
	}

	// Cached: served without the repository.
	srv.Close()
	ch, err = Load(context.Background(), src, cache)
	if err != nil {
		t.Fatalf("load from cache with the repo down: %v", err)
	}
	if ch.Metadata.Version != "0.28.1" {
		t.Fatalf("cached version %s", ch.Metadata.Version)
	}
}

func TestLoadFromRepoUnknownVersion(t *testing.T) {
	srv, _ := chartRepo(t, "external-secrets", "0.8.0", "0.9.0", "0.10.2", "0.10.3", "0.10.5", "0.11.0", "0.12.0", "0.13.0", "1.0.0")
	_, err := Load(context.Background(), Source{Repo: srv.URL, Name: "external-secrets", Version: "0.10.4"}, t.TempDir())
	if err == nil {
		t.Fatal("no error for an unknown version")
	}
	msg := err.Error()
	for _, want := range []string{"0.10.4", "nearest available: 0.9.0, 0.10.2, 0.10.3, 0.10.5, 0.11.0, 0.12.0"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "1.0.0") || strings.Contains(msg, "0.13.0") || strings.Contains(msg, "0.8.0") {
		t.Errorf("error lists far versions: %q", msg)
	}

	_, err = Load(context.Background(), Source{Repo: srv.URL, Name: "nope", Version: "1.0.0"}, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `no chart named "nope"`) || !strings.Contains(err.Error(), "external-secrets") {
		t.Errorf("unknown chart: %v", err)
	}
}

func TestLoadFromRepoDown(t *testing.T) {
	srv, _ := chartRepo(t, "vault", "0.28.1")
	url := srv.URL
	srv.Close()
	for name, flag := range map[string]string{"vault": "--vault-chart PATH", "external-secrets": "--eso-chart PATH"} {
		_, err := Load(context.Background(), Source{Repo: url, Name: name, Version: "0.28.1"}, t.TempDir())
		if !errors.Is(err, ErrRepoUnreachable) {
			t.Fatalf("want ErrRepoUnreachable, got %v", err)
		}
		for _, want := range []string{"cannot reach chart repository " + url, flag} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
	}

	// A repo answering 404 is reported differently, still with the hint.
	srv404 := httptest.NewServer(http.NotFoundHandler())
	defer srv404.Close()
	_, err := Load(context.Background(), Source{Repo: srv404.URL, Name: "vault", Version: "0.28.1"}, t.TempDir())
	if err == nil || errors.Is(err, ErrRepoUnreachable) || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "--vault-chart") {
		t.Errorf("404 repo: %v", err)
	}
}

func TestLoadFromRepoBadDigest(t *testing.T) {
	dir := t.TempDir()
	ch := tinyChart("vault", "0.28.1", false)
	p, err := chartutil.Save(ch, dir)
	if err != nil {
		t.Fatal(err)
	}
	index := repo.NewIndexFile()
	if err := index.MustAdd(ch.Metadata, filepath.Base(p), "", strings.Repeat("0", 64)); err != nil {
		t.Fatal(err)
	}
	if err := index.WriteFile(filepath.Join(dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	cache := t.TempDir()
	_, err = Load(context.Background(), Source{Repo: srv.URL, Name: "vault", Version: "0.28.1"}, cache)
	if err == nil || !strings.Contains(err.Error(), "does not match the index digest") {
		t.Fatalf("digest mismatch: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cache, "vault-0.28.1.tgz")); !os.IsNotExist(err) {
		t.Fatalf("bad archive was cached: %v", err)
	}
}

func TestLoadContextCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Load(ctx, Source{Repo: "http://127.0.0.1:1", Name: "vault", Version: "1"}, t.TempDir()); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestNearestVersions(t *testing.T) {
	var cvs repo.ChartVersions
	for _, v := range []string{"0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0"} {
		cvs = append(cvs, &repo.ChartVersion{Metadata: &chart.Metadata{Version: v}})
	}
	cases := map[string]string{
		"0.0.1":  "0.1.0, 0.2.0, 0.3.0",
		"0.4.5":  "0.2.0, 0.3.0, 0.4.0, 0.5.0, 0.6.0, 0.7.0",
		"9.0.0":  "0.6.0, 0.7.0, 0.8.0",
		"latest": "0.3.0, 0.4.0, 0.5.0, 0.6.0, 0.7.0, 0.8.0",
	}
	for want, exp := range cases {
		if got := strings.Join(nearestVersions(cvs, want, 3), ", "); got != exp {
			t.Errorf("nearest(%s) = %s, want %s", want, got, exp)
		}
	}
}

// --- real charts (outside the repository) ---

func TestRealVaultChart(t *testing.T) {
	p := os.Getenv("VAULT_CHART")
	if p == "" {
		t.Skip("VAULT_CHART not set: real chart not tested")
	}
	ch, err := Load(context.Background(), Source{Path: p, Name: "vault", Version: "0.28.1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{
		"server":   map[string]any{"dev": map[string]any{"enabled": true}},
		"injector": map[string]any{"enabled": false},
	}
	if err := checkEnabledDependencies(ch, values); err != nil {
		t.Fatal(err)
	}
	manifest, err := render(t, ch, "vault", "vault", values)
	if err != nil {
		t.Fatal(err)
	}
	objs := objects(t, manifest)
	if !hasObject(objs, "StatefulSet", "vault") {
		t.Fatalf("no StatefulSet vault in %v", objs)
	}
	if hasObject(objs, "Deployment", "vault-agent-injector") {
		t.Error("injector rendered although disabled")
	}
	if !strings.Contains(manifest, "-dev") {
		t.Error("server not in dev mode")
	}
	t.Logf("vault %s (app %s): %d objects", ch.Metadata.Version, ch.Metadata.AppVersion, len(objs))
}

func TestRealESOChart(t *testing.T) {
	p := os.Getenv("ESO_CHART")
	if p == "" {
		t.Skip("ESO_CHART not set: real chart not tested")
	}
	ch, err := Load(context.Background(), Source{Path: p, Name: "external-secrets", Version: "0.10.4"}, "")
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{"installCRDs": false}
	if err := checkEnabledDependencies(ch, values); err != nil {
		t.Fatalf("bitwarden-sdk-server is disabled by default and must be tolerated: %v", err)
	}
	manifest, err := render(t, ch, "external-secrets", "external-secrets", values)
	if err != nil {
		t.Fatal(err)
	}
	objs := objects(t, manifest)
	for _, name := range []string{"external-secrets", "external-secrets-webhook", "external-secrets-cert-controller"} {
		if !hasObject(objs, "Deployment", name) {
			t.Errorf("no Deployment %s in %v", name, objs)
		}
	}
	for _, o := range objs {
		if o.Kind == "CustomResourceDefinition" {
			t.Errorf("CRD %s rendered with installCRDs=false", o.Metadata.Name)
		}
	}
	if strings.Contains(manifest, "bitwarden") {
		t.Error("bitwarden-sdk-server rendered although disabled")
	}

	// With the chart's default installCRDs=true, a chart taken from git
	// renders no CRDs (its templates/crds/ holds only a README; the CRD
	// templates are generated from deploy/crds/bundle.yaml when packaging),
	// while a packaged chart from the repository renders them.
	manifest, err = render(t, ch, "external-secrets", "external-secrets", nil)
	if err != nil {
		t.Fatal(err)
	}
	crds := 0
	for _, o := range objects(t, manifest) {
		if o.Kind == "CustomResourceDefinition" {
			crds++
		}
	}
	t.Logf("installCRDs=true (default) renders %d CRDs from %s", crds, p)

	// Enabling the absent bitwarden dependency must fail clearly.
	ch, _ = Load(context.Background(), Source{Path: p}, "")
	err = checkEnabledDependencies(ch, map[string]any{"bitwarden-sdk-server": map[string]any{"enabled": true}})
	if err == nil || !strings.Contains(err.Error(), "bitwarden-sdk-server") {
		t.Errorf("enabled bitwarden-sdk-server: %v", err)
	}
	t.Logf("external-secrets %s (app %s): %d objects", ch.Metadata.Version, ch.Metadata.AppVersion, len(objs))
}
