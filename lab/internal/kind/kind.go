// Package kind is the lab backend on a real cluster: the pinned upstream Helm charts (Vault,
// External Secrets Operator) installed with the Helm SDK, the bookstore as pods, and
// port-forwards the harness opens and closes itself. Nothing is shelled out to kubectl, helm
// or vault, and nothing is pulled at run time when the images are preloaded.
//
// Two backends share it: "kind" creates (or reuses) a kind cluster; "cluster" (cluster.go)
// runs on the cluster in KUBECONFIG, in namespaces named for the run, and removes everything
// it created, checked against an inventory of the cluster's objects taken before.
package kind

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	chart "helm.sh/helm/v4/pkg/chart/v2"

	"github.com/secretslab/secretslab/fixtures"
	"github.com/secretslab/secretslab/internal/charts"
	"github.com/secretslab/secretslab/internal/docker"
	"github.com/secretslab/secretslab/internal/kube"
	"github.com/secretslab/secretslab/internal/portforward"
	"github.com/secretslab/secretslab/internal/redact"
	"github.com/secretslab/secretslab/internal/tcpproxy"
	"github.com/secretslab/secretslab/lab"
	"github.com/secretslab/secretslab/lab/kindcluster"
	"github.com/secretslab/secretslab/versions"
)

//go:embed kind-config.yaml
var kindConfig []byte

// Upstream chart repositories, used when no local chart is given.
const (
	VaultRepo = "https://helm.releases.hashicorp.com"
	ESORepo   = "https://charts.external-secrets.io"
)

// Lab is a running kind lab.
type Lab struct {
	opts     lab.Options
	name     string // the kind cluster's ("" on a cluster that is not kind's)
	provider *kindcluster.Cluster
	created  bool
	// the charts' namespaces: vault and external-secrets on kind, RUN-vault and RUN-eso on
	// the cluster backend, whose run, inventory and namespaces cluster.go keeps
	vaultNS, esoNS string
	run            *clusterRun
	workDir        string
	artifacts      string
	progress       io.Writer
	secrets        *redact.Set

	kubeconfig string
	cfg        *rest.Config
	kube       kubernetes.Interface
	dyn        dynamic.Interface
	k          *kube.Client

	vaultRelease, esoRelease *charts.Release
	vaultChart               *chart.Chart // as last installed, with its image tag and injector
	vaultTag                 string
	injector                 bool
	rootToken                string
	keys                     *keyFile
	nodes                    []*vaultNode
	seal                     string     // lab.SealShamir | lab.SealTransit
	kms                      *vaultNode // the KMS Vault (seal transit)
	kmsKeys                  *keyFile

	forwards  []*portforward.Forward
	fronts    []*serviceFront
	proxies   []*tcpproxy.Proxy // the Vault nodes' stable addresses
	workloads map[string]*workload
	pgForward *portforward.Forward
	pgAdmin   [3]string // user, password, database of the bookstore's Postgres superuser

	exported bool // the cluster's logs were exported (Close does it once)
}

var _ lab.Lab = (*Lab)(nil)

// Up creates (or reuses) the cluster and installs everything. On failure it exports the
// cluster's logs, redacted, to the artifacts dir and removes what it created (Close).
func Up(ctx context.Context, opts lab.Options) (_ *Lab, err error) {
	l := &Lab{opts: opts, secrets: lab.SecretsOf(opts), progress: opts.Progress, workloads: map[string]*workload{}}
	if l.progress == nil {
		l.progress = io.Discard
	}
	if l.opts.VaultMode == "" {
		l.opts.VaultMode = lab.VaultDev
	}
	if l.seal, err = lab.SealOf(l.opts); err != nil {
		return nil, err
	}
	if l.seal == lab.SealTransit && (opts.Backend == lab.BackendCluster || opts.Reuse) {
		// its KMS release and namespace go with the kind cluster the lab deletes; a cluster the
		// lab does not delete would keep them
		return nil, fmt.Errorf("seal %q runs on embedded and on a kind cluster the lab creates (not with --reuse, not on the cluster backend)", l.seal)
	}
	l.name = opts.ClusterName
	if l.name == "" {
		l.name = "secretslab"
	}
	l.vaultNS, l.esoNS = "vault", "external-secrets"
	onCluster := opts.Backend == lab.BackendCluster
	if onCluster {
		if err := l.attach(ctx); err != nil { // before anything else: a cluster that answers
			return nil, err
		}
	} else if err := docker.Ping(ctx); err != nil {
		return nil, fmt.Errorf("backend kind needs a Docker engine: %w", err)
	}
	// Chart sources are checked before anything is created, so a bad version leaves nothing.
	vaultChart, esoChart, err := l.loadCharts(ctx)
	if err != nil {
		return nil, err
	}
	if err := l.makeDirs(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if cerr := l.Close(context.Background()); cerr != nil {
				err = fmt.Errorf("%w (and while cleaning up: %v)", err, cerr)
			}
		}
	}()
	if onCluster {
		err = l.claimNamespaces(ctx)
	} else {
		err = l.cluster(ctx)
	}
	if err != nil {
		return nil, err
	}
	if err := l.loadImages(ctx); err != nil {
		return nil, err
	}
	if err := l.freshVault(ctx); err != nil {
		return nil, err
	}
	if err := l.installVault(ctx, vaultChart); err != nil {
		return nil, err
	}
	if err := l.installESO(ctx, esoChart); err != nil {
		return nil, err
	}
	if onCluster {
		l.say("lab is up (run %s: namespaces %s, %s and bookstore; kubeconfig %s)", l.run.name, l.vaultNS, l.esoNS, l.kubeconfig)
	} else {
		l.say("lab is up (cluster %s, kubeconfig %s)", l.name, l.kubeconfig)
	}
	return l, nil
}

func (l *Lab) say(format string, args ...any) { fmt.Fprintf(l.progress, "lab: "+format+"\n", args...) }

func (l *Lab) makeDirs() error {
	d, err := lab.MakeDirs(l.opts, "secretslab-kind-")
	l.workDir, l.artifacts = d.Work, d.Artifacts
	return err
}

func (l *Lab) loadCharts(ctx context.Context) (vaultChart, esoChart *chart.Chart, err error) {
	return l.loadChartsOf(ctx, l.opts.Versions, l.opts.VaultChart, l.opts.ESOChart)
}

// loadChartsOf loads the charts of v: from the local paths when given, else the repositories.
func (l *Lab) loadChartsOf(ctx context.Context, v versions.Set, vaultPath, esoPath string) (vaultChart, esoChart *chart.Chart, err error) {
	cache := "" // charts.Load's default: the user cache dir/secretslab/charts
	if l.opts.CacheDir != "" {
		cache = filepath.Join(l.opts.CacheDir, "charts")
	}
	l.say("loading charts: vault %s, external-secrets %s", v.VaultChart, v.ESOChart)
	vaultChart, err = charts.Load(ctx, charts.Source{Repo: VaultRepo, Name: "vault", Version: v.VaultChart, Path: vaultPath}, cache)
	if err != nil {
		return nil, nil, fmt.Errorf("vault chart: %w", err)
	}
	esoChart, err = charts.Load(ctx, charts.Source{Repo: ESORepo, Name: "external-secrets", Version: v.ESOChart, Path: esoPath}, cache)
	if err != nil {
		return nil, nil, fmt.Errorf("external-secrets chart: %w", err)
	}
	return vaultChart, esoChart, nil
}

// cluster creates the kind cluster, or reuses it with opts.Reuse.
func (l *Lab) cluster(ctx context.Context) error {
	l.provider = kindcluster.New()
	l.provider.WithName(l.name)
	l.provider.WithNodeImage(l.opts.Versions.KindNodeImage).WithRawConfig(kindConfig).WithReuse(l.opts.Reuse).
		WithKubeconfigPath(filepath.Join(l.workDir, "kubeconfig"))
	start := time.Now()
	l.say("creating (or reusing) kind cluster %s from %s (about 15-60 s)", l.name, l.opts.Versions.KindNodeImage)
	kubeconfig, err := l.provider.Create(ctx)
	l.created = l.provider.Created()
	if err != nil {
		return err
	}
	l.say("cluster ready in %s (created: %t)", time.Since(start).Round(time.Second), l.created)
	l.kubeconfig = kubeconfig
	l.cfg = l.provider.KubernetesRestConfig()
	l.cfg.QPS, l.cfg.Burst = 50, 100
	if l.kube, err = kubernetes.NewForConfig(l.cfg); err != nil {
		return err
	}
	if l.dyn, err = dynamic.NewForConfig(l.cfg); err != nil {
		return err
	}
	l.k, err = kube.New(l.cfg)
	return err
}

// loadImages builds the bookstore image (FROM scratch, nothing pulled) and loads it and the
// preload list into the nodes.
func (l *Lab) loadImages(ctx context.Context) error {
	var refs, archives []string
	for _, p := range l.opts.Preload {
		if strings.HasSuffix(p, ".tar") || strings.HasSuffix(p, ".tar.gz") {
			archives = append(archives, p)
		} else {
			refs = append(refs, p)
		}
	}
	if l.opts.BookstoreBinary != "" && l.opts.BookstoreImage != "" {
		bin, err := os.ReadFile(l.opts.BookstoreBinary)
		if err != nil {
			return fmt.Errorf("bookstore binary: %w", err)
		}
		dockerfile, err := fixtures.File(fixtures.DockerfilePath)
		if err != nil {
			return err
		}
		l.say("building image %s (FROM scratch)", l.opts.BookstoreImage)
		if err := docker.BuildFromScratch(ctx, l.opts.BookstoreImage, map[string][]byte{"bookstore": bin}, dockerfile); err != nil {
			return fmt.Errorf("build %s: %w", l.opts.BookstoreImage, err)
		}
		refs = append(refs, l.opts.BookstoreImage)
	}
	if len(refs)+len(archives) == 0 {
		return nil
	}
	if l.name == "" {
		l.say("not a kind cluster: the cluster pulls %s itself (push it where the cluster can pull from)", strings.Join(refs, ", "))
		return nil
	}
	return docker.LoadIntoKind(ctx, l.name, refs, archives, l.progress)
}

// Backend implements lab.Lab.
func (l *Lab) Backend() string {
	if l.run != nil {
		return lab.BackendCluster
	}
	return lab.BackendKind
}

// RESTConfig implements lab.Lab.
func (l *Lab) RESTConfig() *rest.Config { return rest.CopyConfig(l.cfg) }

// Kube implements lab.Lab.
func (l *Lab) Kube() kubernetes.Interface { return l.kube }

// Dynamic implements lab.Lab.
func (l *Lab) Dynamic() dynamic.Interface { return l.dyn }

// KubeconfigPath implements lab.Lab.
func (l *Lab) KubeconfigPath() string { return l.kubeconfig }

// VaultKubernetesAuthConfig implements lab.Lab: Vault runs in a pod, so it reviews tokens
// with its own ServiceAccount (bound to system:auth-delegator by the chart).
func (l *Lab) VaultKubernetesAuthConfig(context.Context) (map[string]any, error) {
	return map[string]any{"kubernetes_host": "https://kubernetes.default.svc"}, nil
}

// VaultAddrForESO implements lab.Lab: the chart's Services; in HA the active node's.
func (l *Lab) VaultAddrForESO() string {
	if l.opts.VaultMode == lab.VaultHA {
		return "http://vault-active." + l.vaultNS + ".svc:8200"
	}
	return "http://vault." + l.vaultNS + ".svc:8200"
}

// PostgresAddrForVault implements lab.Lab: the bookstore's Service, as the chapter has it.
func (l *Lab) PostgresAddrForVault() string { return "postgres.bookstore.svc.cluster.local:5432" }

// Secrets implements lab.Lab.
func (l *Lab) Secrets() *redact.Set { return l.secrets }

// ArtifactsDir implements lab.Lab.
func (l *Lab) ArtifactsDir() string { return l.artifacts }

// WorkDir is the lab's private directory.
func (l *Lab) WorkDir() string { return l.workDir }

// Vault implements lab.Lab: the first unsealed node's client.
func (l *Lab) Vault() *vault.Client {
	for _, n := range l.nodes {
		if n.client == nil {
			continue
		}
		if h, err := n.client.Sys().Health(); err == nil && !h.Sealed && !h.Standby {
			return n.client
		}
	}
	if len(l.nodes) > 0 {
		return l.nodes[0].client
	}
	return nil
}

// VaultNodes implements lab.Lab.
func (l *Lab) VaultNodes() []lab.VaultNode {
	var out []lab.VaultNode
	for _, n := range l.nodes {
		out = append(out, n)
	}
	return out
}

// Close implements lab.Lab: exports the pods' logs and the events, redacted, to
// ArtifactsDir()/kind-logs (see exportLogs), closes the port-forwards and deletes the
// cluster it created (kept with opts.Keep); a reused cluster is left as it was found. On the
// cluster backend it removes what the run created instead (cluster.go).
func (l *Lab) Close(ctx context.Context) error {
	l.exportLogs()
	for _, f := range l.fronts {
		f.Close()
	}
	for _, p := range l.proxies {
		p.Close()
	}
	for _, n := range l.allVaultNodes() {
		n.setForward(nil)
	}
	for _, f := range l.forwards {
		f.Close()
	}
	l.fronts, l.proxies, l.forwards = nil, nil, nil
	var errs []error
	if l.run != nil {
		if err := l.removeRun(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if l.created && !l.opts.Keep && l.provider != nil {
		l.say("deleting kind cluster %s", l.name)
		if err := l.provider.Destroy(context.Background()); err != nil {
			errs = append(errs, err)
		}
	}
	if l.opts.WorkDir == "" && l.workDir != "" && len(errs) == 0 && !l.opts.Keep {
		if err := os.RemoveAll(l.workDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ClusterName names the kind cluster this lab created, for a state file ("" for a reused
// cluster, which `lab down` must leave alone).
func (l *Lab) ClusterName() string {
	if !l.created {
		return ""
	}
	return l.name
}
