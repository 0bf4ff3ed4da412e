package kind

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretslab/secretslab/internal/charts"
	"github.com/secretslab/secretslab/internal/vaultops"
	"github.com/secretslab/secretslab/lab"
)

// The KMS stand-in on kind: a second release of the vault chart, standalone (file storage on
// a volume, so its transit key survives a pod's deletion), in its own namespace. It is
// Shamir-sealed itself: the harness, as its operator, initialises and unseals it.
const (
	kmsNamespace  = "vault-kms"
	kmsRelease    = "vault-kms"
	kmsAddr       = "http://vault-kms.vault-kms.svc:8200" // the chart's server Service
	sealSecret    = "vault-transit-seal"                  // the seal's token, in the Vault namespace
	sealSecretKey = "token"
)

var (
	_ lab.AutoUnsealer = (*Lab)(nil)
	_ lab.VaultNodeLog = (*vaultNode)(nil)
)

// KMS implements lab.AutoUnsealer: the KMS Vault's pod, nil with a Shamir seal.
func (l *Lab) KMS() lab.VaultNode {
	if l.kms == nil {
		return nil
	}
	return l.kms
}

// installKMS installs the KMS Vault, initialises and unseals it, sets up its transit key and
// the seal's token, and stores the token in a Secret of the Vault namespace, from which the
// Raft pods get it as VAULT_TOKEN (the transit seal reads it).
func (l *Lab) installKMS(ctx context.Context, ch *chart.Chart, tag string) error {
	start := time.Now()
	values := map[string]any{
		"server": map[string]any{
			"affinity":    "",
			"standalone":  map[string]any{"enabled": true},
			"ha":          map[string]any{"enabled": false},
			"dataStorage": map[string]any{"enabled": true, "size": "1Gi"},
		},
		"injector": map[string]any{"enabled": false},
	}
	setImageTag(values, "server", tag)
	l.say("installing the KMS stand-in: chart vault %s as release %s in %s (standalone, transit engine; for the chapter's seal \"awskms\")", ch.Metadata.Version, kmsRelease, kmsNamespace)
	if _, err := charts.Install(ctx, l.kubeconfig, ch, kmsRelease, kmsNamespace, values, charts.InstallOptions{Timeout: 5 * time.Minute, Log: l.secrets.Writer(l.progress)}); err != nil {
		return fmt.Errorf("install the KMS vault chart: %w", err)
	}
	n := &vaultNode{l: l, name: kmsRelease + "-0", ns: kmsNamespace, kms: true}
	if err := n.waitRunning(ctx); err != nil {
		return err
	}
	if err := n.forward(ctx); err != nil {
		return err
	}
	l.kms = n
	keys, err := vaultops.Init(ctx, n.client, keyShares, keyThreshold, l.secrets)
	if err != nil {
		return fmt.Errorf("KMS vault: %w", err)
	}
	l.kmsKeys = keys
	if err := vaultops.SaveKeys(filepath.Join(l.workDir, "vault-kms-keys.json"), keys); err != nil {
		return err
	}
	n.client.SetToken(keys.RootToken)
	if err := vaultops.Unseal(ctx, n.client, keys.UnsealKeys); err != nil {
		return fmt.Errorf("KMS vault: %w", err)
	}
	if _, err := vaultops.WaitUnsealed(ctx, n.client, 2*time.Minute); err != nil {
		return fmt.Errorf("KMS vault: %w", err)
	}
	token, err := vaultops.SetUpTransitKMS(ctx, n.client, l.secrets)
	if err != nil {
		return fmt.Errorf("KMS vault: %w", err)
	}
	if _, err := l.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: l.vaultNS}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", l.vaultNS, err)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: sealSecret, Namespace: l.vaultNS}, Data: map[string][]byte{sealSecretKey: []byte(token)}}
	if _, err := l.kube.CoreV1().Secrets(l.vaultNS).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Secret %s/%s for the seal's token: %w", l.vaultNS, sealSecret, err)
	}
	l.say("KMS vault ready in %s", time.Since(start).Round(time.Second))
	return nil
}

// transitValues adds seal "transit" to the Raft config of the chart's values, and the seal's
// token as VAULT_TOKEN from its Secret.
func transitValues(values map[string]any) error {
	server, _ := values["server"].(map[string]any)
	ha, _ := server["ha"].(map[string]any)
	raft, _ := ha["raft"].(map[string]any)
	if raft == nil {
		return fmt.Errorf("the HA values have no server.ha.raft")
	}
	raft["config"] = raftConfig + fmt.Sprintf(`
seal "transit" {
  address    = %q
  key_name   = %q
  mount_path = %q
}
`, kmsAddr, vaultops.KMSKeyName, vaultops.KMSMount+"/")
	server["extraSecretEnvironmentVars"] = []any{map[string]any{"envName": "VAULT_TOKEN", "secretName": sealSecret, "secretKey": sealSecretKey}}
	return nil
}

// raftConfig is the chart's default server.ha.raft.config (vault-helm 0.28.1).
const raftConfig = `ui = true

listener "tcp" {
  tls_disable = 1
  address = "[::]:8200"
  cluster_address = "[::]:8201"
}

storage "raft" {
  path = "/vault/data"
}

service_registration "kubernetes" {}
`

// Log implements lab.VaultNodeLog: the vault container's log since the pod started; when the
// container restarted (a server that exited at start, e.g. without its KMS), the log of the run
// that exited comes first, then the current one (which may not have reached its error yet).
func (n *vaultNode) Log(ctx context.Context) (string, error) {
	p, err := n.l.kube.CoreV1().Pods(n.namespace()).Get(ctx, n.name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("pod %s: %w", n.name, err)
	}
	restarted := false
	for _, c := range p.Status.ContainerStatuses {
		if c.Name == "vault" && c.RestartCount > 0 {
			restarted = true
		}
	}
	var b strings.Builder
	if restarted {
		if err := n.readLog(ctx, &b, true); err != nil {
			return "", err
		}
	}
	// a container waiting to restart has no current log: that is not an error when the
	// previous one was read
	if err := n.readLog(ctx, &b, false); err != nil && !restarted {
		return "", err
	}
	return n.l.secrets.String(b.String()), nil
}

func (n *vaultNode) readLog(ctx context.Context, w io.Writer, previous bool) error {
	rc, err := n.l.kube.CoreV1().Pods(n.namespace()).GetLogs(n.name, &corev1.PodLogOptions{Container: "vault", Previous: previous}).Stream(ctx)
	if err != nil {
		return fmt.Errorf("log of pod %s (previous %t): %w", n.name, previous, err)
	}
	defer rc.Close()
	if _, err := io.Copy(w, io.LimitReader(rc, 4<<20)); err != nil {
		return fmt.Errorf("log of pod %s: %w", n.name, err)
	}
	return nil
}
