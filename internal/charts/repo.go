package charts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/getter"
	repo "helm.sh/helm/v4/pkg/repo/v1"
)

// ErrRepoUnreachable is wrapped by Load's error when the chart repository
// cannot be reached (DNS, connection, TLS or timeout failure).
var ErrRepoUnreachable = errors.New("chart repository unreachable")

// fetchTimeout bounds each HTTP request to a chart repository.
var fetchTimeout = 60 * time.Second

func loadFromRepo(ctx context.Context, src Source, cacheDir string) (*chart.Chart, error) {
	if strings.HasPrefix(src.Repo, "oci://") {
		return nil, fmt.Errorf("chart repository %s: OCI registries are not supported; use an HTTP(S) chart repository or %s", src.Repo, localHint(src.Name))
	}
	u, err := url.Parse(src.Repo)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("chart repository %q is not an http(s) URL", src.Repo)
	}

	cached := filepath.Join(cacheDir, fmt.Sprintf("%s-%s.tgz", safeName(src.Name), safeName(src.Version)))
	if ch, err := loader.Load(cached); err == nil && checkChart(ch, src, cached) == nil {
		return ch, nil // already downloaded; no network needed
	}

	g, err := getter.NewHTTPGetter(getter.WithURL(src.Repo), getter.WithTimeout(fetchTimeout))
	if err != nil {
		return nil, fmt.Errorf("chart repository %s: %w", src.Repo, err)
	}

	indexURL := strings.TrimSuffix(src.Repo, "/") + "/index.yaml"
	data, err := fetch(ctx, g, indexURL)
	if err != nil {
		return nil, repoError(src, indexURL, err)
	}
	index, err := parseIndex(data, cacheDir)
	if err != nil {
		return nil, fmt.Errorf("chart repository %s: bad index.yaml: %w", src.Repo, err)
	}
	cv, err := findVersion(index, src)
	if err != nil {
		return nil, err
	}
	if len(cv.URLs) == 0 {
		return nil, fmt.Errorf("chart repository %s: %s %s has no download URL", src.Repo, src.Name, cv.Version)
	}
	chartURL, err := repo.ResolveReferenceURL(src.Repo, cv.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("chart repository %s: bad URL %q for %s %s: %w", src.Repo, cv.URLs[0], src.Name, cv.Version, err)
	}
	data, err = fetch(ctx, g, chartURL)
	if err != nil {
		return nil, repoError(src, chartURL, err)
	}
	if cv.Digest != "" {
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, cv.Digest) {
			return nil, fmt.Errorf("chart %s %s from %s: sha256 %s does not match the index digest %s", src.Name, cv.Version, chartURL, got, cv.Digest)
		}
	}
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("chart %s %s from %s: %w", src.Name, cv.Version, chartURL, err)
	}
	if err := checkChart(ch, src, chartURL); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(cached, data); err != nil {
		return nil, fmt.Errorf("cache chart %s: %w", cached, err)
	}
	return ch, nil
}

// fetch runs a getter request, giving up early when ctx is done (the
// getter itself has no context; its own timeout ends the request).
func fetch(ctx context.Context, g getter.Getter, href string) ([]byte, error) {
	type result struct {
		buf *bytes.Buffer
		err error
	}
	ch := make(chan result, 1)
	go func() {
		buf, err := g.Get(href)
		ch <- result{buf, err}
	}()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		return r.buf.Bytes(), nil
	}
}

func repoError(src Source, href string, err error) error {
	var uerr *url.Error
	var nerr net.Error
	if errors.As(err, &uerr) || errors.As(err, &nerr) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: cannot reach chart repository %s to get %s %s (%v); to work offline %s",
			ErrRepoUnreachable, src.Repo, src.Name, src.Version, err, localHint(src.Name))
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("chart repository %s: fetching %s failed: %v; %s", src.Repo, href, err, localHint(src.Name))
}

func localHint(name string) string {
	switch name {
	case "vault":
		return "pass a local vault chart directory or .tgz with --vault-chart PATH (or VAULT_CHART=PATH)"
	case "external-secrets":
		return "pass a local external-secrets chart directory or .tgz with --eso-chart PATH (or ESO_CHART=PATH)"
	}
	return "pass a local chart directory or .tgz instead (--vault-chart PATH / VAULT_CHART, --eso-chart PATH / ESO_CHART)"
}

// parseIndex loads index.yaml bytes with helm's repo package (which only
// reads index files from disk).
func parseIndex(data []byte, dir string) (*repo.IndexFile, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "index-*.yaml")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return repo.LoadIndexFile(f.Name())
}

// findVersion returns the exact pinned version, or an error listing the
// versions nearest to it.
func findVersion(index *repo.IndexFile, src Source) (*repo.ChartVersion, error) {
	versions := index.Entries[src.Name]
	if len(versions) == 0 {
		names := make([]string, 0, len(index.Entries))
		for n := range index.Entries {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) > 10 {
			names = append(names[:10], "...")
		}
		return nil, fmt.Errorf("chart repository %s has no chart named %q (it has: %s)", src.Repo, src.Name, strings.Join(names, ", "))
	}
	for _, cv := range versions {
		if cv != nil && sameVersion(cv.Version, src.Version) {
			return cv, nil
		}
	}
	return nil, fmt.Errorf("chart repository %s has no %s version %s; nearest available: %s",
		src.Repo, src.Name, src.Version, strings.Join(nearestVersions(versions, src.Version, 3), ", "))
}

// nearestVersions returns up to n versions below and n above want (in
// ascending order); when want is not semver, the newest 2n versions.
func nearestVersions(versions repo.ChartVersions, want string, n int) []string {
	type v struct {
		raw string
		sv  *semver.Version
	}
	var all []v
	for _, cv := range versions {
		if cv == nil {
			continue
		}
		if sv, err := semver.NewVersion(cv.Version); err == nil {
			all = append(all, v{cv.Version, sv})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].sv.LessThan(all[j].sv) })
	lo, hi := len(all)-2*n, len(all)
	if target, err := semver.NewVersion(want); err == nil {
		i := sort.Search(len(all), func(i int) bool { return !all[i].sv.LessThan(target) })
		lo, hi = i-n, i+n
	}
	lo, hi = max(lo, 0), min(hi, len(all))
	out := make([]string, 0, hi-lo)
	for _, x := range all[lo:hi] {
		out = append(out, x.raw)
	}
	if len(out) == 0 {
		return []string{"(none)"}
	}
	return out
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_', r == '+':
			return r
		}
		return '_'
	}, s)
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
