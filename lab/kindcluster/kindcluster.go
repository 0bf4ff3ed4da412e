// Package kindcluster is e2e-framework's cluster provider (support.E2EClusterProvider) on
// sigs.k8s.io/kind's Go library. e2e-framework's own support/kind runs the kind binary (and
// `go install`s it when missing); this one calls kind's pkg/cluster, so nothing is downloaded
// or shelled out to at run time. The kind backend uses it, and e2e suites can too:
//
//	envfuncs.CreateClusterWithConfig(kindcluster.New(), "secretslab", "kind-config.yaml")
package kindcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/e2e-framework/klient"
	"sigs.k8s.io/e2e-framework/support"
	"sigs.k8s.io/kind/pkg/cluster"

	"github.com/secretslab/secretslab/internal/docker"
)

// DefaultNodeImage is kind's node image repository; WithVersion picks its tag.
const DefaultNodeImage = "kindest/node"

// Cluster is a kind cluster managed through kind's library.
type Cluster struct {
	provider   *cluster.Provider
	name       string
	nodeImage  string
	config     []byte
	kubeconfig string
	wait       time.Duration
	reuse      bool
	created    bool
	rest       *rest.Config
}

var _ support.E2EClusterProviderWithImageLoader = (*Cluster)(nil)

// New returns a provider with kind's Docker backend.
func New() *Cluster {
	return &Cluster{provider: cluster.NewProvider(cluster.ProviderWithDocker()), wait: 3 * time.Minute}
}

// SetDefaults implements support.E2EClusterProvider.
func (c *Cluster) SetDefaults() support.E2EClusterProvider { return c }

// WithName implements support.E2EClusterProvider.
func (c *Cluster) WithName(name string) support.E2EClusterProvider { c.name = name; return c }

// WithVersion implements support.E2EClusterProvider: the node image kindest/node:VERSION.
func (c *Cluster) WithVersion(version string) support.E2EClusterProvider {
	c.nodeImage = DefaultNodeImage + ":" + version
	return c
}

// WithPath implements support.E2EClusterProvider. There is no binary to point at: kind runs
// as a library, so the path is ignored.
func (c *Cluster) WithPath(string) support.E2EClusterProvider { return c }

// WithOpts implements support.E2EClusterProvider.
func (c *Cluster) WithOpts(opts ...support.ClusterOpts) support.E2EClusterProvider {
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithNodeImage sets the node image (e.g. an air-gapped mirror's).
func (c *Cluster) WithNodeImage(image string) *Cluster { c.nodeImage = image; return c }

// WithRawConfig sets the kind cluster configuration.
func (c *Cluster) WithRawConfig(config []byte) *Cluster { c.config = config; return c }

// WithReuse uses an existing cluster of the same name instead of failing.
func (c *Cluster) WithReuse(reuse bool) *Cluster { c.reuse = reuse; return c }

// WithKubeconfigPath sets where the kubeconfig is written (default: a temp file).
func (c *Cluster) WithKubeconfigPath(path string) *Cluster { c.kubeconfig = path; return c }

// Exists reports whether the cluster exists.
func (c *Cluster) Exists() (bool, error) {
	names, err := c.provider.List()
	if err != nil {
		return false, fmt.Errorf("list kind clusters: %w", err)
	}
	return slices.Contains(names, c.name), nil
}

// Created reports whether this provider created the cluster (rather than reusing it).
func (c *Cluster) Created() bool { return c.created }

// Create implements support.E2EClusterProvider; args are not used.
func (c *Cluster) Create(ctx context.Context, _ ...string) (string, error) {
	if err := docker.Ping(ctx); err != nil {
		return "", fmt.Errorf("kind needs a Docker engine: %w", err)
	}
	exists, err := c.Exists()
	if err != nil {
		return "", err
	}
	switch {
	case exists && !c.reuse:
		return "", fmt.Errorf("a kind cluster named %q already exists: reuse it (--reuse) or delete it (kind delete cluster --name %s)", c.name, c.name)
	case !exists:
		opts := []cluster.CreateOption{
			cluster.CreateWithWaitForReady(c.wait),
			cluster.CreateWithDisplayUsage(false), cluster.CreateWithDisplaySalutation(false),
			// kind writes the cluster into this file; ours is written below
			cluster.CreateWithKubeconfigPath(filepath.Join(os.TempDir(), "secretslab-kind-"+c.name+".kubeconfig-unused")),
		}
		if c.nodeImage != "" {
			opts = append(opts, cluster.CreateWithNodeImage(c.nodeImage))
		}
		if c.config != nil {
			opts = append(opts, cluster.CreateWithRawConfig(c.config))
		}
		c.created = true // a failed create may leave containers: Destroy removes them
		err := c.provider.Create(c.name, opts...)
		os.Remove(filepath.Join(os.TempDir(), "secretslab-kind-"+c.name+".kubeconfig-unused"))
		if err != nil {
			return "", fmt.Errorf("create kind cluster %s: %w", c.name, err)
		}
	}
	return c.writeKubeconfig()
}

// CreateWithConfig implements support.E2EClusterProvider.
func (c *Cluster) CreateWithConfig(ctx context.Context, configFile string) (string, error) {
	raw, err := os.ReadFile(configFile)
	if err != nil {
		return "", err
	}
	c.config = raw
	return c.Create(ctx)
}

func (c *Cluster) writeKubeconfig() (string, error) {
	raw, err := c.provider.KubeConfig(c.name, false)
	if err != nil {
		return "", fmt.Errorf("kubeconfig of %s: %w", c.name, err)
	}
	if c.kubeconfig == "" {
		f, err := os.CreateTemp("", "secretslab-kind-"+c.name+"-*.kubeconfig")
		if err != nil {
			return "", err
		}
		f.Close()
		c.kubeconfig = f.Name()
	}
	if err := os.WriteFile(c.kubeconfig, []byte(raw), 0o600); err != nil {
		return "", err
	}
	if c.rest, err = clientcmd.RESTConfigFromKubeConfig([]byte(raw)); err != nil {
		return "", err
	}
	return c.kubeconfig, nil
}

// GetKubeconfig implements support.E2EClusterProvider.
func (c *Cluster) GetKubeconfig() string { return c.kubeconfig }

// GenerateKubeconfig implements support.E2EClusterProvider: asks kind for the cluster's
// kubeconfig again and rewrites the kubeconfig file (and the REST config) with it. kind's CLI
// arguments (such as --internal) do not apply to the library: any argument is an error.
func (c *Cluster) GenerateKubeconfig(args ...string) (string, error) {
	if len(args) > 0 {
		return "", fmt.Errorf("kubeconfig of %s: arguments %q are not supported (kind runs as a library)", c.name, args)
	}
	return c.writeKubeconfig()
}

// GetKubectlContext implements support.E2EClusterProvider.
func (c *Cluster) GetKubectlContext() string { return "kind-" + c.name }

// KubernetesRestConfig implements support.E2EClusterProvider.
func (c *Cluster) KubernetesRestConfig() *rest.Config { return c.rest }

// WaitForControlPlane implements support.E2EClusterProvider: Create already waited for the
// node to be Ready; this waits until the API server answers through client.
func (c *Cluster) WaitForControlPlane(ctx context.Context, client klient.Client) error {
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := serverVersion(client.RESTConfig())
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after 1m waiting for the API server of kind cluster %s: %w", c.name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// ExportLogs implements support.E2EClusterProvider by refusing: kind's raw export copies
// every container log unredacted (Vault's dev banner prints the root token). The kind lab
// exports pod logs and events through its redactor on Close instead.
func (c *Cluster) ExportLogs(_ context.Context, dest string) error {
	return fmt.Errorf("kind's raw log export would write secret values unredacted to %s; the lab exports redacted logs on Close", dest)
}

// Destroy implements support.E2EClusterProvider: deletes the cluster if it exists.
func (c *Cluster) Destroy(context.Context) error {
	exists, err := c.Exists()
	if err != nil || !exists {
		return err
	}
	if err := c.provider.Delete(c.name, ""); err != nil {
		return fmt.Errorf("delete kind cluster %s: %w (kind delete cluster --name %s)", c.name, err, c.name)
	}
	return nil
}

// LoadImage implements support.E2EClusterProviderWithImageLoader: a local Docker image into
// every node, as `kind load docker-image` does. args (kind CLI flags) are not used.
func (c *Cluster) LoadImage(ctx context.Context, image string, _ ...string) error {
	return docker.LoadIntoKind(ctx, c.name, []string{image}, nil, os.Stderr)
}

// LoadImageArchive implements support.E2EClusterProviderWithImageLoader (kind load
// image-archive). args (kind CLI flags) are not used.
func (c *Cluster) LoadImageArchive(ctx context.Context, archivePath string, _ ...string) error {
	return docker.LoadIntoKind(ctx, c.name, nil, []string{archivePath}, os.Stderr)
}

// Delete deletes the kind cluster name if it exists (for `lab down` when the lab that
// created it no longer runs).
func Delete(name string) error {
	c := New()
	c.name = name
	return c.Destroy(context.Background())
}

// serverVersion asks the API server for its version.
func serverVersion(cfg *rest.Config) (string, error) {
	if cfg == nil {
		return "", fmt.Errorf("no REST config")
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return "", err
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return "", err
	}
	return v.GitVersion, nil
}
