// Package lab is the one interface scenarios see, whatever runs underneath: a Kubernetes
// API, a Vault (dev mode or a 3-node Raft cluster), a Postgres, a way to run bookstore
// workloads, and the versions actually running. Backends live under lab/internal.
package lab

import (
	"context"
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
	BackendAuto     = "auto"
)

// VaultMode selects the Vault topology.
type VaultMode string

const (
	VaultDev VaultMode = "dev" // one in-memory dev server (chapter 05)
	VaultHA  VaultMode = "ha"  // three Raft nodes, Shamir-sealed (chapter 15.05)
)

// Lab is a running environment.
type Lab interface {
	// Backend names the backend ("embedded" or "kind").
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
	// PostgresAdminDSN is a superuser DSN the harness can use.
	PostgresAdminDSN() string
	// PostgresAddrForVault is host:port of Postgres as Vault's database engine reaches it.
	PostgresAddrForVault() string
	// RunWorkload runs a bookstore workload with a Secret's data as its environment.
	RunWorkload(ctx context.Context, spec WorkloadSpec) (Workload, error)
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
	// Kill stops the node abruptly (SIGKILL for a process, force-delete for a pod).
	Kill(ctx context.Context) error
	// Restart starts a killed node again on the same storage. A Raft node comes back sealed.
	Restart(ctx context.Context) error
	// Unseal unseals the node with the keys the lab keeps.
	Unseal(ctx context.Context) error
}

// WorkloadSpec describes a bookstore workload.
type WorkloadSpec struct {
	Name      string   // e.g. "catalog"
	Namespace string   // where its Secret lives
	Secret    string   // the Secret whose data becomes the environment
	Command   []string // embedded: binary and args; kind: container args
	Image     string   // kind: the container image
	Env       map[string]string
	Port      int  // the port it serves on (0: a batch job)
	Job       bool // runs to completion
}

// Workload is a running (or finished) workload.
type Workload interface {
	// URL reaches the workload's port from the harness ("" for a job).
	URL() string
	// Wait waits for a job to finish and returns its error.
	Wait(ctx context.Context) error
	// Stop stops it.
	Stop(ctx context.Context) error
}

// Versions are read from the running components.
type Versions struct {
	Kubernetes string `json:"kubernetes"`
	Etcd       string `json:"etcd,omitempty"`
	Vault      string `json:"vault"`
	VaultChart string `json:"vaultChart,omitempty"`
	ESO        string `json:"eso"`
	ESOChart   string `json:"esoChart,omitempty"`
	Postgres   string `json:"postgres"`
}

// Options configure a lab; backends ignore what does not apply to them.
type Options struct {
	Backend      string    // embedded | kind | auto
	VaultMode    VaultMode // dev (default) | ha
	Versions     versions.Set
	WorkDir      string    // temporary files; default: a new temp dir, removed on Close
	ArtifactsDir string    // component logs; default: WorkDir/artifacts (kept when set explicitly)
	CacheDir     string    // component builds; default: UserCacheDir/secretslab
	PostgresMode string    // embedded: auto | host | container
	Progress     io.Writer // progress lines; nil: discarded
}

// Timeouts shared by backends.
const (
	StartTimeout = 3 * time.Minute
	StopGrace    = 10 * time.Second
)
