// Package vaultproc runs Vault as host processes on 127.0.0.1: one dev-mode server, or an
// N-node Raft cluster sealed with Shamir keys or auto-unsealed by a transit seal (StartKMS
// starts the Vault whose transit engine plays the KMS). Processes go through internal/proc (one
// redacted log per node), and bootstrap goes through internal/vaultops.
package vaultproc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretslab/secretslab/internal/proc"
	"github.com/secretslab/secretslab/internal/redact"
	"github.com/secretslab/secretslab/internal/vaultops"
)

// Key shares of the Raft cluster's Shamir seal: 3 keys, any 2 of which unseal a node. A
// threshold below the share count means one lost key does not lock the lab out, and more
// than one key is needed, as in any real deployment. The keys live in Options.KeysFile.
const (
	KeyShares    = 3
	KeyThreshold = 2
)

// Bounds of the waits. Generous for a loaded 2-CPU machine, but bounded.
const (
	answerTimeout = time.Minute // a started process answers on its API port
	unsealTimeout = time.Minute // a node reports unsealed after the keys
	// exactly one node is active. Vault's Raft heartbeat and election timeouts are 15s by
	// default (performance_multiplier 5), so a failover alone takes 15-30s or more.
	activeTimeout  = 2 * time.Minute
	votersTimeout  = 2 * time.Minute // autopilot promoted every joined node to voter
	kvReadyTimeout = time.Minute     // secret/ answers as KV v2
	// stabilization replaces autopilot's default server_stabilization_time (10s) to reach
	// N voters sooner; promotion itself still goes through autopilot.
	stabilization = 3 * time.Second
)

// Options configure a cluster.
type Options struct {
	Name     string      // node names are NAME-0, NAME-1... (default "vault")
	Binary   string      // the vault binary
	WorkDir  string      // configs, Raft data and Vault's HOME go under it
	LogDir   string      // one log per node: vault-0.log, vault-1.log... (default WorkDir/logs)
	KeysFile string      // root token and unseal keys, mode 0600 (default WorkDir/vault-keys.json)
	Redact   *redact.Set // receives the root token and unseal keys; masks them in the logs
	// PerformanceMultiplier is performance_multiplier in the Raft storage stanza (0: not
	// written, Vault's default).
	PerformanceMultiplier int
	// Seal, when set, auto-unseals the Raft nodes with seal "transit" (see StartKMS): init
	// returns recovery keys instead of unseal keys, and a node unseals itself at start.
	Seal *TransitSeal
}

// TransitSeal is where a transit seal finds its key: a Vault's transit engine standing in for
// a cloud KMS. Token may only encrypt and decrypt with KeyName; it reaches the nodes through
// their environment (VAULT_TOKEN, which the transit seal reads), never a file or the command line.
type TransitSeal struct {
	Address   string // http://127.0.0.1:PORT of the KMS Vault
	Token     string
	KeyName   string
	MountPath string // "transit/"
}

// Cluster is a running Vault: one dev server or N Raft nodes.
type Cluster struct {
	opts      Options
	dev       bool
	rootToken string
	nodes     []*Node
}

// Node is one Vault server process. It implements lab.VaultNode.
type Node struct {
	cluster *Cluster
	name    string
	addr    string // http://127.0.0.1:PORT
	spec    proc.Spec
	client  *api.Client

	mu sync.Mutex
	p  *proc.Process
}

func (o Options) withDefaults() (Options, error) {
	if o.Binary == "" || o.WorkDir == "" {
		return o, errors.New("vaultproc: Options.Binary and Options.WorkDir are required")
	}
	if o.Name == "" {
		o.Name = "vault"
	}
	if o.LogDir == "" {
		o.LogDir = filepath.Join(o.WorkDir, "logs")
	}
	if o.KeysFile == "" {
		o.KeysFile = filepath.Join(o.WorkDir, "vault-keys.json")
	}
	if o.Redact == nil {
		o.Redact = &redact.Set{}
	}
	// Vault's own HOME, so that nothing (token helper files, caches) lands in the real home
	if err := os.MkdirAll(filepath.Join(o.WorkDir, "home"), 0o700); err != nil {
		return o, fmt.Errorf("vaultproc: %w", err)
	}
	return o, nil
}

func (c *Cluster) newNode(i, port int, args []string, env ...string) (*Node, error) {
	name := c.opts.Name + "-" + strconv.Itoa(i)
	dir := filepath.Join(c.opts.WorkDir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("vaultproc: %w", err)
	}
	addr := "http://127.0.0.1:" + strconv.Itoa(port)
	cl, err := vaultops.NewClient(addr, c.rootToken)
	if err != nil {
		return nil, err
	}
	n := &Node{cluster: c, name: name, addr: addr, client: cl, spec: proc.Spec{
		Name: name, Path: c.opts.Binary, Args: args, Dir: dir, LogDir: c.opts.LogDir, Redact: c.opts.Redact,
		Env: append([]string{"HOME=" + filepath.Join(c.opts.WorkDir, "home")}, env...),
	}}
	c.nodes = append(c.nodes, n)
	return n, nil
}

// StartDev starts one dev-mode server with a random root token and KV v2 at secret/.
func StartDev(ctx context.Context, opts Options) (*Cluster, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	// registered before the process starts: the dev banner prints it
	opts.Redact.Add(token)
	port, err := freePortPair()
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, dev: true, rootToken: token}
	// the token goes through the environment: the command line is visible to ps
	n, err := c.newNode(0, port, []string{"server", "-dev",
		"-dev-listen-address=127.0.0.1:" + strconv.Itoa(port), "-dev-no-store-token"},
		"VAULT_DEV_ROOT_TOKEN_ID="+token)
	if err != nil {
		return nil, err
	}
	if err := c.bootDev(ctx, n); err != nil {
		return nil, errors.Join(fmt.Errorf("start vault dev server: %w", err), c.Stop(5*time.Second))
	}
	return c, nil
}

func (c *Cluster) bootDev(ctx context.Context, n *Node) error {
	if err := n.start(ctx); err != nil {
		return err
	}
	ctx, stop := c.watch(ctx)
	defer stop()
	if _, err := vaultops.WaitUnsealed(ctx, n.client, unsealTimeout); err != nil {
		return c.explain(ctx, err)
	}
	if _, err := vaultops.WaitOneActive(ctx, []*api.Client{n.client}, activeTimeout); err != nil {
		return c.explain(ctx, err)
	}
	return c.explain(ctx, checkKVv2(ctx, n.client))
}

// StartRaft starts an N-node Raft cluster and bootstraps it: init node 0 (KeyShares keys,
// KeyThreshold to unseal), save the keys to KeysFile, unseal it; join and unseal the
// others; wait for N voters and one active node; mount KV v2 at secret/ as dev mode has.
func StartRaft(ctx context.Context, opts Options, nodes int) (*Cluster, error) {
	if nodes < 1 {
		return nil, fmt.Errorf("vaultproc: %d raft nodes", nodes)
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ports, err := proc.FreePorts(2 * nodes)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts}
	for i := 0; i < nodes; i++ {
		apiPort, clusterPort := ports[2*i], ports[2*i+1]
		cfg := filepath.Join(opts.WorkDir, opts.Name+"-"+strconv.Itoa(i), "vault.hcl")
		var env []string
		if opts.Seal != nil {
			env = append(env, "VAULT_TOKEN="+opts.Seal.Token)
		}
		n, err := c.newNode(i, apiPort, []string{"server", "-config=" + cfg}, env...)
		if err != nil {
			return nil, err
		}
		if err := writeRaftConfig(cfg, n.name, filepath.Join(n.spec.Dir, "data"), apiPort, clusterPort, opts.PerformanceMultiplier, opts.Seal); err != nil {
			return nil, err
		}
	}
	if err := c.bootRaft(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("start vault raft cluster: %w", err), c.Stop(5*time.Second))
	}
	return c, nil
}

func writeRaftConfig(path, nodeID, dataDir string, apiPort, clusterPort, perfMult int, seal *TransitSeal) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("vaultproc: %w", err)
	}
	if perfMult < 0 {
		return fmt.Errorf("vaultproc: performance_multiplier %d: want 0 (Vault's default) or more", perfMult)
	}
	extra := ""
	if perfMult > 0 {
		extra = fmt.Sprintf("\n  performance_multiplier = %d", perfMult)
	}
	hcl := fmt.Sprintf(`ui            = false
disable_mlock = true
api_addr      = "http://127.0.0.1:%[1]d"
cluster_addr  = "https://127.0.0.1:%[2]d"

storage "raft" {
  path    = %[3]q
  node_id = %[4]q%[5]s
}

listener "tcp" {
  address         = "127.0.0.1:%[1]d"
  cluster_address = "127.0.0.1:%[2]d"
  tls_disable     = true
}
`, apiPort, clusterPort, dataDir, nodeID, extra)
	if seal != nil {
		// the token comes from VAULT_TOKEN in the node's environment (the transit seal reads it)
		hcl += fmt.Sprintf(`
seal "transit" {
  address    = %q
  key_name   = %q
  mount_path = %q
}
`, seal.Address, seal.KeyName, seal.MountPath)
	}
	if err := os.WriteFile(path, []byte(hcl), 0o600); err != nil {
		return fmt.Errorf("vaultproc: write %s: %w", path, err)
	}
	return nil
}

func (c *Cluster) bootRaft(ctx context.Context) error {
	for _, n := range c.nodes {
		if err := n.start(ctx); err != nil {
			return err
		}
	}
	ctx, stop := c.watch(ctx)
	defer stop()
	first := c.nodes[0]
	var keys *vaultops.KeyFile
	var err error
	if c.opts.Seal != nil {
		keys, err = vaultops.InitRecovery(ctx, first.client, KeyShares, KeyThreshold, c.opts.Redact)
	} else {
		keys, err = vaultops.Init(ctx, first.client, KeyShares, KeyThreshold, c.opts.Redact)
	}
	if err != nil {
		return c.explain(ctx, err)
	}
	c.rootToken = keys.RootToken
	for _, n := range c.nodes {
		n.client.SetToken(keys.RootToken)
	}
	if err := vaultops.SaveKeys(c.opts.KeysFile, keys); err != nil {
		return err
	}
	if err := first.unseal(ctx, keys); err != nil {
		return c.explain(ctx, err)
	}
	if _, err := vaultops.WaitOneActive(ctx, []*api.Client{first.client}, activeTimeout); err != nil {
		return c.explain(ctx, err)
	}
	if len(c.nodes) > 1 {
		if err := vaultops.SetServerStabilizationTime(ctx, first.client, stabilization); err != nil {
			return c.explain(ctx, err)
		}
	}
	for _, n := range c.nodes[1:] {
		if err := vaultops.JoinRaft(ctx, n.client, first.addr); err != nil {
			return c.explain(ctx, err)
		}
		if err := n.unseal(ctx, keys); err != nil {
			return c.explain(ctx, err)
		}
	}
	if _, err := vaultops.WaitVoters(ctx, first.client, len(c.nodes), votersTimeout); err != nil {
		return c.explain(ctx, err)
	}
	i, err := vaultops.WaitOneActive(ctx, c.clients(), activeTimeout)
	if err != nil {
		return c.explain(ctx, err)
	}
	active := c.nodes[i].client
	if err := active.Sys().MountWithContext(ctx, "secret", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		return c.explain(ctx, fmt.Errorf("mount kv v2 at secret/: %w", err))
	}
	return c.explain(ctx, checkKVv2(ctx, active))
}

// checkKVv2 verifies that secret/ is a KV v2 mount and waits until it serves requests
// (a new KV v2 mount answers "upgrading" for a moment).
func checkKVv2(ctx context.Context, c *api.Client) error {
	mounts, err := c.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return fmt.Errorf("list mounts: %w", err)
	}
	m, ok := mounts["secret/"]
	if !ok || m.Type != "kv" || m.Options["version"] != "2" {
		return fmt.Errorf("secret/ is not a KV v2 mount (found: %v)", m)
	}
	return proc.WaitFor(ctx, "KV v2 at secret/ to answer secret/config", kvReadyTimeout, 250*time.Millisecond, nil,
		func(ctx context.Context) (bool, error) {
			_, err := c.Logical().ReadWithContext(ctx, "secret/config")
			return err == nil, err
		})
}

// unseal submits the Shamir keys and waits until the node reports unsealed. A node with a
// transit seal unseals itself (after init, after a Raft join, at start): nothing is
// submitted, only the wait remains.
func (n *Node) unseal(ctx context.Context, keys *vaultops.KeyFile) error {
	if n.cluster.opts.Seal == nil {
		if err := vaultops.Unseal(ctx, n.client, keys.UnsealKeys); err != nil {
			return err
		}
	}
	_, err := vaultops.WaitUnsealed(ctx, n.client, unsealTimeout)
	return err
}

// start launches the node's process and waits until its API answers (sealed or not).
func (n *Node) start(ctx context.Context) error {
	n.mu.Lock()
	if n.p != nil && n.p.Running() {
		n.mu.Unlock()
		return fmt.Errorf("%s is already running (pid %d)", n.name, n.p.PID)
	}
	p, err := proc.Start(n.spec)
	if err == nil {
		n.p = p
	}
	n.mu.Unlock()
	if err != nil {
		return err
	}
	return proc.WaitFor(ctx, n.name+" to answer on "+n.addr, answerTimeout, 250*time.Millisecond, p,
		func(ctx context.Context) (bool, error) {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			_, err := n.client.Sys().SealStatusWithContext(ctx)
			return err == nil, err
		})
}

// watch returns a context that ends, with the exit as its cause, when a node process exits.
func (c *Cluster) watch(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	for _, n := range c.nodes {
		if p := n.Process(); p != nil {
			go func() {
				select {
				case <-p.Done():
					cancel(fmt.Errorf("%v (log: %s)", p.ExitError(), p.LogPath))
				case <-ctx.Done():
				}
			}()
		}
	}
	return ctx, func() { cancel(nil) }
}

// explain adds to err the reason ctx ended, when a node process exited meanwhile.
func (c *Cluster) explain(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
		return fmt.Errorf("%w; %v", err, cause)
	}
	return err
}

func (c *Cluster) clients() []*api.Client {
	out := make([]*api.Client, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.client
	}
	return out
}

// freePortPair finds a free port whose successor is free too: a dev server listens for
// cluster traffic on its API port + 1 and has no flag to move it.
func freePortPair() (int, error) {
	for i := 0; i < 50; i++ {
		p, err := proc.FreePort()
		if err != nil {
			return 0, err
		}
		var ls []net.Listener
		for _, q := range []int{p, p + 1} {
			if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(q)); err == nil {
				ls = append(ls, l)
			}
		}
		for _, l := range ls {
			l.Close()
		}
		if len(ls) == 2 {
			return p, nil
		}
	}
	return 0, errors.New("vaultproc: no two consecutive free loopback ports found")
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("vaultproc: random root token: %w", err)
	}
	// Vault refuses custom token IDs with a period or a reserved prefix such as "hvs."
	return "devroot" + hex.EncodeToString(b), nil
}

// Nodes lists the servers: one in dev mode, N in Raft mode.
func (c *Cluster) Nodes() []*Node { return append([]*Node(nil), c.nodes...) }

// RootToken is the root token, for the lab's own admin client. Never print it.
func (c *Cluster) RootToken() string { return c.rootToken }

// KeysFile is where the root token and unseal keys are kept (Raft mode only).
func (c *Cluster) KeysFile() string { return c.opts.KeysFile }

// Client is an admin (root token) client of the first node that runs and is unsealed;
// standbys forward requests to the active node. Falls back to node 0.
func (c *Cluster) Client() *api.Client {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, n := range c.nodes {
		if p := n.Process(); p == nil || !p.Running() {
			continue
		}
		if s := vaultops.Observe(ctx, []*api.Client{n.client})[0]; s.Err == nil && !s.Health.Sealed {
			return n.client
		}
	}
	return c.nodes[0].client
}

// Active waits (bounded) until exactly one node is active and returns it.
func (c *Cluster) Active(ctx context.Context) (*Node, error) {
	i, err := vaultops.WaitOneActive(ctx, c.clients(), activeTimeout)
	if err != nil {
		return nil, err
	}
	return c.nodes[i], nil
}

// Records lists the nodes' current processes.
func (c *Cluster) Records() []proc.Record {
	var out []proc.Record
	for _, n := range c.nodes {
		if p := n.Process(); p != nil {
			out = append(out, p.Record)
		}
	}
	return out
}

// Stop stops every node (SIGTERM, then SIGKILL after grace), last node first.
func (c *Cluster) Stop(grace time.Duration) error {
	var errs []error
	for i := len(c.nodes) - 1; i >= 0; i-- {
		if p := c.nodes[i].Process(); p != nil {
			if err := p.Stop(grace); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Name is the node name (vault-0, vault-1...), also the base name of its log.
func (n *Node) Name() string { return n.name }

// Address is the node's API address, http://127.0.0.1:PORT.
func (n *Node) Address() string { return n.addr }

// Client is the admin (root token) client pinned to this node. It is shared: clone it
// before changing its token or settings.
func (n *Node) Client() *api.Client { return n.client }

// Process is the node's current process (a new one after Restart).
func (n *Node) Process() *proc.Process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.p
}

// KillMethod says how Kill stops the node (lab.KillMethod).
func (n *Node) KillMethod() string { return "SIGKILL of the Vault process" }

// Kill stops the node with SIGKILL.
func (n *Node) Kill(ctx context.Context) error {
	if p := n.Process(); p != nil {
		return p.Kill()
	}
	return nil
}

// Restart starts a stopped node again with the same configuration and storage and waits
// until its API answers. A Shamir-sealed Raft node comes back sealed (see Unseal); a node with
// a transit seal unseals itself, and when the seal's Vault does not answer, Vault 1.17 exits
// at start ("error parsing Seal configuration: ... connection refused") and Restart returns that exit. A dev server comes
// back unsealed but empty: its storage was in memory.
func (n *Node) Restart(ctx context.Context) error {
	if err := n.start(ctx); err != nil {
		return fmt.Errorf("restart %s: %w", n.name, err)
	}
	if n.cluster.dev {
		if _, err := vaultops.WaitUnsealed(ctx, n.client, unsealTimeout); err != nil {
			return fmt.Errorf("restart %s: %w", n.name, err)
		}
	}
	return nil
}

// ReadFile implements lab.VaultNode: the node is a host process, so it sees the host's files.
func (n *Node) ReadFile(_ context.Context, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// RemoveFile implements lab.VaultNode.
func (n *Node) RemoveFile(_ context.Context, path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Unseal unseals a Raft node with the keys saved in KeysFile and waits until it reports
// unsealed. A node with a transit seal unseals itself: Unseal submits nothing and only waits
// (bounded) until it reports unsealed. A dev server unseals itself at start; its key is never
// kept, so a dev server that was sealed through the API cannot be unsealed again.
func (n *Node) Unseal(ctx context.Context) error {
	if n.cluster.dev {
		st, err := n.client.Sys().SealStatusWithContext(ctx)
		if err != nil {
			return fmt.Errorf("unseal %s: %w", n.name, err)
		}
		if st.Sealed {
			return fmt.Errorf("unseal %s: a dev server's unseal key is not kept", n.name)
		}
		return nil
	}
	if n.cluster.opts.Seal != nil {
		if err := n.unseal(ctx, nil); err != nil {
			return fmt.Errorf("%s (transit seal) to unseal itself: %w", n.name, err)
		}
		return nil
	}
	keys, err := vaultops.LoadKeys(n.cluster.opts.KeysFile)
	if err != nil {
		return fmt.Errorf("unseal %s: %w", n.name, err)
	}
	if err := n.unseal(ctx, keys); err != nil {
		return fmt.Errorf("unseal %s: %w", n.name, err)
	}
	return nil
}

// Log is what the node's server wrote since its process was last started (redacted): the
// node's log file from the last start marker proc writes.
func (n *Node) Log(ctx context.Context) (string, error) {
	path := filepath.Join(n.cluster.opts.LogDir, n.name+".log")
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the log of %s: %w", n.name, err)
	}
	s := string(b)
	if m := startMarker.FindAllStringIndex(s, -1); len(m) > 0 {
		s = s[m[len(m)-1][0]:]
	}
	return s, nil
}

// startMarker is the line proc.Start writes before each start of a process.
var startMarker = regexp.MustCompile(`(?m)^--- \S+: starting `)

// Version reads the server's version from sys/seal-status.
func (n *Node) Version(ctx context.Context) (string, error) {
	st, err := n.client.Sys().SealStatusWithContext(ctx)
	if err != nil {
		return "", fmt.Errorf("read version of %s: %w", n.name, err)
	}
	return st.Version, nil
}

// Replace stops the node gracefully and starts binary in its place, with the same
// configuration and storage, as a rolling upgrade does; it waits until the API answers. A
// Raft node comes back sealed (see Unseal).
func (n *Node) Replace(ctx context.Context, binary string, grace time.Duration) error {
	if p := n.Process(); p != nil && p.Running() {
		if err := p.Stop(grace); err != nil {
			return fmt.Errorf("stop %s for the upgrade: %w", n.name, err)
		}
	}
	n.mu.Lock()
	n.spec.Path = binary
	n.mu.Unlock()
	if err := n.start(ctx); err != nil {
		return fmt.Errorf("start %s on %s: %w", n.name, binary, err)
	}
	return nil
}

// LogPath is the node's log file (every process of the node appends to it).
func (n *Node) LogPath() string { return filepath.Join(n.spec.LogDir, n.spec.Name+".log") }

// PeakRSS reads VmHWM (the peak resident set size) of the node's current process from
// /proc/PID/status, in bytes. A restarted node's peak is its new process's.
func (n *Node) PeakRSS() (int64, error) {
	p := n.Process()
	if p == nil || !p.Running() {
		return 0, fmt.Errorf("%s is not running", n.name)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Record.PID))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", n.name, err)
	}
	return ParseVmHWM(string(b))
}

// ParseVmHWM returns VmHWM of a /proc/PID/status text, in bytes.
func ParseVmHWM(status string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		rest, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmHWM line %q: want \"N kB\"", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmHWM line %q: %w", line, err)
		}
		return kb * 1024, nil
	}
	return 0, errors.New("no VmHWM line in the process status")
}

// RaftPerformanceMultiplier reads the multiplier the node's Raft runs with from the last
// "creating Raft" line of its log: Vault multiplies hashicorp/raft's timeouts by
// performance_multiplier and logs the resulting raft.Config.
func (n *Node) RaftPerformanceMultiplier() (int, error) {
	b, err := os.ReadFile(n.LogPath())
	if err != nil {
		return 0, err
	}
	return ParseRaftMultiplier(string(b))
}

// raftBaseLeaderLease is hashicorp/raft's DefaultConfig LeaderLeaseTimeout, which Vault's
// raft backend multiplies by performance_multiplier (physical/raft applyConfigSettings).
// The election and heartbeat timeouts are no measure: a node that joins a cluster logs them
// three times larger for its first election (initialTimeoutMultiplier, Vault 1.17).
const raftBaseLeaderLease = 500 * time.Millisecond

// ParseRaftMultiplier finds the last "creating Raft" log line of a Vault log and returns its
// LeaderLeaseTimeout divided by raft's default (500 ms): the performance_multiplier in effect.
func ParseRaftMultiplier(log string) (int, error) {
	i := strings.LastIndex(log, "creating Raft")
	if i < 0 {
		return 0, errors.New(`no "creating Raft" line in the log`)
	}
	line := log[i:]
	if j := strings.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	const key = "LeaderLeaseTimeout:"
	k := strings.Index(line, key)
	if k < 0 {
		return 0, errors.New(`the "creating Raft" line has no LeaderLeaseTimeout`)
	}
	v := line[k+len(key):]
	if e := strings.IndexAny(v, ", }"); e >= 0 {
		v = v[:e]
	}
	ns, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("LeaderLeaseTimeout %q: %w", v, err)
	}
	d := time.Duration(ns)
	if d <= 0 || d%raftBaseLeaderLease != 0 {
		return 0, fmt.Errorf("LeaderLeaseTimeout %s is not a whole multiple of %s", d, raftBaseLeaderLease)
	}
	return int(d / raftBaseLeaderLease), nil
}
