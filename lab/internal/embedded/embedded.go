// Package embedded is the lab backend that runs the real components as host processes on
// 127.0.0.1: etcd, kube-apiserver and kube-controller-manager, ESO's controller, Vault
// (dev mode or a 3-node Raft cluster) and Postgres. No container, no pod, no registry.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	vault "github.com/hashicorp/vault/api"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/secretslab/secretslab/internal/build"
	"github.com/secretslab/secretslab/internal/esoproc"
	"github.com/secretslab/secretslab/internal/kubeproc"
	"github.com/secretslab/secretslab/internal/pgserver"
	"github.com/secretslab/secretslab/internal/proc"
	"github.com/secretslab/secretslab/internal/redact"
	"github.com/secretslab/secretslab/internal/tcpproxy"
	"github.com/secretslab/secretslab/internal/vaultops"
	"github.com/secretslab/secretslab/internal/vaultproc"
	"github.com/secretslab/secretslab/lab"
)

// Namespaces the lab creates, as the charts would on kind.
const (
	VaultNamespace = "vault"
	ESONamespace   = "external-secrets"
	// the ServiceAccount whose token Vault uses to call TokenReview (as vault-helm's
	// "vault" ServiceAccount bound to system:auth-delegator)
	vaultReviewerSA = "vault"
)

// Lab is a running embedded lab.
type Lab struct {
	opts      lab.Options
	secrets   *redact.Set
	workDir   string
	ownWork   bool
	artifacts string
	progress  io.Writer

	cp    *kubeproc.ControlPlane
	eso   *esoproc.Controller
	pg    *pgserver.Server
	vault *vaultproc.Cluster
	kms   *vaultproc.Cluster // seal transit: the Vault whose transit engine plays the KMS
	kube  kubernetes.Interface
	dyn   dynamic.Interface

	workloads proc.Group
	services  services
	frontsMu  sync.Mutex
	fronts    []*tcpproxy.Proxy // the workloads' Service stand-ins
	active    *tcpproxy.Proxy   // HA: the vault-active Service's stand-in
}

var (
	_ lab.Lab          = (*Lab)(nil)
	_ lab.AutoUnsealer = (*Lab)(nil)
	_ lab.VaultNodeLog = (*vaultproc.Node)(nil)
)

// Up starts an embedded lab. On failure everything started so far is stopped.
func Up(ctx context.Context, opts lab.Options) (_ *Lab, err error) {
	l := &Lab{opts: opts, secrets: lab.SecretsOf(opts), progress: opts.Progress}
	if l.progress == nil {
		l.progress = io.Discard
	}
	if opts.VaultMode == "" {
		l.opts.VaultMode = lab.VaultDev
	}
	defer func() {
		if err != nil {
			if cerr := l.Close(context.Background()); cerr != nil {
				err = fmt.Errorf("%w (and while cleaning up: %v)", err, cerr)
			}
		}
	}()
	seal, err := lab.SealOf(l.opts)
	if err != nil {
		return nil, err
	}
	if err := l.makeDirs(); err != nil {
		return nil, err
	}

	bins, err := l.binaries(ctx)
	if err != nil {
		return nil, err
	}

	l.say("starting etcd, kube-apiserver and kube-controller-manager")
	l.cp, err = kubeproc.Start(ctx, kubeproc.Options{
		EtcdBin: bins["etcd"], APIServerBin: bins["kube-apiserver"], ControllerManagerBin: bins["kube-controller-manager"],
		WorkDir: filepath.Join(l.workDir, "kube"), LogDir: l.artifacts, Redact: l.secrets,
	})
	if err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}
	cfg := l.cp.RESTConfig()
	if l.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if l.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if err := l.prepareCluster(ctx); err != nil {
		return nil, err
	}

	l.say("installing ESO %s CRDs and starting its controller", opts.Versions.ESO)
	if _, err := esoproc.InstallCRDsFrom(ctx, cfg, bins["eso-crds"]); err != nil {
		return nil, fmt.Errorf("ESO CRDs: %w", err)
	}
	if err := l.cp.StartControllers(); err != nil {
		return nil, fmt.Errorf("kube-controller-manager: %w", err)
	}
	if l.eso, err = esoproc.Start(ctx, esoproc.Options{Binary: bins["eso"], Kubeconfig: l.cp.AdminKubeconfig(), LogDir: l.artifacts, Redact: l.secrets}); err != nil {
		return nil, fmt.Errorf("ESO controller: %w", err)
	}

	l.say("starting Postgres %s", opts.Versions.Postgres)
	if l.pg, err = pgserver.Start(ctx, pgserver.Options{
		Mode: pgserver.Mode(opts.PostgresMode), Major: opts.Versions.Postgres,
		WorkDir: filepath.Join(l.workDir, "postgres"), LogDir: l.artifacts, Redact: l.secrets,
	}); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}

	vopts := vaultproc.Options{
		Binary: bins["vault"], WorkDir: filepath.Join(l.workDir, "vault"), LogDir: l.artifacts,
		KeysFile: l.KeysFile(), Redact: l.secrets, PerformanceMultiplier: opts.RaftPerformanceMultiplier,
	}
	if seal == lab.SealTransit {
		l.say("starting the KMS stand-in: Vault %s with the transit engine (for the chapter's seal \"awskms\")", opts.Versions.Vault)
		var ts *vaultproc.TransitSeal
		l.kms, ts, err = vaultproc.StartKMS(ctx, vaultproc.Options{
			Binary: bins["vault"], WorkDir: filepath.Join(l.workDir, "vault-kms"), LogDir: l.artifacts,
			KeysFile: filepath.Join(l.workDir, "vault-kms-keys.json"), Redact: l.secrets,
		})
		if err != nil {
			return nil, fmt.Errorf("vault KMS: %w", err)
		}
		vopts.Seal = ts
	}
	if l.opts.VaultMode == lab.VaultHA {
		if seal == lab.SealTransit {
			l.say("starting Vault %s: 3 Raft nodes with seal \"transit\" (init with recovery keys, join; they unseal themselves)", opts.Versions.Vault)
		} else {
			l.say("starting Vault %s: 3 Raft nodes (init, unseal, join)", opts.Versions.Vault)
		}
		l.vault, err = vaultproc.StartRaft(ctx, vopts, 3)
	} else {
		l.say("starting Vault %s in dev mode", opts.Versions.Vault)
		l.vault, err = vaultproc.StartDev(ctx, vopts)
	}
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	if l.opts.VaultMode == lab.VaultHA {
		if l.active, err = tcpproxy.Start(l.activeFirst); err != nil {
			return nil, err
		}
	}
	l.say("lab is up (logs: %s)", l.artifacts)
	return l, nil
}

func (l *Lab) makeDirs() error {
	d, err := lab.MakeDirs(l.opts, "secretslab-embedded-")
	l.workDir, l.artifacts, l.ownWork = d.Work, d.Artifacts, d.OwnWork
	return err
}

// binaries resolves (building once, if needed) every component binary and ESO's CRDs: the
// file or dir opts.ESOCRDs names (with ESO_BIN, for an ESO the module proxy cannot build), else
// the CRD dir of the ESO module at its version.
func (l *Lab) binaries(ctx context.Context) (map[string]string, error) {
	b := &build.Builder{CacheDir: l.opts.CacheDir, Progress: l.progress}
	out := map[string]string{}
	for _, w := range build.Components(l.opts.Versions) {
		path, err := b.Ensure(ctx, w.Name, w.Version)
		if err != nil {
			return nil, err
		}
		out[w.Name] = path
	}
	if l.opts.ESOCRDs != "" {
		out["eso-crds"] = l.opts.ESOCRDs
		return out, nil
	}
	dir, err := b.ModuleDir(ctx, esoproc.Module, l.opts.Versions.ESO)
	if err != nil {
		return nil, fmt.Errorf("ESO CRDs: %w (an ESO the module proxy does not serve runs with ESO_BIN and ESO_CRDS)", err)
	}
	out["eso-crds"] = filepath.Join(dir, esoproc.CRDSubdir)
	return out, nil
}

// prepareCluster creates what the charts would: the vault and external-secrets namespaces
// and Vault's token reviewer ServiceAccount bound to system:auth-delegator.
func (l *Lab) prepareCluster(ctx context.Context) error {
	for _, ns := range []string{VaultNamespace, ESONamespace} {
		_, err := l.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: vaultReviewerSA, Namespace: VaultNamespace}}
	if _, err := l.kube.CoreV1().ServiceAccounts(VaultNamespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ServiceAccount vault/vault: %w", err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "vault-server-binding"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: vaultReviewerSA, Namespace: VaultNamespace}},
	}
	if _, err := l.kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ClusterRoleBinding vault-server-binding: %w", err)
	}
	return nil
}

func (l *Lab) say(format string, args ...any) {
	fmt.Fprintf(l.progress, "lab: "+format+"\n", args...)
}

// Backend implements lab.Lab.
func (l *Lab) Backend() string { return lab.BackendEmbedded }

// RESTConfig implements lab.Lab.
func (l *Lab) RESTConfig() *rest.Config { return l.cp.RESTConfig() }

// Kube implements lab.Lab.
func (l *Lab) Kube() kubernetes.Interface { return l.kube }

// Dynamic implements lab.Lab.
func (l *Lab) Dynamic() dynamic.Interface { return l.dyn }

// KubeconfigPath implements lab.Lab.
func (l *Lab) KubeconfigPath() string { return l.cp.AdminKubeconfig() }

// VaultKubernetesAuthConfig implements lab.Lab: Vault runs outside any pod, so it gets the
// API server's host address and CA, and a reviewer JWT of a ServiceAccount bound to
// system:auth-delegator; disable_local_ca_jwt stops it looking for pod files.
func (l *Lab) VaultKubernetesAuthConfig(ctx context.Context) (map[string]any, error) {
	expiry := int64(24 * 3600)
	tr, err := l.kube.CoreV1().ServiceAccounts(VaultNamespace).CreateToken(ctx, vaultReviewerSA,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token for the Vault reviewer ServiceAccount: %w", err)
	}
	l.secrets.Add(tr.Status.Token)
	return map[string]any{
		"kubernetes_host":      l.cp.ServerURL(),
		"kubernetes_ca_cert":   string(l.cp.CACert()),
		"token_reviewer_jwt":   tr.Status.Token,
		"disable_local_ca_jwt": true,
	}, nil
}

// Vault implements lab.Lab: in HA mode the client follows whichever node answers.
func (l *Lab) Vault() *vault.Client { return l.vault.Client() }

// VaultAddrForESO implements lab.Lab: in HA mode a loopback proxy that, like the chart's
// vault-active Service, leads to the active node (else any unsealed one).
func (l *Lab) VaultAddrForESO() string {
	if l.active != nil {
		return "http://" + l.active.Addr()
	}
	return l.vault.Nodes()[0].Address()
}

// activeFirst orders the unsealed nodes' addresses, the active one first; sealed and dead
// nodes are left out, as a Service leaves out pods that are not ready.
func (l *Lab) activeFirst(ctx context.Context) []string {
	var clients []*vault.Client
	for _, n := range l.vault.Nodes() {
		clients = append(clients, n.Client())
	}
	var active, standby []string
	for _, st := range vaultops.Observe(ctx, clients) {
		if st.Err != nil || st.Health == nil || st.Health.Sealed {
			continue
		}
		hostport := strings.TrimPrefix(st.Address, "http://")
		if st.Active() {
			active = append(active, hostport)
		} else {
			standby = append(standby, hostport)
		}
	}
	return append(active, standby...)
}

// VaultNodes implements lab.Lab.
func (l *Lab) VaultNodes() []lab.VaultNode {
	var out []lab.VaultNode
	for _, n := range l.vault.Nodes() {
		out = append(out, n)
	}
	return out
}

// KMS implements lab.AutoUnsealer: the KMS stand-in's node, nil with a Shamir seal.
func (l *Lab) KMS() lab.VaultNode {
	if l.kms == nil {
		return nil
	}
	return l.kms.Nodes()[0]
}

// RaftPerformanceMultiplier implements lab.RaftTiming: read back from each node's log (the
// raft.Config Vault logs when it creates Raft); every node must agree.
func (l *Lab) RaftPerformanceMultiplier(ctx context.Context) (int, string, error) {
	if l.opts.VaultMode != lab.VaultHA {
		return 0, "", fmt.Errorf("a dev-mode Vault has no Raft storage")
	}
	got := -1
	for _, n := range l.vault.Nodes() {
		m, err := n.RaftPerformanceMultiplier()
		if err != nil {
			return 0, "", fmt.Errorf("%s: %w", n.Name(), err)
		}
		if got >= 0 && m != got {
			return 0, "", fmt.Errorf("the nodes run different multipliers (%d and %d on %s)", got, m, n.Name())
		}
		got = m
	}
	return got, "read back from the raft.Config each node logged when it created Raft (LeaderLeaseTimeout / 500ms)", nil
}

// VaultPeakMemory implements lab.VaultMemory: VmHWM of each Vault process (a restarted
// node's is its new process's).
func (l *Lab) VaultPeakMemory(ctx context.Context) (map[string]int64, string, error) {
	out := map[string]int64{}
	for _, n := range l.vault.Nodes() {
		v, err := n.PeakRSS()
		if err != nil {
			return nil, "", err
		}
		out[n.Name()] = v
	}
	return out, "VmHWM of each Vault process (/proc/PID/status)", nil
}

// VaultAuditFile implements lab.Lab: the Vault nodes are host processes, so they share one
// file in the lab's private work dir (removed on Close).
func (l *Lab) VaultAuditFile() string {
	return filepath.Join(l.workDir, "vault-audit", "audit.log")
}

// PostgresAdminDSN implements lab.Lab.
func (l *Lab) PostgresAdminDSN() string { return l.pg.AdminDSN("postgres") }

// PostgresDSN implements lab.Lab.
func (l *Lab) PostgresDSN(user, password, database string) string {
	return (&url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: l.pg.Addr(), Path: "/" + database, RawQuery: "sslmode=disable"}).String()
}

// PostgresAddrForVault implements lab.Lab.
func (l *Lab) PostgresAddrForVault() string { return l.pg.Addr() }

// Versions implements lab.Lab: every value is read from the running component.
func (l *Lab) Versions(ctx context.Context) (lab.Versions, error) {
	v := lab.Versions{Set: l.opts.Versions.Name}
	var errs []error
	var err error
	if v.Kubernetes, err = l.cp.KubernetesVersion(); err != nil {
		errs = append(errs, err)
	}
	if v.Etcd, err = l.cp.EtcdVersion(ctx); err != nil {
		errs = append(errs, err)
	}
	if v.Vault, err = l.vault.Nodes()[0].Version(ctx); err != nil {
		errs = append(errs, err)
	}
	if v.ESO, err = l.eso.Version(); err != nil {
		if declared := l.opts.Versions.ESO; declared != "" {
			// a binary built from a source tree (ESO_BIN) carries no module version: report
			// the version it was given as, marked so
			v.ESO, err = declared+" (declared; the binary carries no version)", nil
		} else {
			errs = append(errs, err)
		}
	}
	if v.Postgres, err = l.pg.Version(ctx); err != nil {
		errs = append(errs, err)
	}
	return v, errors.Join(errs...)
}

// Secrets implements lab.Lab.
func (l *Lab) Secrets() *redact.Set { return l.secrets }

// ArtifactsDir implements lab.Lab.
func (l *Lab) ArtifactsDir() string { return l.artifacts }

// WorkDir is the lab's private directory.
func (l *Lab) WorkDir() string { return l.workDir }

// KeysFile is where Vault's root token (and, in HA mode, unseal keys, or recovery keys with
// the transit seal) are kept, mode 0600.
func (l *Lab) KeysFile() string { return filepath.Join(l.workDir, "vault-keys.json") }

// Records lists every process the lab runs, for a state file.
func (l *Lab) Records() []proc.Record {
	var out []proc.Record
	if l.cp != nil {
		out = append(out, l.cp.Records()...)
	}
	if l.eso != nil {
		out = append(out, l.eso.Record())
	}
	if l.pg != nil {
		out = append(out, l.pg.Records()...)
	}
	if l.vault != nil {
		out = append(out, l.vault.Records()...)
	}
	if l.kms != nil {
		out = append(out, l.kms.Records()...)
	}
	return append(out, l.workloads.Records()...)
}

// ContainerIDs lists containers the lab runs (Postgres in container mode).
func (l *Lab) ContainerIDs() []string {
	if l.pg != nil && l.pg.ContainerID() != "" {
		return []string{l.pg.ContainerID()}
	}
	return nil
}

func (l *Lab) addFront(f *tcpproxy.Proxy) {
	l.frontsMu.Lock()
	defer l.frontsMu.Unlock()
	l.fronts = append(l.fronts, f)
}

// Close implements lab.Lab: stops workloads, Vault, the KMS Vault, ESO, Postgres and the control plane, then
// removes the work dir it created (the artifacts dir too, unless it was given explicitly).
func (l *Lab) Close(ctx context.Context) error {
	var errs []error
	if err := l.workloads.StopAll(lab.StopGrace); err != nil {
		errs = append(errs, err)
	}
	l.frontsMu.Lock()
	for _, f := range l.fronts {
		f.Close()
	}
	l.fronts = nil
	l.frontsMu.Unlock()
	if l.active != nil {
		l.active.Close()
	}
	if l.vault != nil {
		if err := l.vault.Stop(lab.StopGrace); err != nil {
			errs = append(errs, fmt.Errorf("stop vault: %w", err))
		}
	}
	if l.kms != nil { // after the cluster it unseals
		if err := l.kms.Stop(lab.StopGrace); err != nil {
			errs = append(errs, fmt.Errorf("stop the KMS vault: %w", err))
		}
	}
	if l.eso != nil {
		if err := l.eso.Stop(lab.StopGrace); err != nil {
			errs = append(errs, fmt.Errorf("stop ESO: %w", err))
		}
	}
	if l.pg != nil {
		if err := l.pg.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop postgres: %w", err))
		}
	}
	if l.cp != nil {
		if err := l.cp.Stop(lab.StopGrace); err != nil {
			errs = append(errs, fmt.Errorf("stop control plane: %w", err))
		}
	}
	if l.ownWork && len(errs) == 0 {
		if err := os.RemoveAll(l.workDir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", l.workDir, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("lab left things behind: %w (work dir kept: %s)", errors.Join(errs...), l.workDir)
	}
	return nil
}
