package build

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
)

// recipe is how one wrapper module is built (BUILDS.md of the offline lab). The wrapper's
// go line and non-local replaces are those of the upstream module's own go.mod, which for
// the pinned versions gives exactly the proven recipes: vault go 1.21 with the signedxml and
// go-proxyproto replaces, ESO go 1.23.1 with the sprig replace, etcd go 1.24, kubernetes
// go 1.22.0 (plus the staging block below).
type recipe struct {
	build       string   // wrapper, lock and log name
	module      string   // upstream module
	pkgs        []string // main packages, compiled by one go build
	bins        []string // component (= output) names, parallel to pkgs
	tags        string
	upstreamSum bool   // copy upstream go.sum and `go list -mod=mod -deps` (never tidy); else `go mod tidy`
	bare        bool   // versions are written without "v" (vault)
	versionEnv  string // variable that chooses the version
	resolveETA  string // progress texts, from BUILDS.md timings
	compileETA  string
	ldflags     func(modVersion string, now time.Time) string
}

var (
	vaultRecipe = &recipe{
		build: "vault", module: "github.com/hashicorp/vault",
		pkgs: []string{"github.com/hashicorp/vault"}, bins: []string{"vault"},
		tags: "vault", upstreamSum: true, bare: true, versionEnv: "VAULT_VERSION",
		resolveETA: "about 1-2 min", compileETA: "cold: about 7 min; 300 MB binary",
		ldflags: func(_ string, now time.Time) string {
			return "-X github.com/hashicorp/vault/version.BuildDate=" + buildDate(now)
		},
	}
	esoRecipe = &recipe{
		build: "eso", module: "github.com/external-secrets/external-secrets",
		pkgs: []string{"github.com/external-secrets/external-secrets"}, bins: []string{"eso"},
		upstreamSum: true, versionEnv: "ESO_VERSION",
		resolveETA: "about 30 s", compileETA: "cold: about 2.5 min; 130 MB binary",
	}
	etcdRecipe = &recipe{
		build: "etcd", module: "go.etcd.io/etcd/server/v3",
		pkgs: []string{"go.etcd.io/etcd/server/v3"}, bins: []string{"etcd"},
		versionEnv: "ETCD_VERSION",
		resolveETA: "about 15 s", compileETA: "cold: about 1 min; 26 MB binary",
	}
	kubeRecipe = &recipe{
		build: "kubernetes", module: "k8s.io/kubernetes",
		pkgs: []string{"k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager", "k8s.io/kubernetes/cmd/kubectl"},
		bins: []string{"kube-apiserver", "kube-controller-manager", "kubectl"}, // kubectl: the learner's CLI (embedded lab: STATE/bin)
		tags: "selinux,notest", versionEnv: "KUBERNETES_VERSION",
		resolveETA: "about 30 s", compileETA: "cold: about 11 min; 3 binaries, 240 MB",
		ldflags: kubeLdflags,
	}
)

// recipes by component name.
var recipes = map[string]*recipe{
	"vault":                   vaultRecipe,
	"eso":                     esoRecipe,
	"etcd":                    etcdRecipe,
	"kube-apiserver":          kubeRecipe,
	"kube-controller-manager": kubeRecipe,
	"kubectl":                 kubeRecipe,
}

// binEnv names the variable that points a component at a prebuilt binary.
var binEnv = map[string]string{
	"vault":                   "VAULT_BIN",
	"eso":                     "ESO_BIN",
	"etcd":                    "ETCD_BIN",
	"kube-apiserver":          "KUBE_APISERVER_BIN",
	"kube-controller-manager": "KUBE_CONTROLLER_MANAGER_BIN",
	"kubectl":                 "KUBECTL_BIN",
}

// componentOf names the component r builds.
func componentOf(r *recipe) string {
	for c, rr := range recipes {
		if rr == r {
			return c
		}
	}
	return ""
}

func componentNames() []string {
	var n []string
	for c := range recipes {
		n = append(n, c)
	}
	sort.Strings(n)
	return n
}

func buildDate(now time.Time) string { return now.UTC().Format("2006-01-02T15:04:05Z") }

// kubeLdflags follows hack/lib/version.sh, as build-binaries.sh does.
func kubeLdflags(v string, now time.Time) string {
	s, _ := parseSemver(v)
	var ld []string
	for _, p := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		ld = append(ld, fmt.Sprintf("-X %s.gitVersion=%s -X %s.gitMajor=%d -X %s.gitMinor=%d -X %s.buildDate=%s -X %s.gitTreeState=clean",
			p, v, p, s.major, p, s.minor, p, buildDate(now), p))
	}
	return " " + strings.Join(ld, " ")
}

// stagingFallback: staging modules this proxy does not serve (403) or verify (sumdb 404) at
// the derived v0.MINOR.PATCH, by kubernetes version. Facts about this proxy; unknown for
// other versions.
var stagingFallback = map[string]struct {
	version string
	modules []string
}{
	"v1.31.14": {"v0.31.0", []string{
		"cri-client", "csi-translation-lib", "endpointslice", "kube-controller-manager", "kube-proxy", "kube-scheduler", // 403
		"cluster-bootstrap", "dynamic-resource-allocation", "kube-aggregator", "pod-security-admission", // sumdb 404
	}},
}

// upstreamMod is the part of the upstream go.mod a wrapper copies (`go mod edit -json`).
type upstreamMod struct {
	Go      string
	Replace []struct{ Old, New modVer }
}

type modVer struct{ Path, Version string }

func (m modVer) String() string {
	if m.Version == "" {
		return m.Path
	}
	return m.Path + " " + m.Version
}

// wrapper holds the files of a wrapper module.
type wrapper struct {
	goMod, tools string
	dummies      map[string]string // relative dir -> go.mod
}

// makeWrapper writes the wrapper for r at module version v (as build-binaries.sh does).
func makeWrapper(r *recipe, v string, up upstreamMod) (wrapper, error) {
	if up.Go == "" {
		return wrapper{}, fmt.Errorf("%s@%s: go.mod has no go line", r.module, v)
	}
	w := wrapper{dummies: map[string]string{}}
	var b strings.Builder
	fmt.Fprintf(&b, "module secretslab/%s\n\ngo %s\n\nrequire %s %s\n", r.build, up.Go, r.module, v)
	var staging []string
	for _, rp := range up.Replace {
		switch {
		case rp.New.Version != "": // non-local: keep it
			fmt.Fprintf(&b, "\nreplace %s => %s\n", rp.Old, rp.New)
		case r == kubeRecipe && strings.HasPrefix(rp.New.Path, "./staging/"):
			staging = append(staging, rp.Old.Path)
		}
	}
	if r == kubeRecipe {
		lines, dummies, err := stagingReplaces(v, up.Go, staging)
		if err != nil {
			return wrapper{}, err
		}
		fmt.Fprintf(&b, "\n// staging modules: %s where the proxy serves and verifies it, else a known fallback\nreplace (\n", stagingVersion(v))
		for _, l := range lines {
			fmt.Fprintf(&b, "\t%s\n", l)
		}
		b.WriteString(")\n")
		w.dummies = dummies
	}
	w.goMod = b.String()
	var t strings.Builder
	t.WriteString("//go:build tools\n\npackage tools\n\nimport (\n")
	for _, p := range r.pkgs {
		fmt.Fprintf(&t, "\t_ %q\n", p)
	}
	t.WriteString(")\n")
	w.tools = t.String()
	return w, nil
}

// stagingVersion maps v1.MINOR.PATCH to the staging modules' v0.MINOR.PATCH.
func stagingVersion(v string) string { return "v0." + strings.TrimPrefix(v, "v1.") }

// stagingReplaces pins k8s.io/kubernetes's staging modules (those its go.mod points at
// ./staging/src): sample-* (test-only, never released at v0.x) to empty ./dummy modules,
// the known fallbacks to their fallback version, the rest to stagingVersion(v).
func stagingReplaces(v, goLine string, modules []string) (lines []string, dummies map[string]string, err error) {
	if !strings.HasPrefix(v, "v1.") || len(modules) == 0 {
		return nil, nil, fmt.Errorf("k8s.io/kubernetes@%s: no staging modules found in its go.mod", v)
	}
	fb := map[string]string{}
	if f, ok := stagingFallback[v]; ok {
		for _, m := range f.modules {
			fb["k8s.io/"+m] = f.version
		}
	}
	dummies = map[string]string{}
	for _, m := range modules {
		name := path.Base(m)
		switch {
		case strings.HasPrefix(name, "sample-"):
			lines = append(lines, fmt.Sprintf("%s => ./dummy/%s", m, name))
			dummies["dummy/"+name] = fmt.Sprintf("module %s\n\ngo %s\n", m, goLine)
		case fb[m] != "":
			lines = append(lines, fmt.Sprintf("%s => %s %s", m, m, fb[m]))
		default:
			lines = append(lines, fmt.Sprintf("%s => %s %s", m, m, stagingVersion(v)))
		}
	}
	sort.Strings(lines)
	return lines, dummies, nil
}

// stamp identifies a wrapper recipe; a wrapper resolved with the same stamp is reused.
func (w wrapper) stamp() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s", w.goMod, w.tools)
	var ds []string
	for d := range w.dummies {
		ds = append(ds, d)
	}
	sort.Strings(ds)
	for _, d := range ds {
		fmt.Fprintf(h, "\x00%s\x00%s", d, w.dummies[d])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// EnvVar names the variable that points component at a prebuilt binary ("" if unknown).
func EnvVar(component string) string { return binEnv[component] }
