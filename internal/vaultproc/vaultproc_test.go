package vaultproc_test

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretslab/secretslab/internal/proc"
	"github.com/secretslab/secretslab/internal/redact"
	"github.com/secretslab/secretslab/internal/vaultops"
	"github.com/secretslab/secretslab/internal/vaultproc"
	"github.com/secretslab/secretslab/lab"
)

var _ lab.VaultNode = (*vaultproc.Node)(nil)

func vaultBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("VAULT_BIN")
	if bin == "" {
		t.Skip("vault binary not found: set VAULT_BIN or run `make build`")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skip("vault binary not found: set VAULT_BIN or run `make build`")
	}
	return bin
}

func options(t *testing.T, bin string) vaultproc.Options {
	dir := t.TempDir()
	return vaultproc.Options{Binary: bin, WorkDir: dir, LogDir: filepath.Join(dir, "logs"),
		KeysFile: filepath.Join(dir, "keys", "vault-keys.json"), Redact: &redact.Set{}}
}

func port(t *testing.T, addr string) int {
	u, err := url.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// stopAndCheck stops the cluster and asserts that no process and no port is left.
func stopAndCheck(t *testing.T, c *vaultproc.Cluster) {
	t.Helper()
	recs := c.Records()
	if err := c.Stop(10 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for _, r := range recs {
		if r.Alive() {
			t.Errorf("%s (pid %d) still alive after Stop", r.Name, r.PID)
		}
	}
	for _, n := range c.Nodes() {
		if proc.PortInUse(port(t, n.Address())) {
			t.Errorf("%s: port of %s still accepts connections after Stop", n.Name(), n.Address())
		}
	}
}

// checkLogs asserts that no log contains a registered secret or an unmasked unseal key or
// root token line, and returns the logs' contents.
func checkLogs(t *testing.T, opts vaultproc.Options, c *vaultproc.Cluster) map[string][]byte {
	t.Helper()
	secrets := opts.Redact.Values()
	if !contains(secrets, c.RootToken()) {
		t.Error("the root token is not registered for redaction")
	}
	labelled := regexp.MustCompile(`(?i)(unseal key(?: \d+)?|root token): (\S+)`)
	logs := map[string][]byte{}
	for _, n := range c.Nodes() {
		path := filepath.Join(opts.LogDir, n.Name()+".log")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("log of %s: %v", n.Name(), err)
		}
		if len(b) == 0 {
			t.Errorf("log of %s is empty", n.Name())
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s contains a secret (%s)", path, redact.Fingerprint([]byte(s)))
			}
		}
		for _, m := range labelled.FindAllSubmatch(b, -1) {
			if string(m[2]) != redact.Mask {
				t.Errorf("%s has an unmasked %q line (value %s)", path, m[1], redact.Fingerprint(m[2]))
			}
		}
		logs[n.Name()] = b
	}
	return logs
}

// dumpLogs shows the end of each log (written through the redacting writer) after a
// failed start, before t.TempDir removes them.
func dumpLogs(t *testing.T, opts vaultproc.Options) {
	paths, _ := filepath.Glob(filepath.Join(opts.LogDir, "*.log"))
	for _, p := range paths {
		b, _ := os.ReadFile(p)
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		// mask once more, line by line: the file was redacted when written, this is belt and braces
		for i := range lines {
			lines[i] = opts.Redact.String(lines[i])
		}
		t.Logf("--- end of %s:\n%s", filepath.Base(p), strings.Join(lines, "\n"))
	}
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

func TestDev(t *testing.T) {
	bin := vaultBinary(t)
	ctx := context.Background()
	opts := options(t, bin)
	c, err := vaultproc.StartDev(ctx, opts)
	if err != nil {
		dumpLogs(t, opts)
		t.Fatal(err)
	}
	defer c.Stop(5 * time.Second)
	nodes := c.Nodes()
	if len(nodes) != 1 || nodes[0].Name() != "vault-0" {
		t.Fatalf("dev nodes: %d", len(nodes))
	}
	n := nodes[0]
	v, err := n.Version(ctx)
	if err != nil || v == "" {
		t.Fatalf("version %q: %v", v, err)
	}
	t.Logf("vault %s, dev server at %s, root token %s", v, n.Address(), redact.Fingerprint([]byte(c.RootToken())))

	// the token never appears on the command line
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(n.Process().PID) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(cmdline, []byte(c.RootToken())) {
		t.Error("the root token is on the command line")
	}

	kv := c.Client().KVv2("secret")
	want := "dev-probe-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := kv.Put(ctx, "lab/probe", map[string]any{"value": want}); err != nil {
		t.Fatalf("kv v2 put: %v", err)
	}
	got, err := kv.Get(ctx, "lab/probe")
	if err != nil {
		t.Fatalf("kv v2 get: %v", err)
	}
	if got.Data["value"] != want || got.VersionMetadata == nil || got.VersionMetadata.Version != 1 {
		t.Fatalf("kv v2 get returned other data or no version metadata")
	}
	if err := n.Unseal(ctx); err != nil { // a no-op on an unsealed dev server
		t.Fatal(err)
	}

	stopAndCheck(t, c)
	logs := checkLogs(t, opts, c)
	// the banner was printed, and masked (otherwise the checks above prove nothing)
	for _, line := range []string{"Unseal Key: " + redact.Mask, "Root Token: " + redact.Mask} {
		if !bytes.Contains(logs["vault-0"], []byte(line)) {
			t.Errorf("dev log lacks %q", line)
		}
	}
	if _, err := os.Stat(filepath.Join(opts.WorkDir, "home", ".vault-token")); err == nil {
		t.Error("dev server wrote a token file into its HOME")
	}
}

func TestRaftHA(t *testing.T) {
	bin := vaultBinary(t)
	ctx := context.Background()
	opts := options(t, bin)
	start := time.Now()
	c, err := vaultproc.StartRaft(ctx, opts, 3)
	if err != nil {
		dumpLogs(t, opts)
		t.Fatal(err)
	}
	defer c.Stop(5 * time.Second)
	t.Logf("3-node raft cluster bootstrapped in %s", time.Since(start).Round(100*time.Millisecond))

	fi, err := os.Stat(opts.KeysFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("keys file mode %v, want 0600", fi.Mode().Perm())
	}
	keys, err := vaultops.LoadKeys(opts.KeysFile)
	if err != nil {
		t.Fatal(err)
	}
	if keys.RootToken != c.RootToken() || len(keys.UnsealKeys) != vaultproc.KeyShares || keys.Threshold != vaultproc.KeyThreshold {
		t.Fatal("keys file does not hold the cluster's root token and key shares")
	}
	for _, k := range keys.UnsealKeys {
		if !contains(opts.Redact.Values(), k) {
			t.Errorf("unseal key %s not registered for redaction", redact.Fingerprint([]byte(k)))
		}
	}

	nodes := c.Nodes()
	clients := make([]*api.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = n.Client()
		v, err := n.Version(ctx)
		if err != nil || v == "" {
			t.Fatalf("version of %s %q: %v", n.Name(), v, err)
		}
		t.Logf("%s: vault %s at %s", n.Name(), v, n.Address())
	}
	rc, err := vaultops.RaftConfiguration(ctx, c.Client())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rc.Voters(), ","); got != "vault-0,vault-1,vault-2" {
		t.Fatalf("voters %q, configuration %s", got, rc)
	}
	active, err := c.Active(ctx)
	if err != nil {
		t.Fatal(err)
	}
	states := vaultops.Observe(ctx, clients)
	nActive := 0
	for _, s := range states {
		if s.Active() {
			nActive++
		}
	}
	if nActive != 1 {
		t.Fatalf("%d active nodes: %v", nActive, states)
	}

	kv := c.Client().KVv2("secret")
	if _, err := kv.Put(ctx, "lab/before", map[string]any{"value": "written-before-failover"}); err != nil {
		t.Fatalf("kv v2 put: %v", err)
	}

	// failover: kill the active node, another one takes over
	killed := active
	t.Logf("killing active node %s", killed.Name())
	if err := killed.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	next, err := c.Active(ctx)
	if err != nil {
		t.Fatalf("no new active node after killing %s: %v", killed.Name(), err)
	}
	failover := time.Since(t0)
	if next == killed {
		t.Fatalf("killed node %s still reported active", killed.Name())
	}
	t.Logf("failover: %s active %s after SIGKILL of %s", next.Name(), failover.Round(10*time.Millisecond), killed.Name())

	got, err := next.Client().KVv2("secret").Get(ctx, "lab/before")
	if err != nil || got.Data["value"] != "written-before-failover" {
		t.Fatalf("secret written before failover: %v", err)
	}
	if _, err := c.Client().KVv2("secret").Put(ctx, "lab/during", map[string]any{"value": "written-while-down"}); err != nil {
		t.Fatalf("kv v2 put while a node is down: %v", err)
	}
	leader, err := next.Client().Sys().LeaderWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	committed := leader.RaftCommittedIndex

	// the killed node comes back sealed, is unsealed with the saved keys, and catches up
	if err := killed.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := killed.Client().Sys().SealStatusWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Sealed {
		t.Fatalf("restarted raft node %s is not sealed", killed.Name())
	}
	t1 := time.Now()
	if err := killed.Unseal(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := vaultops.WaitHealthyVoters(ctx, next.Client(), 3, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := vaultops.WaitVoters(ctx, next.Client(), 3, time.Minute); err != nil {
		t.Fatal(err)
	}
	err = proc.WaitFor(ctx, killed.Name()+" to apply the writes made while it was down", time.Minute, 250*time.Millisecond, killed.Process(),
		func(ctx context.Context) (bool, error) {
			l, err := killed.Client().Sys().LeaderWithContext(ctx)
			if err != nil {
				return false, err
			}
			return l.RaftAppliedIndex >= committed, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Active(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again == killed {
		t.Logf("note: %s became active again", killed.Name())
	}
	t.Logf("%s rejoined: unsealed, healthy voter, caught up (applied >= %d) %s after unseal began", killed.Name(), committed, time.Since(t1).Round(10*time.Millisecond))

	stopAndCheck(t, c)
	checkLogs(t, opts, c)
}

func TestStartFailsCleanlyWithoutBinary(t *testing.T) {
	dir := t.TempDir()
	_, err := vaultproc.StartDev(context.Background(), vaultproc.Options{Binary: filepath.Join(dir, "no-vault"), WorkDir: dir})
	if err == nil || !strings.Contains(err.Error(), "no-vault") {
		t.Fatalf("want an error naming the missing binary, got %v", err)
	}
}

// TestTransitSeal: a 3-node Raft cluster auto-unsealed by the KMS stand-in's transit engine
// gets recovery keys, not unseal keys; after every node is killed and restarted each unseals
// itself (no sys/unseal request); with the KMS down a restarted node does not come up and its
// log says why; once the KMS is back (and unsealed by its own keys) the node unseals itself.
func TestTransitSeal(t *testing.T) {
	bin := vaultBinary(t)
	ctx := context.Background()
	kopts := options(t, bin)
	kms, seal, err := vaultproc.StartKMS(ctx, kopts)
	if err != nil {
		dumpLogs(t, kopts)
		t.Fatal(err)
	}
	defer stopAndCheck(t, kms)
	if !contains(kopts.Redact.Values(), seal.Token) {
		t.Fatal("the seal's token is not registered for redaction")
	}
	opts := options(t, bin)
	opts.Redact, opts.Seal = kopts.Redact, seal
	c, err := vaultproc.StartRaft(ctx, opts, 3)
	if err != nil {
		dumpLogs(t, opts)
		t.Fatal(err)
	}
	defer stopAndCheck(t, c)
	if c.Seal() != "transit" || kms.Seal() != "shamir" {
		t.Fatalf("seals: cluster %q, KMS %q", c.Seal(), kms.Seal())
	}
	keys, err := vaultops.LoadKeys(opts.KeysFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.UnsealKeys) != 0 || len(keys.RecoveryKeys) != vaultproc.KeyShares {
		t.Fatalf("keys file: %d unseal keys, %d recovery keys; want 0 and %d", len(keys.UnsealKeys), len(keys.RecoveryKeys), vaultproc.KeyShares)
	}
	for _, k := range keys.RecoveryKeys {
		if !contains(opts.Redact.Values(), k) {
			t.Errorf("recovery key %s not registered for redaction", redact.Fingerprint([]byte(k)))
		}
	}
	nodes := c.Nodes()
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Address())
		st, err := n.Client().Sys().SealStatusWithContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Type != "transit" || !st.RecoverySeal || st.Sealed {
			t.Fatalf("%s: seal type %q, recovery_seal %t, sealed %t", n.Name(), st.Type, st.RecoverySeal, st.Sealed)
		}
	}
	if n := vaultops.UnsealRequests(addrs...); n != 0 {
		t.Fatalf("%d sys/unseal requests went to a transit-sealed node during bootstrap", n)
	}

	for _, n := range nodes {
		if err := n.Kill(ctx); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	for _, n := range nodes {
		if err := n.Restart(ctx); err != nil {
			dumpLogs(t, opts)
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		if _, err := vaultops.WaitUnsealed(ctx, n.Client(), time.Minute); err != nil {
			dumpLogs(t, opts)
			t.Fatal(err)
		}
	}
	if _, err := c.Active(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("full restart: all unsealed and one active after %s", time.Since(start).Round(100*time.Millisecond))
	if n := vaultops.UnsealRequests(addrs...); n != 0 {
		t.Fatalf("%d sys/unseal requests went to the cluster", n)
	}

	// the KMS goes away; a restarted node cannot fetch its root key
	kn := kms.Nodes()[0]
	if err := kn.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	victim := nodes[2]
	if err := victim.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := victim.Restart(ctx); err == nil {
		t.Fatal("a node restarted while the KMS is down came up")
	}
	log, err := victim.Log(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.ToLower(log), "error parsing seal configuration") {
		dumpLogs(t, opts)
		t.Fatal("the log of the node that could not start does not name the seal")
	}
	// the KMS returns: its operator restarts and unseals it; then the node's supervisor restarts it
	if err := kn.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := kn.Unseal(ctx); err != nil {
		t.Fatal(err)
	}
	if err := victim.Restart(ctx); err != nil {
		dumpLogs(t, opts)
		t.Fatal(err)
	}
	if _, err := vaultops.WaitUnsealed(ctx, victim.Client(), time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := vaultops.UnsealRequests(addrs...); n != 0 {
		t.Fatalf("%d sys/unseal requests went to the cluster", n)
	}
	if vaultops.UnsealRequests(kn.Address()) == 0 {
		t.Fatal("the KMS was unsealed without a sys/unseal request counted")
	}
	checkLogs(t, opts, c)
}

func TestParseRaftMultiplier(t *testing.T) {
	// as Vault 1.17 logs it: a joining node's election and heartbeat timeouts are 3x for its
	// first election, the leader lease is not
	line := func(election, lease string) string {
		return `2026-11-30T17:32:49.048Z [INFO]  storage.raft: creating Raft: config="&raft.Config{ProtocolVersion:3, HeartbeatTimeout:15000000000, ElectionTimeout:` + election + `, CommitTimeout:50000000, LeaderLeaseTimeout:` + lease + `, LocalID:\"vault-0\"}"` + "\n"
	}
	for _, tc := range []struct {
		log  string
		want int
		err  bool
	}{
		{log: line("15000000000", "2500000000"), want: 5},
		{log: line("5000000000", "2500000000"), want: 5},
		{log: line("15000000000", "2500000000") + "other\n" + line("3000000000", "500000000"), want: 1}, // a restart with a new config: the last line counts
		{log: line("1500000000", "750000000"), err: true},
		{log: "no raft here\n", err: true},
		{log: `storage.raft: creating Raft: config="&raft.Config{HeartbeatTimeout:1}"`, err: true},
	} {
		got, err := vaultproc.ParseRaftMultiplier(tc.log)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseRaftMultiplier(%q) = %d, %v; want %d (error %t)", tc.log, got, err, tc.want, tc.err)
		}
	}
}

func TestParseVmHWM(t *testing.T) {
	got, err := vaultproc.ParseVmHWM("Name:\tvault\nVmPeak:\t  900000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t 100 kB\n")
	if err != nil || got != 123456*1024 {
		t.Fatalf("ParseVmHWM = %d, %v; want %d", got, err, 123456*1024)
	}
	if _, err := vaultproc.ParseVmHWM("Name:\tvault\n"); err == nil {
		t.Fatal("ParseVmHWM without a VmHWM line: want an error")
	}
}
