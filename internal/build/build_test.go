package build

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a fake `go` (GoBin = os.Args[0]) when FAKE_GO_MODE is set.
// It appends each command line to FAKE_GO_CALLS and acts by mode:
//
//	fail     every command fails
//	proxy    go mod download succeeds only for the versions in FAKE_GO_OK, else 403
//	offline  go mod download fails with a DNS error
//	tidyfail like proxy, but go mod tidy fails on a sumdb 404
func TestMain(m *testing.M) {
	if mode := os.Getenv("FAKE_GO_MODE"); mode != "" {
		os.Exit(fakeGo(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func fakeGo(mode string, args []string) int {
	if f, err := os.OpenFile(os.Getenv("FAKE_GO_CALLS"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
		fmt.Fprintln(f, strings.Join(args, " "))
		f.Close()
	}
	if mode == "fail" {
		fmt.Fprintln(os.Stderr, "fake go: must not be called")
		return 2
	}
	cmd := strings.Join(args[:min(2, len(args))], " ")
	last := args[len(args)-1]
	modDir := os.Getenv("FAKE_GO_MODDIR")
	switch cmd {
	case "env GOPROXY":
		fmt.Println("https://proxy.example,direct")
	case "mod download":
		m, v, _ := strings.Cut(last, "@")
		if mode == "offline" {
			fmt.Printf(`{"Path":%q,"Version":%q,"Error":%q}`+"\n", m, v,
				last+`: Get "https://proxy.example/x/@v/`+v+`.info": dial tcp: lookup proxy.example on 10.0.0.53:53: no such host`)
			return 1
		}
		for _, ok := range strings.Split(os.Getenv("FAKE_GO_OK"), ",") {
			if ok == v {
				fmt.Printf(`{"Path":%q,"Version":%q,"Dir":%q,"GoMod":%q}`+"\n", m, v, modDir, filepath.Join(modDir, "go.mod"))
				return 0
			}
		}
		fmt.Printf(`{"Path":%q,"Version":%q,"Error":%q}`+"\n", m, v,
			last+": reading https://proxy.example/"+m+"/@v/"+v+".info: 403 Forbidden\n\tserver response: This module version is not available.")
		return 1
	case "list -m":
		fmt.Printf(`{"Path":%q,"Versions":[%s]}`+"\n", last, os.Getenv("FAKE_GO_VERSIONS"))
	case "mod edit":
		b, _ := os.ReadFile(filepath.Join(modDir, "edit.json"))
		os.Stdout.Write(b)
	case "mod tidy":
		if mode == "tidyfail" {
			fmt.Fprintln(os.Stderr, "go: finding module for package k8s.io/foo/bar")
			fmt.Fprintln(os.Stderr, "go: secretslab/x imports\n\tk8s.io/foo/bar: k8s.io/foo@v0.1.2: verifying go.mod: k8s.io/foo@v0.1.2/go.mod: reading https://proxy.example/sumdb/sum.golang.org/lookup/k8s.io/foo@v0.1.2: 404 Not Found")
			return 1
		}
		os.WriteFile("go.sum", nil, 0o644)
	case "list -mod=mod":
	case "build -trimpath":
		var out string
		var pkgs []string
		for i := 0; i < len(args); i++ {
			switch {
			case args[i] == "-o":
				out = args[i+1]
				i++
			case args[i] == "-tags" || args[i] == "-ldflags":
				i++
			case !strings.HasPrefix(args[i], "-") && i > 0:
				pkgs = append(pkgs, args[i])
			}
		}
		if strings.HasSuffix(out, "/") {
			for _, p := range pkgs {
				os.WriteFile(filepath.Join(out, filepath.Base(p)), []byte("#!/bin/sh\n"), 0o755)
			}
		} else {
			os.WriteFile(out, []byte("#!/bin/sh\n"), 0o755)
		}
	default:
		fmt.Fprintf(os.Stderr, "fake go: unexpected %q\n", args)
		return 2
	}
	return 0
}

// fake returns a Builder whose go is the fake in mode, and the file listing its calls.
func fake(t *testing.T, mode string) (*Builder, string, *bytes.Buffer) {
	t.Helper()
	for _, e := range binEnv {
		t.Setenv(e, "")
	}
	calls := filepath.Join(t.TempDir(), "calls")
	t.Setenv("FAKE_GO_MODE", mode)
	t.Setenv("FAKE_GO_CALLS", calls)
	var progress bytes.Buffer
	return &Builder{CacheDir: t.TempDir(), GoBin: os.Args[0], Progress: &syncWriter{w: &progress}}, calls, &progress
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func readCalls(t *testing.T, calls string) string {
	b, err := os.ReadFile(calls)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// fakeModule writes an upstream module dir with go.mod, go.sum and the `go mod edit -json` answer.
func fakeModule(t *testing.T, up upstreamMod) {
	dir := t.TempDir()
	b, _ := json.Marshal(up)
	for f, c := range map[string]string{"go.mod": "module x\n", "go.sum": "x v1 h1:abc\n", "edit.json": string(b)} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("FAKE_GO_MODDIR", dir)
}

func writeExec(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestEnvOverride(t *testing.T) {
	b, calls, _ := fake(t, "fail")
	exe := filepath.Join(t.TempDir(), "my-etcd")
	writeExec(t, exe)
	t.Setenv("ETCD_BIN", exe)
	p, err := b.Ensure(context.Background(), "etcd", "v3.5.24")
	if err != nil || p != exe {
		t.Fatalf("Ensure = %q, %v; want %q", p, err, exe)
	}

	plain := filepath.Join(t.TempDir(), "not-executable")
	os.WriteFile(plain, []byte("x"), 0o644)
	for _, bad := range []string{plain, filepath.Join(t.TempDir(), "missing"), t.TempDir()} {
		t.Setenv("KUBE_APISERVER_BIN", bad)
		_, err := b.Ensure(context.Background(), "kube-apiserver", "v1.31.14")
		if err == nil || !strings.Contains(err.Error(), "KUBE_APISERVER_BIN="+bad) {
			t.Errorf("KUBE_APISERVER_BIN=%s: want an error naming the variable, got %v", bad, err)
		}
	}
	if c := readCalls(t, calls); c != "" {
		t.Fatalf("go was run: %s", c)
	}
}

func TestCacheHitDoesNotRunGo(t *testing.T) {
	b, calls, _ := fake(t, "fail")
	for _, c := range []struct{ component, version, file string }{
		{"etcd", "v3.5.24", "etcd-v3.5.24"},
		{"vault", "1.17.2", "vault-1.17.2"},
		{"vault", "v1.17.2", "vault-1.17.2"}, // the module tag form maps to the same file
		{"eso", "0.10.4", "eso-v0.10.4"},
		{"kube-controller-manager", "v1.31.14", "kube-controller-manager-v1.31.14"},
		{"kubectl", "v1.31.14", "kubectl-v1.31.14"},
	} {
		want := filepath.Join(b.CacheDir, "bin", c.file)
		writeExec(t, want)
		p, err := b.Ensure(context.Background(), c.component, c.version)
		if err != nil || p != want {
			t.Errorf("Ensure(%s, %s) = %q, %v; want %q", c.component, c.version, p, err, want)
		}
	}
	if c := readCalls(t, calls); c != "" {
		t.Fatalf("go was run on a cache hit: %s", c)
	}
}

func TestBadInput(t *testing.T) {
	b, _, _ := fake(t, "fail")
	_, err := b.Ensure(context.Background(), "consul", "1.0.0")
	if err == nil || !strings.Contains(err.Error(), `unknown component "consul"`) || !strings.Contains(err.Error(), "kube-apiserver") {
		t.Errorf("unknown component: got %v", err)
	}
	_, err = b.Ensure(context.Background(), "etcd", "3.5")
	if err == nil || !strings.Contains(err.Error(), `version "3.5" is malformed`) {
		t.Errorf("malformed version: got %v", err)
	}
}

func TestWaitsForTheLockThenUsesTheOtherBuild(t *testing.T) {
	b, calls, progress := fake(t, "fail")
	lockPath := filepath.Join(b.CacheDir, "locks", "kubernetes-v1.31.14.lock")
	os.MkdirAll(filepath.Dir(lockPath), 0o755)
	f, err := os.Create(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil { // another file description: blocks Ensure
		t.Fatal(err)
	}
	type result struct {
		p   string
		err error
	}
	done := make(chan result)
	go func() {
		p, err := b.Ensure(context.Background(), "kube-apiserver", "v1.31.14")
		done <- result{p, err}
	}()
	time.Sleep(700 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("Ensure did not wait for the lock: %+v", r)
	default:
	}
	want := filepath.Join(b.CacheDir, "bin", "kube-apiserver-v1.31.14")
	writeExec(t, want) // "the other build" finishes
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	r := <-done
	if r.err != nil || r.p != want {
		t.Fatalf("Ensure = %+v; want %s", r, want)
	}
	if !strings.Contains(progress.String(), "waiting for another build") {
		t.Errorf("no waiting line in progress: %q", progress.String())
	}
	if c := readCalls(t, calls); c != "" {
		t.Fatalf("go was run: %s", c)
	}
}

func TestBuildsTheKubeBinariesWithOneGoBuild(t *testing.T) {
	b, calls, progress := fake(t, "proxy")
	t.Setenv("FAKE_GO_OK", "v1.31.14")
	up := upstreamMod{Go: "1.22.0"}
	for _, m := range []string{"api", "kube-aggregator", "sample-controller"} {
		up.Replace = append(up.Replace, struct{ Old, New modVer }{modVer{Path: "k8s.io/" + m}, modVer{Path: "./staging/src/k8s.io/" + m}})
	}
	fakeModule(t, up)

	p, err := b.Ensure(context.Background(), "kube-controller-manager", "v1.31.14")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(b.CacheDir, "bin", "kube-controller-manager-v1.31.14"); p != want {
		t.Fatalf("path %s, want %s", p, want)
	}
	before := readCalls(t, calls)
	for _, c := range []string{"kube-apiserver", "kubectl"} {
		p2, err := b.Ensure(context.Background(), c, "v1.31.14")
		if err != nil || p2 != filepath.Join(b.CacheDir, "bin", c+"-v1.31.14") {
			t.Fatalf("%s: %q, %v", c, p2, err)
		}
	}
	if after := readCalls(t, calls); after != before {
		t.Fatalf("the second component was built again: %s", strings.TrimPrefix(after, before))
	}
	if n := strings.Count(before, "\nbuild "); n != 1 {
		t.Fatalf("want one go build, got %d:\n%s", n, before)
	}
	for _, want := range []string{
		"mod tidy",
		"build -trimpath -tags selinux,notest -ldflags -s -w  -X k8s.io/component-base/version.gitVersion=v1.31.14 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=31",
		"-X k8s.io/client-go/pkg/version.gitTreeState=clean -o " + filepath.Join(b.CacheDir, "bin") + "/.build-kubernetes-v1.31.14-",
		"/ k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl\n",
	} {
		if !strings.Contains(before, want) {
			t.Errorf("calls lack %q:\n%s", want, before)
		}
	}
	gomod, _ := os.ReadFile(filepath.Join(b.CacheDir, "src", "kubernetes-v1.31.14", "go.mod"))
	for _, want := range []string{"go 1.22.0\n", "require k8s.io/kubernetes v1.31.14\n", "k8s.io/api => k8s.io/api v0.31.14",
		"k8s.io/kube-aggregator => k8s.io/kube-aggregator v0.31.0", "k8s.io/sample-controller => ./dummy/sample-controller"} {
		if !strings.Contains(string(gomod), want) {
			t.Errorf("wrapper go.mod lacks %q:\n%s", want, gomod)
		}
	}
	if _, err := os.Stat(filepath.Join(b.CacheDir, "src", "kubernetes-v1.31.14", "dummy", "sample-controller", "go.mod")); err != nil {
		t.Error(err)
	}
	pr := progress.String()
	for _, want := range []string{
		"build: kube-controller-manager v1.31.14: resolving modules (first build only;",
		"build: kube-controller-manager v1.31.14: compiling (cold: about 11 min;",
		"build: kube-controller-manager v1.31.14: ready at " + p + " (took ",
	} {
		if !strings.Contains(pr, want) {
			t.Errorf("progress lacks %q:\n%s", want, pr)
		}
	}
	if entries, _ := filepath.Glob(filepath.Join(b.CacheDir, "bin", ".build-*")); len(entries) != 0 {
		t.Errorf("temporary build dirs left: %v", entries)
	}

	// a lost binary is rebuilt without resolving again
	os.Remove(p)
	if _, err := b.Ensure(context.Background(), "kube-controller-manager", "v1.31.14"); err != nil {
		t.Fatal(err)
	}
	again := strings.TrimPrefix(readCalls(t, calls), before)
	if strings.Contains(again, "mod tidy") || !strings.Contains(again, "build -trimpath") {
		t.Errorf("rebuild: want go build without tidy, got:\n%s", again)
	}
	// only the lost binary is compiled: the cached ones are not relinked
	if !strings.HasSuffix(again, "/ k8s.io/kubernetes/cmd/kube-controller-manager\n") {
		t.Errorf("rebuild of kube-controller-manager: want a go build of it alone, got:\n%s", again)
	}

	// a recipe that gained a binary (kubectl, next to cached kube-apiserver and
	// kube-controller-manager) resolves again and compiles only the new one
	os.Remove(filepath.Join(b.CacheDir, "bin", "kubectl-v1.31.14"))
	os.WriteFile(filepath.Join(b.CacheDir, "src", "kubernetes-v1.31.14", ".recipe"), []byte("an older recipe\n"), 0o644)
	before = readCalls(t, calls)
	if p, err := b.Ensure(context.Background(), "kubectl", "v1.31.14"); err != nil || filepath.Base(p) != "kubectl-v1.31.14" {
		t.Fatalf("kubectl: %q, %v", p, err)
	}
	again = strings.TrimPrefix(readCalls(t, calls), before)
	if !strings.Contains(again, "mod tidy") || !strings.HasSuffix(again, "/ k8s.io/kubernetes/cmd/kubectl\n") {
		t.Errorf("kubectl added: want tidy and a go build of kubectl alone, got:\n%s", again)
	}
	for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kubectl"} {
		if !isExecutable(filepath.Join(b.CacheDir, "bin", c+"-v1.31.14")) {
			t.Errorf("%s is not in the cache", c)
		}
	}
}

func TestVaultRecipe(t *testing.T) {
	b, calls, _ := fake(t, "proxy")
	t.Setenv("FAKE_GO_OK", "v1.17.2")
	fakeModule(t, upstreamMod{Go: "1.21", Replace: []struct{ Old, New modVer }{
		{modVer{Path: "github.com/hashicorp/vault/api"}, modVer{Path: "./api"}},
		{modVer{"github.com/ma314smith/signedxml", "v1.1.1"}, modVer{"github.com/moov-io/signedxml", "v1.1.1"}},
		{modVer{"github.com/pires/go-proxyproto", "v1.0.0"}, modVer{"github.com/peteski22/go-proxyproto", "v1.0.0"}},
	}})
	p, err := b.Ensure(context.Background(), "vault", "1.17.2")
	if err != nil || filepath.Base(p) != "vault-1.17.2" {
		t.Fatalf("Ensure = %q, %v", p, err)
	}
	c := readCalls(t, calls)
	if strings.Contains(c, "mod tidy") || !strings.Contains(c, "list -mod=mod -tags vault -deps github.com/hashicorp/vault\n") ||
		!strings.Contains(c, "build -trimpath -tags vault -ldflags -s -w -X github.com/hashicorp/vault/version.BuildDate=") {
		t.Errorf("not the vault recipe:\n%s", c)
	}
	src := filepath.Join(b.CacheDir, "src", "vault-1.17.2")
	gomod, _ := os.ReadFile(filepath.Join(src, "go.mod"))
	want := `module secretslab/vault

go 1.21

require github.com/hashicorp/vault v1.17.2

replace github.com/ma314smith/signedxml v1.1.1 => github.com/moov-io/signedxml v1.1.1

replace github.com/pires/go-proxyproto v1.0.0 => github.com/peteski22/go-proxyproto v1.0.0
`
	if string(gomod) != want {
		t.Errorf("wrapper go.mod:\n%s\nwant:\n%s", gomod, want)
	}
	if sum, _ := os.ReadFile(filepath.Join(src, "go.sum")); string(sum) != "x v1 h1:abc\n" {
		t.Errorf("upstream go.sum not copied: %q", sum)
	}
}

func TestRefusedVersionNamesTheNearestThatDownloads(t *testing.T) {
	b, calls, _ := fake(t, "proxy")
	fakeModule(t, upstreamMod{Go: "1.24"})
	t.Setenv("FAKE_GO_OK", "v3.5.24")
	t.Setenv("FAKE_GO_VERSIONS", `"v3.5.0","v3.5.21","v3.5.23","v3.6.0"`) // v3.5.24 is not listed; it is the pinned one
	_, err := b.Ensure(context.Background(), "etcd", "v3.5.22")
	want := "etcd v3.5.22: go.etcd.io/etcd/server/v3@v3.5.22 is not available from the module proxy (403 Forbidden); " +
		"nearest version that downloads: v3.5.24 (set ETCD_VERSION=v3.5.24), or give a binary built from the repository at v3.5.22 as ETCD_BIN"
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	c := readCalls(t, calls)
	for _, probe := range []string{"@v3.5.23\n", "@v3.5.21\n", "@v3.5.24\n"} {
		if !strings.Contains(c, "mod download -json go.etcd.io/etcd/server/v3"+probe) {
			t.Errorf("no probe of %s:\n%s", probe, c)
		}
	}

	// vault: versions without "v", and at most maxProbes probes
	t.Setenv("FAKE_GO_OK", "")
	t.Setenv("FAKE_GO_VERSIONS", `"v1.17.0","v1.17.1","v1.17.3","v1.17.4","v1.17.5","v1.17.6","v1.17.7"`)
	os.Remove(calls)
	_, err = b.ModuleDir(context.Background(), "github.com/hashicorp/vault", "v1.17.99")
	if err == nil || !strings.Contains(err.Error(), "github.com/hashicorp/vault@v1.17.99 is not available from the module proxy (403 Forbidden); none of the nearest versions downloads either (tried v1.17.7, v1.17.6, v1.17.5, v1.17.4, v1.17.3)") {
		t.Fatalf("got %v", err)
	}
	if n := strings.Count(readCalls(t, calls), "mod download"); n != 1+maxProbes {
		t.Errorf("%d downloads, want %d", n, 1+maxProbes)
	}
	t.Setenv("FAKE_GO_OK", "v1.17.2")
	_, err = b.Ensure(context.Background(), "vault", "1.17.99")
	if err == nil || !strings.HasSuffix(err.Error(), "nearest version that downloads: 1.17.2 (set VAULT_VERSION=1.17.2), or give a binary built from the repository at 1.17.99 as VAULT_BIN") {
		t.Fatalf("got %v", err)
	}
}

func TestUnreachableProxy(t *testing.T) {
	b, _, _ := fake(t, "offline")
	_, err := b.Ensure(context.Background(), "eso", "v0.10.4")
	if err == nil || !strings.Contains(err.Error(), "cannot reach the Go module proxy (GOPROXY=https://proxy.example,direct)") {
		t.Fatalf("got %v", err)
	}
}

func TestFailedResolveShowsDependencyAndLogTail(t *testing.T) {
	b, _, _ := fake(t, "tidyfail")
	t.Setenv("FAKE_GO_OK", "v3.5.24")
	fakeModule(t, upstreamMod{Go: "1.24"})
	_, err := b.Ensure(context.Background(), "etcd", "v3.5.24")
	logPath := filepath.Join(b.CacheDir, "logs", "build-etcd-v3.5.24.log")
	for _, want := range []string{
		"etcd v3.5.24: resolving modules failed: go mod tidy: exit status 1",
		"dependency k8s.io/foo@v0.1.2 is served by the module proxy but go refuses it: checksum database lookup failed",
		"last lines of " + logPath,
		"go: finding module for package k8s.io/foo/bar",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if _, serr := os.Stat(filepath.Join(b.CacheDir, "src", "etcd-v3.5.24", ".recipe")); serr == nil {
		t.Error("a failed resolve was recorded as done")
	}
}

func TestStagingReplaces(t *testing.T) {
	var all []string
	for _, m := range strings.Fields(`api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
		cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api cri-client
		csi-translation-lib dynamic-resource-allocation endpointslice kms kube-aggregator kube-controller-manager
		kube-proxy kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission sample-apiserver
		sample-cli-plugin sample-controller`) {
		all = append(all, "k8s.io/"+m)
	}
	count := func(lines []string, suffix string) int {
		n := 0
		for _, l := range lines {
			if strings.HasSuffix(l, suffix) {
				n++
			}
		}
		return n
	}
	lines, dummies, err := stagingReplaces("v1.31.14", "1.22.0", all)
	if err != nil {
		t.Fatal(err)
	}
	// BUILDS.md: 17 at v0.31.14, 10 at v0.31.0, 3 dummies
	if count(lines, " v0.31.14") != 17 || count(lines, " v0.31.0") != 10 || len(dummies) != 3 ||
		dummies["dummy/sample-apiserver"] != "module k8s.io/sample-apiserver\n\ngo 1.22.0\n" {
		t.Fatalf("v1.31.14 staging:\n%s\n%v", strings.Join(lines, "\n"), dummies)
	}
	lines, _, _ = stagingReplaces("v1.32.3", "1.23.0", all)
	if count(lines, " v0.32.3") != 27 {
		t.Fatalf("v1.32.3 staging (no known fallbacks):\n%s", strings.Join(lines, "\n"))
	}
}

func TestTreeOnlyBuildSaysWhyAndTheWayOut(t *testing.T) {
	up := upstreamMod{Go: "1.24", Replace: []struct{ Old, New modVer }{
		{modVer{Path: "github.com/hashicorp/vault/sdk"}, modVer{Path: "./sdk"}},
		{modVer{Path: "github.com/hashicorp/vault/api"}, modVer{Path: "./api"}},
		{modVer{Path: "github.com/other/mod"}, modVer{Path: "github.com/other/mod", Version: "v1.0.0"}},
		{modVer{Path: "github.com/other/local"}, modVer{Path: "../local"}},
	}}
	tree := treeModules(vaultRecipe, up)
	want := []string{"github.com/hashicorp/vault/api => ./api", "github.com/hashicorp/vault/sdk => ./sdk"}
	if fmt.Sprint(tree) != fmt.Sprint(want) {
		t.Fatalf("treeModules = %v, want %v (only the repository's own modules from local folders)", tree, want)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	os.WriteFile(filepath.Join(dir, "bin", "vault-1.17.2"), []byte("x"), 0o755)
	var b Builder
	msg := b.treeOnly(dir, vaultRecipe, "vault", "v1.21.4", tree)
	for _, s := range []string{"github.com/hashicorp/vault@v1.21.4", "2 modules", "./sdk", "cannot build this version", "Versions built here: 1.17.2", "VAULT_BIN"} {
		if !strings.Contains(msg, s) {
			t.Errorf("%q missing from: %s", s, msg)
		}
	}
}
