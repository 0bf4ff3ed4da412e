package kind

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretslab/secretslab/fixtures"
	"github.com/secretslab/secretslab/internal/charts"
	"github.com/secretslab/secretslab/internal/docker"
	"github.com/secretslab/secretslab/internal/portforward"
	"github.com/secretslab/secretslab/internal/proc"
	"github.com/secretslab/secretslab/internal/tcpproxy"
	"github.com/secretslab/secretslab/internal/vaultops"
	"github.com/secretslab/secretslab/lab"
)

const (
	keyShares    = 3
	keyThreshold = 2
	podTimeout   = 3 * time.Minute
)

type keyFile = vaultops.KeyFile

// installVault installs vault-helm with the chapter's values: dev mode (chapter 05), or
// three Raft nodes that the harness initialises, unseals and joins (chapter 15.05). The chart
// uses updateStrategy OnDelete, so helm's wait says nothing about Vault: the pods and Vault's
// own health are waited on instead.
func (l *Lab) installVault(ctx context.Context, ch *chart.Chart) error {
	start := time.Now()
	if l.seal == lab.SealTransit {
		if err := l.installKMS(ctx, ch, l.opts.Versions.Vault); err != nil {
			return err
		}
	}
	replicas, err := l.installVaultChart(ctx, ch, l.opts.Versions.Vault)
	if err != nil {
		return err
	}
	for i := 0; i < replicas; i++ {
		n := &vaultNode{l: l, name: fmt.Sprintf("vault-%d", i)}
		if err := n.waitRunning(ctx); err != nil {
			return err
		}
		if err := n.forward(ctx); err != nil {
			return err
		}
		l.nodes = append(l.nodes, n)
	}
	if l.opts.VaultMode == lab.VaultHA {
		if err := l.bootstrapRaft(ctx); err != nil {
			return err
		}
	}
	for _, n := range l.nodes {
		if _, err := vaultops.WaitUnsealed(ctx, n.client, 2*time.Minute); err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
	}
	if l.opts.VaultMode == lab.VaultHA {
		if err := l.enableKV(ctx); err != nil {
			return err
		}
	}
	l.say("vault ready in %s", time.Since(start).Round(time.Second))
	return nil
}

// installVaultChart installs (or upgrades) the chart with the chapter's values and image tag
// (empty: the chart's app version); it returns the number of Vault servers. The chart's
// OnDelete update strategy means an upgrade restarts no pod.
func (l *Lab) installVaultChart(ctx context.Context, ch *chart.Chart, tag string) (replicas int, err error) {
	valuesFile := "dev.yaml"
	replicas = 1
	if l.opts.VaultMode == lab.VaultHA {
		valuesFile, replicas = "ha-raft.yaml", 3
	}
	raw, err := fixtures.File(fixtures.HelmValuesDir + "/" + valuesFile)
	if err != nil {
		return 0, err
	}
	values, err := charts.ValuesFromBytes(raw)
	if err != nil {
		return 0, err
	}
	if l.seal == lab.SealTransit {
		if err := transitValues(values); err != nil {
			return 0, err
		}
		valuesFile += " with seal \"transit\""
	}
	if l.opts.VaultMode != lab.VaultHA {
		// the dev root token is the lab's own random one, never the chapter's "root"
		if l.rootToken == "" {
			b := make([]byte, 16)
			_, _ = rand.Read(b)
			l.rootToken = "devroot" + hex.EncodeToString(b)
			l.secrets.Add(l.rootToken)
		}
		server, _ := values["server"].(map[string]any)
		dev, _ := server["dev"].(map[string]any)
		dev["devRootToken"] = l.rootToken
	}
	if l.injector {
		inj, ok := values["injector"].(map[string]any)
		if !ok {
			inj = map[string]any{}
			values["injector"] = inj
		}
		inj["enabled"] = true
	}
	if l.opts.VaultMode == lab.VaultHA && l.opts.RaftPerformanceMultiplier > 0 {
		if err := setRaftPerformanceMultiplier(values, ch.Values, l.opts.RaftPerformanceMultiplier); err != nil {
			return 0, err
		}
	}
	l.vaultChart, l.vaultTag = ch, tag
	setImageTag(values, "server", tag)
	l.say("installing chart vault %s (%s, %s)", ch.Metadata.Version, valuesFile, imageNote(ch, tag))
	l.vaultRelease, err = charts.Install(ctx, l.kubeconfig, ch, "vault", l.vaultNS, values, charts.InstallOptions{Timeout: 5 * time.Minute, Log: l.secrets.Writer(l.progress)})
	if err != nil {
		return 0, fmt.Errorf("install vault chart: %w", err)
	}
	return replicas, nil
}

// bootstrapRaft: init vault-0 (keys in a 0600 file), unseal it, join and unseal the others,
// then wait for 3 voters and exactly one active node.
//
// With the transit seal: init vault-0 with recovery keys; every node unseals itself (after the
// init, after its join), and no unseal key exists.
func (l *Lab) bootstrapRaft(ctx context.Context) error {
	first := l.nodes[0]
	transit := l.seal == lab.SealTransit
	var keys *keyFile
	var err error
	if transit {
		keys, err = vaultops.InitRecovery(ctx, first.client, keyShares, keyThreshold, l.secrets)
	} else {
		keys, err = vaultops.Init(ctx, first.client, keyShares, keyThreshold, l.secrets)
	}
	if err != nil {
		return err
	}
	l.keys, l.rootToken = keys, keys.RootToken
	if err := vaultops.SaveKeys(l.KeysFile(), keys); err != nil {
		return err
	}
	for _, n := range l.nodes {
		n.client.SetToken(l.rootToken)
	}
	if !transit {
		if err := vaultops.Unseal(ctx, first.client, keys.UnsealKeys); err != nil {
			return err
		}
	}
	if _, err := vaultops.WaitUnsealed(ctx, first.client, 2*time.Minute); err != nil {
		return err
	}
	// unsealed is not yet active: autopilot's configuration needs the active node
	if _, err := vaultops.WaitOneActive(ctx, []*vault.Client{first.client}, 2*time.Minute); err != nil {
		return fmt.Errorf("%s: %w", first.name, err)
	}
	if err := vaultops.SetServerStabilizationTime(ctx, first.client, 3*time.Second); err != nil {
		return err
	}
	for _, n := range l.nodes[1:] {
		if err := vaultops.JoinRaft(ctx, n.client, "http://vault-0.vault-internal:8200"); err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
		if transit {
			continue
		}
		if err := vaultops.Unseal(ctx, n.client, keys.UnsealKeys); err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
	}
	if _, err := vaultops.WaitVoters(ctx, first.client, len(l.nodes), 2*time.Minute); err != nil {
		return err
	}
	_, err = vaultops.WaitOneActive(ctx, l.clients(), 2*time.Minute)
	return err
}

func (l *Lab) enableKV(ctx context.Context) error {
	v := l.Vault()
	mounts, err := v.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return err
	}
	if _, ok := mounts["secret/"]; ok {
		return nil
	}
	return v.Sys().MountWithContext(ctx, "secret", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}})
}

func (l *Lab) clients() []*vault.Client {
	var out []*vault.Client
	for _, n := range l.nodes {
		out = append(out, n.client)
	}
	return out
}

// KeysFile is where the HA root token and unseal keys are kept (0600).
func (l *Lab) KeysFile() string { return filepath.Join(l.workDir, "vault-keys.json") }

// vaultNode is one Vault pod, reached through its own port-forward.
type vaultNode struct {
	l         *Lab
	name      string
	ns        string // "": the lab's Vault namespace
	kms       bool   // the KMS Vault: its own root token and keys
	killedUID string // the pod Kill deleted; Restart waits for a new one
	client    *vault.Client
	// front is the node's address for its whole life: a loopback proxy to the current
	// port-forward, which a restart replaces (each forward has its own local port)
	front *tcpproxy.Proxy
	mu    sync.Mutex
	fwd   *portforward.Forward
}

// current is the address of the node's current forward (none while it is replaced).
func (n *vaultNode) current(context.Context) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fwd == nil {
		return nil
	}
	return []string{n.fwd.Addr()}
}

func (n *vaultNode) setForward(f *portforward.Forward) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fwd != nil {
		n.fwd.Close()
	}
	n.fwd = f
}

func (n *vaultNode) Name() string { return n.name }

func (n *vaultNode) namespace() string {
	if n.ns != "" {
		return n.ns
	}
	return n.l.vaultNS
}

// rootToken is the root token of the Vault the node belongs to.
func (n *vaultNode) rootToken() string {
	if n.kms {
		if n.l.kmsKeys == nil {
			return ""
		}
		return n.l.kmsKeys.RootToken
	}
	return n.l.rootToken
}
func (n *vaultNode) Address() string       { return "http://" + n.front.Addr() }
func (n *vaultNode) Client() *vault.Client { return n.client }

// waitRunning waits until the pod's containers run (a sealed Raft node is never Ready).
func (n *vaultNode) waitRunning(ctx context.Context) error {
	return proc.WaitFor(ctx, "pod vault/"+n.name+" to be running", podTimeout, time.Second, nil, func(ctx context.Context) (bool, error) {
		p, err := n.l.kube.CoreV1().Pods(n.namespace()).Get(ctx, n.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if n.killedUID != "" && string(p.UID) == n.killedUID {
			return false, fmt.Errorf("pod %s is still the one that was killed", n.name)
		}
		if p.Status.Phase != corev1.PodRunning {
			return false, fmt.Errorf("phase %s", p.Status.Phase)
		}
		for _, c := range p.Status.ContainerStatuses {
			if c.Started == nil || !*c.Started {
				return false, nil
			}
		}
		return true, nil
	})
}

// forward opens a port-forward to the pod and waits until Vault answers through it. A pod
// can run before Vault listens, and client-go ends a forward whose first connection is
// refused, so each attempt opens a fresh forward.
func (n *vaultNode) forward(ctx context.Context) error {
	if n.front == nil {
		p, err := tcpproxy.Start(n.current)
		if err != nil {
			return err
		}
		n.front = p
		n.l.proxies = append(n.l.proxies, p)
	}
	return proc.WaitFor(ctx, "vault "+n.name+" to answer through a port-forward", 2*time.Minute, 2*time.Second, nil, func(ctx context.Context) (bool, error) {
		f, err := portforward.Open(ctx, n.l.cfg, n.namespace(), "pod/"+n.name, 8200)
		if err != nil {
			n.setForward(nil)
			return false, err
		}
		n.setForward(f)
		if n.client == nil {
			c, err := vaultops.NewClient(n.Address(), n.rootToken())
			if err != nil {
				return false, proc.Permanent(err)
			}
			n.client = c
		}
		if _, err := vaultops.WaitAnswering(ctx, n.client, 5*time.Second); err != nil {
			n.setForward(nil)
			return false, err
		}
		return true, nil
	})
}

// Kill stops the node as a crash would. On a kind cluster the Vault container's process gets
// SIGKILL from its node first: a force-deleted pod's container is stopped by the kubelet only
// later (SIGTERM, then a grace period), and until then it keeps leading Raft, answering its
// peers and taking the writes they forward (seen on kind: a "killed" leader took writes and
// its peers elected no one for 12 s). Then the pod is force-deleted, as `kubectl delete pod
// --grace-period=0 --force` does, so the StatefulSet starts a new one (a container restarted
// in place would meet the kubelet's crash-loop back-off). On another cluster only the delete
// is possible: KillMethod says which.
func (n *vaultNode) Kill(ctx context.Context) error {
	p, err := n.l.kube.CoreV1().Pods(n.namespace()).Get(ctx, n.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return n.waitSilent(ctx)
	}
	if err != nil {
		return fmt.Errorf("kill %s: %w", n.name, err)
	}
	n.killedUID = string(p.UID)
	if id, running := runningContainer(p, "vault"); n.l.name != "" && running {
		if err := docker.KillInKind(ctx, n.l.name, p.Spec.NodeName, id); err != nil {
			return fmt.Errorf("kill %s: %w", n.name, err)
		}
		if err := n.waitCrashed(ctx, id); err != nil {
			return err
		}
	}
	zero := int64(0)
	err = n.l.kube.CoreV1().Pods(n.namespace()).Delete(ctx, n.name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete pod %s: %w", n.name, err)
	}
	return n.waitSilent(ctx)
}

// KillMethod implements lab.KillMethod.
func (n *vaultNode) KillMethod() string {
	if n.l.name != "" {
		return "SIGKILL of the Vault process from its kind node, then the pod force-deleted (the StatefulSet starts a new one)"
	}
	return "pod force-deleted (grace period 0): the kubelet stops its container later, and until then a killed leader may still lead Raft and take forwarded writes"
}

// waitSilent waits until the node no longer answers through its address. After a force
// delete the API forgets the pod at once but its port-forward can keep reaching the container.
func (n *vaultNode) waitSilent(ctx context.Context) error {
	return proc.WaitFor(ctx, "the killed pod "+n.name+" to stop answering", killTimeout, 200*time.Millisecond, nil, func(ctx context.Context) (bool, error) {
		c, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := n.client.Sys().SealStatusWithContext(c)
		return err != nil, nil
	})
}

// waitCrashed waits until the kubelet reports container id of the pod gone (not running, or
// replaced: it restarts a killed container in the same pod at once). Its address cannot tell:
// the restarted container answers through the same port-forward, and a dev server comes back
// unsealed.
func (n *vaultNode) waitCrashed(ctx context.Context, id string) error {
	return proc.WaitFor(ctx, "the kubelet to report the killed Vault container of "+n.name+" gone", killTimeout, 100*time.Millisecond, nil, func(ctx context.Context) (bool, error) {
		p, err := n.l.kube.CoreV1().Pods(n.namespace()).Get(ctx, n.name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range p.Status.ContainerStatuses {
			if c.Name == "vault" {
				return c.ContainerID != id || c.State.Running == nil, nil
			}
		}
		return false, fmt.Errorf("pod %s has no container vault", n.name)
	})
}

// runningContainer is the runtime id of the pod's container name, and whether it runs.
func runningContainer(p *corev1.Pod, name string) (string, bool) {
	for _, c := range p.Status.ContainerStatuses {
		if c.Name == name {
			return c.ContainerID, c.State.Running != nil
		}
	}
	return "", false
}

// killTimeout bounds the wait for a force-deleted pod's container to stop.
const killTimeout = 30 * time.Second

// Restart waits for the StatefulSet's new pod and forwards to it again.
func (n *vaultNode) Restart(ctx context.Context) error {
	if err := n.waitRunning(ctx); err != nil {
		return err
	}
	return n.forward(ctx)
}

// Unseal unseals the node with the kept keys (HA only; a dev server is never sealed). A node
// with the transit seal unseals itself: Unseal submits nothing and waits (bounded) until it
// reports unsealed. The KMS Vault is unsealed with its own keys.
func (n *vaultNode) Unseal(ctx context.Context) error {
	keys := n.l.keys
	if n.kms {
		keys = n.l.kmsKeys
	}
	if keys == nil {
		return fmt.Errorf("%s: no unseal keys (dev mode)", n.name)
	}
	if len(keys.UnsealKeys) == 0 {
		if _, err := vaultops.WaitUnsealed(ctx, n.client, 2*time.Minute); err != nil {
			return fmt.Errorf("%s (transit seal) to unseal itself: %w", n.name, err)
		}
		return nil
	}
	if err := vaultops.Unseal(ctx, n.client, keys.UnsealKeys); err != nil {
		return err
	}
	_, err := vaultops.WaitUnsealed(ctx, n.client, 2*time.Minute)
	return err
}

// freshVault removes the Vault an earlier lab left on a reused cluster: its release, its pods
// and its Raft volumes. A lab's Vault starts empty: its dev root token and Raft keys are the
// lab's own and kept nowhere else, so an old pod (the chart updates OnDelete) would answer
// with another token, and Raft init would meet an initialised Vault.
func (l *Lab) freshVault(ctx context.Context) error {
	if l.created {
		return nil
	}
	pods, err := l.kube.CoreV1().Pods(l.vaultNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=vault"})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reused cluster: list Vault pods: %w", err)
	}
	pvcs, err := l.kube.CoreV1().PersistentVolumeClaims(l.vaultNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=vault"})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reused cluster: list Vault volumes: %w", err)
	}
	if len(pods.Items) == 0 && len(pvcs.Items) == 0 {
		return nil
	}
	l.say("reused cluster: removing the Vault an earlier lab left (%d pod(s), %d volume(s)) so this lab's Vault starts empty", len(pods.Items), len(pvcs.Items))
	if err := charts.Uninstall(ctx, l.kubeconfig, "vault", l.vaultNS); err != nil {
		return fmt.Errorf("reused cluster: %w", err)
	}
	for _, p := range pvcs.Items {
		if err := l.kube.CoreV1().PersistentVolumeClaims(l.vaultNS).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("reused cluster: delete volume claim %s: %w", p.Name, err)
		}
	}
	return proc.WaitFor(ctx, "the earlier lab's Vault pods and volume claims to be gone", 3*time.Minute, time.Second, nil, func(ctx context.Context) (bool, error) {
		pods, err := l.kube.CoreV1().Pods(l.vaultNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=vault"})
		if err != nil {
			return false, err
		}
		pvcs, err := l.kube.CoreV1().PersistentVolumeClaims(l.vaultNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=vault"})
		if err != nil {
			return false, err
		}
		if n := len(pods.Items) + len(pvcs.Items); n > 0 {
			return false, fmt.Errorf("%d pod(s) and %d volume claim(s) left", len(pods.Items), len(pvcs.Items))
		}
		return true, nil
	})
}

// allVaultNodes are the Vault servers and, with the transit seal, the KMS Vault.
func (l *Lab) allVaultNodes() []*vaultNode {
	nodes := append([]*vaultNode(nil), l.nodes...)
	if l.kms != nil {
		nodes = append(nodes, l.kms)
	}
	return nodes
}

// setRaftPerformanceMultiplier sets server.ha.raft.config to the chart's (values, else the
// chart's defaults) with performance_multiplier = mult in its storage "raft" stanza.
func setRaftPerformanceMultiplier(values, chartDefaults map[string]any, mult int) error {
	cfg, ok := nestedString(values, "server", "ha", "raft", "config")
	if !ok {
		if cfg, ok = nestedString(chartDefaults, "server", "ha", "raft", "config"); !ok {
			return fmt.Errorf("the vault chart has no server.ha.raft.config to set performance_multiplier in")
		}
	}
	out, err := withPerformanceMultiplier(cfg, mult)
	if err != nil {
		return err
	}
	m := values
	for _, k := range []string{"server", "ha", "raft"} {
		sub, ok := m[k].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[k] = sub
		}
		m = sub
	}
	m["config"] = out
	return nil
}

func nestedString(m map[string]any, path ...string) (string, bool) {
	for _, k := range path[:len(path)-1] {
		sub, ok := m[k].(map[string]any)
		if !ok {
			return "", false
		}
		m = sub
	}
	s, ok := m[path[len(path)-1]].(string)
	return s, ok && s != ""
}

// withPerformanceMultiplier puts performance_multiplier = mult as the first line of the
// storage "raft" stanza of a Vault HCL config; a config that sets one already is an error.
func withPerformanceMultiplier(cfg string, mult int) (string, error) {
	if strings.Contains(cfg, "performance_multiplier") {
		return "", fmt.Errorf("the raft config sets performance_multiplier already")
	}
	const open = `storage "raft" {`
	i := strings.Index(cfg, open)
	if i < 0 {
		return "", fmt.Errorf("the raft config has no %s stanza", open)
	}
	i += len(open)
	return cfg[:i] + fmt.Sprintf("\n  performance_multiplier = %d", mult) + cfg[i:], nil
}

// RaftPerformanceMultiplier implements lab.RaftTiming with the configured value: the pods'
// logs are not read back here.
func (l *Lab) RaftPerformanceMultiplier(ctx context.Context) (int, string, error) {
	if l.opts.VaultMode != lab.VaultHA {
		return 0, "", fmt.Errorf("a dev-mode Vault has no Raft storage")
	}
	if m := l.opts.RaftPerformanceMultiplier; m > 0 {
		return m, "configured in the chart's raft config (not read back from the pods)", nil
	}
	return lab.VaultDefaultPerformanceMultiplier, "none configured: Vault's default (not read back from the pods)", nil
}
