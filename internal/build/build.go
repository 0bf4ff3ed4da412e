// Package build builds the lab's components (vault, ESO, etcd, kube-apiserver,
// kube-controller-manager, and kubectl for the learner) from their Go modules, once per version, into a cache. The
// recipes are those of the offline lab's build-binaries.sh (see its BUILDS.md), with the same
// flags, so that the shared Go build cache is reused.
package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/secretslab/secretslab/versions"
)

// Builder builds components into CacheDir/bin/NAME-VERSION.
type Builder struct {
	CacheDir string    // default: os.UserCacheDir()/secretslab
	Progress io.Writer // progress lines; nil = io.Discard
	GoBin    string    // default: "go" from PATH, else /usr/local/go/bin/go
	// IgnoreEnv: VAULT_BIN and the like are not used (they name the running versions'
	// binaries; an upgrade's target versions come from the cache or a build)
	IgnoreEnv bool
}

// buildEnv is set for every go command, as in build-binaries.sh.
var buildEnv = []string{"CGO_ENABLED=0", "GOWORK=off", "GOTOOLCHAIN=local", "GOFLAGS=-buildvcs=false"}

// Timeouts of the module-proxy steps (a download may be a large zip).
var (
	downloadTimeout = 10 * time.Minute
	probeTimeout    = 2 * time.Minute
	listTimeout     = time.Minute
	maxProbes       = 5
	tickEvery       = 30 * time.Second
)

// Ensure returns the path of component's binary at version, building it first if the cache
// lacks it. Component names: vault, eso, etcd, kube-apiserver, kube-controller-manager,
// kubectl. The variables VAULT_BIN, ESO_BIN, ETCD_BIN, KUBE_APISERVER_BIN,
// KUBE_CONTROLLER_MANAGER_BIN and KUBECTL_BIN, when set, name a prebuilt binary to use
// instead.
func (b *Builder) Ensure(ctx context.Context, component, version string) (string, error) {
	r, ok := recipes[component]
	if !ok {
		return "", fmt.Errorf("unknown component %q (known: %s)", component, strings.Join(componentNames(), ", "))
	}
	if env := binEnv[component]; os.Getenv(env) != "" && !b.IgnoreEnv {
		return checkExecutable(env, os.Getenv(env))
	}
	disp, mv, err := r.versions(version)
	if err != nil {
		return "", fmt.Errorf("%s: %w", component, err)
	}
	label := component + " " + disp
	dir, err := b.cacheDir()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "bin", component+"-"+disp)
	if isExecutable(out) {
		return out, nil
	}
	unlock, err := b.lock(ctx, filepath.Join(dir, "locks", r.build+"-"+disp+".lock"), label)
	if err != nil {
		return "", fmt.Errorf("%s: %w", label, err)
	}
	defer unlock()
	if isExecutable(out) { // built by another process while we waited
		return out, nil
	}
	start := time.Now()
	if err := b.build(ctx, dir, r, component, disp, mv); err != nil {
		return "", err
	}
	if !isExecutable(out) {
		return "", fmt.Errorf("%s: the build did not produce %s", label, out)
	}
	b.progressf("build: %s: ready at %s (took %s)", label, out, time.Since(start).Round(time.Second))
	return out, nil
}

// ModuleDir downloads module@version into the module cache (go mod download -json) and
// returns its directory, which is read-only.
func (b *Builder) ModuleDir(ctx context.Context, module, version string) (string, error) {
	info, err := b.download(ctx, module, version, io.Discard, downloadTimeout)
	if err != nil {
		return "", b.explain(ctx, module, version, err, nil, nil)
	}
	return info.Dir, nil
}

func (b *Builder) cacheDir() (string, error) {
	if b.CacheDir != "" {
		return b.CacheDir, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the cache directory (set Builder.CacheDir): %w", err)
	}
	return filepath.Join(d, "secretslab"), nil
}

func (b *Builder) goBin() string {
	if b.GoBin != "" {
		return b.GoBin
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

func (b *Builder) progressf(format string, args ...any) {
	if b.Progress != nil {
		fmt.Fprintf(b.Progress, format+"\n", args...)
	}
}

// versions returns the version as shown and in file names (vault: "1.17.2") and as the
// module version ("v1.17.2").
func (r *recipe) versions(v string) (disp, mod string, err error) {
	if _, ok := parseSemver(v); !ok || strings.Contains(v, "+") {
		ex := "v1.2.3"
		if r.bare {
			ex = "1.2.3"
		}
		return "", "", fmt.Errorf("version %q is malformed (want the form %s)", v, ex)
	}
	mod = "v" + strings.TrimPrefix(v, "v")
	if r.bare {
		return mod[1:], mod, nil
	}
	return mod, mod, nil
}

func checkExecutable(env, p string) (string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("%s=%s: %w", env, p, err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%s=%s is not an executable file (mode %s)", env, p, st.Mode())
	}
	return filepath.Abs(p)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// lock takes an exclusive flock on path, waiting (and saying so) while another holds it.
func (b *Builder) lock(ctx context.Context, path, label string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for waited := false; ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if err != syscall.EWOULDBLOCK && err != syscall.EINTR {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !waited {
			b.progressf("build: %s: waiting for another build of it to finish (lock %s)", label, path)
			waited = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// build resolves (first time) and compiles r at module version mv, then moves the
// binaries into dir/bin under their final names.
func (b *Builder) build(ctx context.Context, dir string, r *recipe, component, disp, mv string) error {
	label := component + " " + disp
	name := r.build + "-" + disp
	for _, d := range []string{"bin", "src", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
	}
	logPath := filepath.Join(dir, "logs", "build-"+name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	defer logf.Close()
	fail := func(step string, err error) error { return b.failure(ctx, label, step, err, logPath, "") }

	src := filepath.Join(dir, "src", name)
	announced := false
	resolving := func() {
		if !announced {
			b.progressf("build: %s: resolving modules (first build only; %s)", label, r.resolveETA)
			announced = true
		}
	}
	if _, err := os.Stat(filepath.Join(src, ".recipe")); err != nil {
		resolving()
	}
	info, err := b.download(ctx, r.module, mv, logf, downloadTimeout)
	if err != nil {
		return fmt.Errorf("%s: %w", label, b.explain(ctx, r.module, mv, err, r, logf))
	}
	var up upstreamMod
	var buf bytes.Buffer
	if err := b.goCmd(ctx, "", logf, &buf, logf, "mod", "edit", "-json", info.GoMod); err != nil {
		return fail("reading the upstream go.mod", err)
	}
	if err := json.Unmarshal(buf.Bytes(), &up); err != nil {
		return fmt.Errorf("%s: parse go mod edit -json of %s: %w", label, info.GoMod, err)
	}
	w, err := makeWrapper(r, mv, up)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	if tree := treeModules(r, up); len(tree) > 0 {
		fail = func(step string, err error) error {
			return b.failure(ctx, label, step, err, logPath, b.treeOnly(dir, r, component, mv, tree))
		}
	}
	old, _ := os.ReadFile(filepath.Join(src, ".recipe"))
	if _, err := os.Stat(filepath.Join(src, "go.sum")); err != nil || strings.TrimSpace(string(old)) != w.stamp() {
		resolving()
		if err := b.resolve(ctx, r, src, w, info, logf); err != nil {
			return fail("resolving modules", err)
		}
	}

	b.progressf("build: %s: compiling (%s)", label, r.compileETA)
	tmp, err := os.MkdirTemp(filepath.Join(dir, "bin"), ".build-"+name+"-")
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	defer os.RemoveAll(tmp)
	ld := ""
	if r.ldflags != nil {
		ld = r.ldflags(mv, time.Now())
	}
	args := []string{"build", "-trimpath"}
	if r.tags != "" {
		args = append(args, "-tags", r.tags)
	}
	pkgs, bins := r.pkgs, r.bins
	outs := []string{filepath.Join(tmp, r.bins[0])}
	o := outs[0]
	if len(r.pkgs) > 1 { // go build -o DIR/ names each binary after its package
		// only those the cache lacks: a binary added to the recipe (kubectl) or one lost
		// does not relink the others
		pkgs, bins, outs, o = nil, nil, nil, tmp+"/"
		for i, p := range r.pkgs {
			if !isExecutable(filepath.Join(dir, "bin", r.bins[i]+"-"+disp)) {
				pkgs, bins = append(pkgs, p), append(bins, r.bins[i])
				outs = append(outs, filepath.Join(tmp, filepath.Base(p)))
			}
		}
	}
	args = append(append(args, "-ldflags", "-s -w "+ld, "-o", o), pkgs...)
	stop := b.ticker(label)
	err = b.goCmd(ctx, src, logf, logf, logf, args...)
	stop()
	if err != nil {
		return fail("compiling", err)
	}
	for i, o := range outs {
		if err := os.Rename(o, filepath.Join(dir, "bin", bins[i]+"-"+disp)); err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
	}
	return nil
}

// resolve re-creates the wrapper module in src and resolves its requirements.
func (b *Builder) resolve(ctx context.Context, r *recipe, src string, w wrapper, info modInfo, logf io.Writer) error {
	if err := os.RemoveAll(src); err != nil {
		return err
	}
	files := map[string]string{"go.mod": w.goMod, "tools.go": w.tools}
	for d, gomod := range w.dummies {
		files[filepath.Join(d, "go.mod")] = gomod
	}
	for f, content := range files {
		p := filepath.Join(src, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	if r.upstreamSum {
		// hashes from upstream's sumdb-verified go.sum instead of lookups the proxy answers with 404
		sum, err := os.ReadFile(filepath.Join(info.Dir, "go.sum"))
		if err != nil {
			return fmt.Errorf("upstream go.sum: %w", err)
		}
		if err := os.WriteFile(filepath.Join(src, "go.sum"), sum, 0o644); err != nil {
			return err
		}
		args := []string{"list", "-mod=mod"}
		if r.tags != "" {
			args = append(args, "-tags", r.tags)
		}
		if err := b.goCmd(ctx, src, logf, io.Discard, logf, append(append(args, "-deps"), r.pkgs...)...); err != nil {
			return err
		}
	} else if err := b.goCmd(ctx, src, logf, logf, logf, "mod", "tidy"); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(src, ".recipe"), []byte(w.stamp()+"\n"))
}

func writeAtomic(p string, data []byte) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// ticker reports every tickEvery that label is still compiling; the returned func stops it.
func (b *Builder) ticker(label string) func() {
	start := time.Now()
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(tickEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				b.progressf("build: still compiling %s (%s elapsed)", label, time.Since(start).Round(time.Second))
			}
		}
	}()
	return func() { close(done); <-exited }
}

// goCmd runs go with the build environment in dir ("" = a new empty directory, outside
// any module); go and its children die with ctx. The command line goes to log.
func (b *Builder) goCmd(ctx context.Context, dir string, log, stdout, stderr io.Writer, args ...string) error {
	fmt.Fprintf(log, "\n$ go %s\n", strings.Join(args, " "))
	if dir == "" {
		tmp, err := os.MkdirTemp("", "secretslab-go-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	cmd := exec.CommandContext(ctx, b.goBin(), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), buildEnv...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	name := "go " + args[0]
	if args[0] == "mod" && len(args) > 1 {
		name += " " + args[1]
	}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", name, ctx.Err())
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// modInfo is the output of go mod download -json.
type modInfo struct {
	Path, Version, Error, Dir, GoMod string
}

// downloadError is a failed go mod download; out is go's output.
type downloadError struct {
	module, version, out string
	err                  error
}

func (e *downloadError) Error() string {
	msg := strings.TrimSpace(e.out)
	if msg == "" {
		msg = e.err.Error()
	}
	return fmt.Sprintf("download %s@%s: %s", e.module, e.version, msg)
}

func (e *downloadError) Unwrap() error { return e.err }

// download runs go mod download -json module@version outside any module.
func (b *Builder) download(ctx context.Context, module, version string, logf io.Writer, timeout time.Duration) (modInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := b.goCmd(ctx, "", logf, &stdout, io.MultiWriter(&stderr, logf), "mod", "download", "-json", module+"@"+version)
	logf.Write(stdout.Bytes())
	var info modInfo
	jerr := json.Unmarshal(stdout.Bytes(), &info)
	if err == nil && (jerr != nil || info.Error != "" || info.Dir == "" || info.GoMod == "") {
		err = fmt.Errorf("unexpected output of go mod download -json")
	}
	if err != nil {
		out := info.Error + "\n" + stderr.String()
		if errors.Is(err, context.DeadlineExceeded) {
			out += fmt.Sprintf("\ncontext deadline exceeded: no answer within %s", timeout)
		}
		return info, &downloadError{module, version, out, err}
	}
	return info, nil
}

// explain turns a failed download of module@version into one clear error: why the proxy
// refused it and the nearest version that downloads. r (may be nil) names the component,
// for the version format and the variable to set.
func (b *Builder) explain(ctx context.Context, module, version string, err error, r *recipe, logf io.Writer) error {
	if ctx.Err() != nil {
		return err
	}
	var de *downloadError
	if !errors.As(err, &de) {
		return err
	}
	ref, ok := classify(de.out)
	if !ok {
		return err
	}
	if ref.kind == refusedNetwork {
		return b.unreachable(ctx, ref)
	}
	ref.module, ref.version = module, version
	msg := ref.describe()
	extra := []string{}
	if r != nil {
		if p := pinned(r); p != "" {
			extra = append(extra, p)
		}
	}
	if logf == nil {
		logf = io.Discard
	}
	near, tried, nerr := b.nearest(ctx, module, version, extra, logf)
	switch {
	case nerr != nil:
		return fmt.Errorf("%s; %w", msg, nerr)
	case near != "" && r != nil:
		d, _, _ := r.versions(near)
		asked, _, _ := r.versions(version)
		return fmt.Errorf("%s; nearest version that downloads: %s (set %s=%s), or give a binary built from the repository at %s as %s",
			msg, d, r.versionEnv, d, asked, binEnv[componentOf(r)])
	case near != "":
		return fmt.Errorf("%s; nearest version that downloads: %s", msg, near)
	case len(tried) > 0:
		return fmt.Errorf("%s; none of the nearest versions downloads either (tried %s)", msg, strings.Join(tried, ", "))
	}
	return fmt.Errorf("%s; the module proxy lists no other version of %s", msg, module)
}

func (b *Builder) unreachable(ctx context.Context, ref refusal) error {
	proxy := os.Getenv("GOPROXY")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := b.goCmd(ctx, "", io.Discard, &out, io.Discard, "env", "GOPROXY"); err == nil && strings.TrimSpace(out.String()) != "" {
		proxy = strings.TrimSpace(out.String())
	}
	if proxy == "" {
		proxy = "https://proxy.golang.org,direct"
	}
	return fmt.Errorf("cannot reach the Go module proxy (GOPROXY=%s): %s", proxy, ref.line)
}

// pinned returns the module version versions.yaml pins for r.
func pinned(r *recipe) string {
	p := versions.Pinned()
	v := map[*recipe]string{vaultRecipe: p.Vault, esoRecipe: p.ESO, etcdRecipe: p.Etcd, kubeRecipe: p.Kubernetes}[r]
	if v == "" {
		return ""
	}
	return versions.WithV(v)
}

// nearest lists the proxy's versions of module, plus extra (known-good versions), and
// returns the first in order of closeness to version that downloads (at most maxProbes tries).
func (b *Builder) nearest(ctx context.Context, module, version string, extra []string, logf io.Writer) (near string, tried []string, err error) {
	lctx, cancel := context.WithTimeout(ctx, listTimeout)
	var stdout, stderr bytes.Buffer
	lerr := b.goCmd(lctx, "", logf, &stdout, io.MultiWriter(&stderr, logf), "list", "-m", "-versions", "-json", module)
	cancel()
	var list struct{ Versions []string }
	if lerr == nil {
		_ = json.Unmarshal(stdout.Bytes(), &list)
	} else if ref, ok := classify(stderr.String()); ok && ref.kind == refusedNetwork {
		return "", nil, b.unreachable(ctx, ref)
	}
	for _, c := range pick(orderCandidates(version, append(list.Versions, extra...)), extra, maxProbes) {
		tried = append(tried, c)
		_, err := b.download(ctx, module, c, logf, probeTimeout)
		if err == nil {
			return c, tried, nil
		}
		if ctx.Err() != nil {
			return "", tried, ctx.Err()
		}
		var de *downloadError
		if errors.As(err, &de) {
			if ref, ok := classify(de.out); ok && ref.kind == refusedNetwork {
				return "", tried, b.unreachable(ctx, ref)
			}
		}
	}
	return "", tried, nil
}

// failure describes a failed go step: a refused dependency or unreachable proxy when go's
// output shows one, why (when known), and the end of the log.
func (b *Builder) failure(ctx context.Context, label, step string, err error, logPath, why string) error {
	data, _ := os.ReadFile(logPath)
	msg := fmt.Sprintf("%s: %s failed: %v", label, step, err)
	if ctx.Err() == nil {
		if ref, ok := classify(string(data)); ok {
			if ref.kind == refusedNetwork {
				msg += "; " + b.unreachable(ctx, ref).Error()
			} else if ref.module != "" {
				msg += "; dependency " + ref.describe()
			}
		}
	}
	if why != "" {
		msg += "\n" + why
	}
	return fmt.Errorf("%s\nlast lines of %s:\n%s", msg, logPath, tail(string(data), 20))
}

// treeModules lists the modules of r's own repository that its go.mod takes from folders of
// its tree (replace github.com/hashicorp/vault/sdk => ./sdk). A module zip leaves those
// folders out, so a wrapper build gets them from the module proxy instead, at versions that
// need not match the tree, or not at all.
func treeModules(r *recipe, up upstreamMod) []string {
	if r == kubeRecipe { // its staging modules are pinned by stagingReplaces
		return nil
	}
	var tree []string
	for _, rp := range up.Replace {
		if rp.New.Version == "" && strings.HasPrefix(rp.Old.Path, r.module+"/") &&
			(strings.HasPrefix(rp.New.Path, "./") || strings.HasPrefix(rp.New.Path, "../")) {
			tree = append(tree, rp.Old.Path+" => "+rp.New.Path)
		}
	}
	sort.Strings(tree)
	return tree
}

// treeOnly explains a failed build of a version whose go.mod needs its own tree, names the
// versions built here before, and the way out: a binary built from the repository.
func (b *Builder) treeOnly(dir string, r *recipe, component, mv string, tree []string) string {
	msg := fmt.Sprintf("why: %s@%s's go.mod takes %s from its own repository tree (%s); a module zip leaves those folders out, "+
		"so this build took them from the module proxy, which does not serve them at versions that match this tree. "+
		"The module proxy cannot build this version.", r.module, mv, plural(len(tree), "module"), examples(tree, 3))
	if built := builtVersions(filepath.Join(dir, "bin"), r.bins[0]); len(built) > 0 {
		msg += fmt.Sprintf(" Versions built here: %s.", strings.Join(built, ", "))
	}
	msg += fmt.Sprintf(" To run %s anyway, build it from a checkout of its repository at that tag and give the binary as %s", mv, binEnv[component])
	if r == esoRecipe {
		msg += " with its CRDs as ESO_CRDS (deploy/crds/bundle.yaml)"
	}
	return msg + "."
}

// builtVersions lists the versions of bin found in binDir (bin-VERSION).
func builtVersions(binDir, bin string) []string {
	entries, _ := os.ReadDir(binDir)
	var out []string
	for _, e := range entries {
		if v, ok := strings.CutPrefix(e.Name(), bin+"-"); ok && !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, v)
		}
	}
	return out
}

// examples joins the first n of list and says how many more there are.
func examples(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(list[:n], ", "), len(list)-n)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// tail returns the last n non-empty lines of s, indented.
func tail(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, "    "+l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
