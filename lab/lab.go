// Package lab is the one interface scenarios see, whatever runs underneath: a Kubernetes
// API, a Vault (dev mode or a 3-node Raft cluster), a Postgres, a way to run bookstore
// workloads, and the versions actually running. Backends live under lab/internal.
package lab

import (
	"context"
	"fmt"
	"io"
	"time"

	vault "github.com/hashicorp/vault/api"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/secretslab/secretslab/internal/redact"
	"github.com/secretslab/secretslab/versions"
)

// Backend names.
const (
	BackendEmbedded = "embedded"
	BackendKind     = "kind"
	BackendCluster  = "cluster" // the cluster in KUBECONFIG: charts in namespaces named for the run
	BackendAuto     = "auto"
)

// VaultMode selects the Vault topology.
type VaultMode string

const (
	VaultDev VaultMode = "dev" // one in-memory dev server (chapter 05)
	VaultHA  VaultMode = "ha"  // three Raft nodes, Shamir-sealed or auto-unsealed (chapter 15.05)
)

// Seals of the HA cluster (Options.Seal).
const (
	SealShamir = "shamir" // unseal keys; a restarted node waits for them (the default)
	// SealTransit: a second, small Vault's transit engine plays the cloud KMS (the chapter's
	// seal "awskms" stand-in); the cluster gets recovery keys and a node unseals itself.
	SealTransit = "transit"
)

// AutoUnsealer is a lab whose HA cluster is auto-unsealed (Options.Seal transit).
type AutoUnsealer interface {
	// KMS is the Vault that plays the KMS, nil when the seal is Shamir. Kill it to take the
	// KMS away; Restart and Unseal (its own Shamir keys: its operator's business, not the
	// cluster's) bring it back.
	KMS() VaultNode
}

// KMSOf is l's KMS node, or nil when l has none.
func KMSOf(l Lab) VaultNode {
	if a, ok := l.(AutoUnsealer); ok {
		return a.KMS()
	}
	return nil
}

// VaultNodeLog is a VaultNode whose server log the harness can read (redacted): what the server
// wrote since it was last started by the harness (a process's log from its last start; a pod's
// container since the pod was created: the run that last exited, then the current one).
type VaultNodeLog interface {
	Log(ctx context.Context) (string, error)
}

// Lab is a running environment.
type Lab interface {
	// Backend names the backend ("embedded", "kind" or "cluster").
	Backend() string
	// Kubernetes access with admin rights.
	RESTConfig() *rest.Config
	Kube() kubernetes.Interface
	Dynamic() dynamic.Interface
	// KubeconfigPath is a kubeconfig file for users and tools.
	KubeconfigPath() string
	// VaultKubernetesAuthConfig is the data for Vault's auth/kubernetes/config on this
	// backend (kind: the in-cluster API address; embedded: the host API address, its CA and
	// a token reviewer JWT, with disable_local_ca_jwt since Vault runs outside a pod).
	VaultKubernetesAuthConfig(ctx context.Context) (map[string]any, error)
	// Vault is an admin client (root token) for the current active node.
	Vault() *vault.Client
	// VaultAddrForESO is the Vault address as the ESO controller reaches it.
	VaultAddrForESO() string
	// VaultNodes lists the Vault servers: one in dev mode, three in HA mode.
	VaultNodes() []VaultNode
	// VaultAuditFile is a file_path for a file audit device that every Vault node can write,
	// as the nodes see it (embedded: one file in the lab's work dir, shared by the node
	// processes; kind: a file in each pod's own filesystem). Read it with VaultNode.ReadFile.
	VaultAuditFile() string
	// PostgresAdminDSN is a superuser DSN the harness can use.
	PostgresAdminDSN() string
	// PostgresAddrForVault is host:port of Postgres as Vault's database engine reaches it.
	PostgresAddrForVault() string
	// PostgresDSN is a DSN for user on the bookstore's Postgres, reachable from the harness.
	PostgresDSN(user, password, database string) string
	// Deploy runs the workload a manifest describes (a Deployment, StatefulSet or Job of the
	// bookstore fixtures) and waits until it is ready, or complete for a Job. kind applies it;
	// embedded runs its pod template as a host process (or, for the postgres image, as a
	// database on the lab's Postgres), with the environment the pod would get.
	Deploy(ctx context.Context, manifest []byte) (Workload, error)
	// Versions reads the versions of the running components.
	Versions(ctx context.Context) (Versions, error)
	// Secrets are the values the lab knows must never be shown (root token, unseal keys,
	// passwords); logs are redacted with them and canary checks search for them.
	Secrets() *redact.Set
	// ArtifactsDir holds one log per component.
	ArtifactsDir() string
	// Close stops everything the lab started and removes its temporary files.
	Close(ctx context.Context) error
}

// VaultNode is one Vault server.
type VaultNode interface {
	Name() string
	Address() string
	// Client is an admin client pinned to this node.
	Client() *vault.Client
	// Kill stops the node abruptly, as a crash would (SIGKILL for a process; on kind SIGKILL of
	// the container from its node, then the pod force-deleted; see KillMethod).
	Kill(ctx context.Context) error
	// Restart starts a killed node again on the same storage. A Raft node comes back sealed.
	Restart(ctx context.Context) error
	// Unseal unseals the node with the keys the lab keeps.
	Unseal(ctx context.Context) error
	// ReadFile reads a file as this node sees it (embedded: the host's file; kind: the pod's,
	// through exec). A file that does not exist reads as nil, without an error.
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// RemoveFile removes a file as this node sees it; one already gone is no error.
	RemoveFile(ctx context.Context, path string) error
}

// KillMethod is a VaultNode that says how Kill stops it, for the report: the figures of a
// failover depend on it.
type KillMethod interface {
	KillMethod() string
}

// Workload is a running (or finished) workload.
type Workload interface {
	// Name is the workload's name.
	Name() string
	// URL reaches the workload's first port from the harness ("" when it has none).
	URL() string
	// Restart replaces the workload's pods (or process), which re-reads its environment,
	// as `kubectl rollout restart` does, and waits until it is ready again: Rollout with the
	// annotation kubectl.kubernetes.io/restartedAt.
	Restart(ctx context.Context) error
	// Rollout sets annotations on the pod template (as `kubectl patch` of
	// spec.template.metadata.annotations does, e.g. the `secret-rotation: <ts>` bump of
	// ch15.05) and waits until the rollout that starts is complete, as `kubectl rollout
	// status` does: every pod is a new one, started with the environment resolved now. New
	// pods are ready before old ones stop (a Deployment's default strategy at one replica:
	// maxSurge 1, maxUnavailable 0). Embedded: a new process behind the workload's stable
	// address (the Service's stand-in), which moves to it once it is ready; then the old one
	// gets SIGTERM. Kind: the Deployment is patched; URL is a port-forward to one pod, opened
	// again after the rollout.
	Rollout(ctx context.Context, annotations map[string]string) error
	// Stop removes the workload.
	Stop(ctx context.Context) error
}

// Versions are read from the running components.
type Versions struct {
	Set        string `json:"set,omitempty"` // the version set asked for (versions.yaml)
	Kubernetes string `json:"kubernetes"`
	Etcd       string `json:"etcd,omitempty"`
	Vault      string `json:"vault"`
	VaultChart string `json:"vaultChart,omitempty"`
	ESO        string `json:"eso"`
	ESOChart   string `json:"esoChart,omitempty"`
	Postgres   string `json:"postgres"`
}

// Upgrade names the versions an upgrade moves a lab to, and prebuilt binaries or CRDs for
// them (empty: built from the module proxy, or the chart's on kind).
type Upgrade struct {
	Versions   versions.Set
	ESOBin     string // embedded: TO_ESO_BIN
	VaultBin   string // embedded: TO_VAULT_BIN
	ESOCRDs    string // TO_ESO_CRDS: a file or dir
	VaultChart string // kind: TO_VAULT_CHART, a local chart dir or .tgz
	ESOChart   string // kind: TO_ESO_CHART
}

// Upgrader is a lab that can move in place to other versions, as an operator upgrades: ESO
// first (its CRDs applied server-side, then the controller), then Vault node by node
// (standbys first, the active node last, each unsealed and healthy before the next).
type Upgrader interface {
	Upgrade(ctx context.Context, to Upgrade) ([]UpgradeStep, error)
}

// Injector is a lab whose Vault chart can run the Vault Agent injector (kind and cluster; the
// embedded backend has no chart and no pods). Chapter 05 keeps it off (injector.enabled=false).
type Injector interface {
	// SetVaultInjector turns the chart's injector on or off (a helm upgrade of the Vault
	// release that changes injector.enabled alone) and waits until its Deployment is
	// available, or gone.
	SetVaultInjector(ctx context.Context, enabled bool) error
}

// UpgradeStep is one step an upgrade took, with its duration ("" Skipped when it ran).
type UpgradeStep struct {
	What    string        `json:"what"`
	Took    time.Duration `json:"took"`
	Skipped string        `json:"skipped,omitempty"`
}

// Options configure a lab; backends ignore what does not apply to them.
type Options struct {
	Backend      string    // embedded | kind | auto
	VaultMode    VaultMode // dev (default) | ha
	Seal         string    // ha: shamir (default) | transit (a KMS Vault first; recovery keys)
	Versions     versions.Set
	WorkDir      string // temporary files; default: a new temp dir, removed on Close
	ArtifactsDir string // component logs; default: WorkDir/artifacts (kept when set explicitly)
	CacheDir     string // component builds; default: UserCacheDir/secretslab
	// kind: chart sources (a local dir or .tgz; empty: the upstream repository at the pinned
	// version), a CRD file to apply instead of the ESO chart's installCRDs (embedded: a CRD
	// file or dir instead of the ESO module's, for an ESO given by ESO_BIN), images to load
	// into the nodes first, an existing cluster to reuse, and whether Close keeps the cluster.
	VaultChart, ESOChart, ESOCRDs string
	Preload                       []string
	Reuse, Keep                   bool
	ClusterName                   string
	// cluster: the kubeconfig of the cluster to run on (empty: KUBECONFIG, then
	// ~/.kube/config, current context) and the run's name, which names the namespaces the
	// charts go into (empty: secretslab-XXXXXX, random).
	Kubeconfig, RunName string
	// Bookstore is how the bookstore app runs: its image (kind) and binary (embedded).
	BookstoreImage  string
	BookstoreBinary string
	PostgresMode    string    // embedded: auto | host | container
	Progress        io.Writer // progress lines; nil: discarded
	// Secrets is where the lab registers every secret value it makes (nil: a new set). Pass
	// one to keep the values when Up fails, so a canary can still search what was written.
	Secrets *redact.Set
	// RaftPerformanceMultiplier is performance_multiplier in the Raft storage stanza of a
	// VaultHA lab (embedded: each node's config; kind and cluster: the chart's raft config).
	// 0 leaves Vault's default (5 in Vault 1.17). Env RaftPerformanceMultiplierEnv.
	RaftPerformanceMultiplier int
}

// RaftPerformanceMultiplierEnv names the variable that sets Options.RaftPerformanceMultiplier.
const RaftPerformanceMultiplierEnv = "VAULT_RAFT_PERFORMANCE_MULTIPLIER"

// VaultDefaultPerformanceMultiplier is what Vault uses when the stanza sets none (Vault 1.17,
// physical/raft: "performance_multiplier ... defaults to 5").
const VaultDefaultPerformanceMultiplier = 5

// RaftTiming is a lab that can say which Raft performance_multiplier its Vault nodes run
// with: read back from the running nodes when it can (how says from where), else the
// configured value (how says so).
type RaftTiming interface {
	RaftPerformanceMultiplier(ctx context.Context) (mult int, how string, err error)
}

// VaultMemory is a lab that can read each Vault server's peak resident memory (bytes, by
// node name) from its processes; how says what was read.
type VaultMemory interface {
	VaultPeakMemory(ctx context.Context) (peak map[string]int64, how string, err error)
}

// SecretsOf returns opts.Secrets, or a new set when it is nil.
func SecretsOf(opts Options) *redact.Set {
	if opts.Secrets != nil {
		return opts.Secrets
	}
	return &redact.Set{}
}

// SealOf is opts.Seal checked: "" is shamir; transit needs VaultMode ha.
func SealOf(opts Options) (string, error) {
	switch opts.Seal {
	case "", SealShamir:
		return SealShamir, nil
	case SealTransit:
		if opts.VaultMode != VaultHA {
			return "", fmt.Errorf("seal %q needs Vault HA (HA=1, --ha): a dev server has no seal to configure", opts.Seal)
		}
		return SealTransit, nil
	default:
		return "", fmt.Errorf("unknown seal %q: choose %s or %s", opts.Seal, SealShamir, SealTransit)
	}
}

// Timeouts shared by backends.
const (
	StartTimeout = 3 * time.Minute
	StopGrace    = 10 * time.Second
)
