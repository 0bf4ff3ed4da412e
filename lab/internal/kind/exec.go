package kind

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
)

// vaultContainer is the Vault server's container in vault-helm's pods.
const vaultContainer = "vault"

// auditFile is where a file audit device writes in each Vault pod: /vault/logs, which the
// hashicorp/vault image creates for the vault user. (vault-helm mounts /vault/audit only with
// server.auditStorage enabled; without it Vault cannot create that directory: permission
// denied, seen on kind with chart 0.28.1.)
const auditFile = "/vault/logs/secretslab-audit.log"

// VaultAuditFile implements lab.Lab: every pod writes its own copy.
func (l *Lab) VaultAuditFile() string { return auditFile }

// ReadFile implements lab.VaultNode: `cat` in the pod's Vault container (a missing file reads
// as nil).
func (n *vaultNode) ReadFile(ctx context.Context, path string) ([]byte, error) {
	// sh prints nothing and exits 0 for a missing file; cat's own errors stay errors
	out, err := n.l.exec(ctx, n.name, vaultContainer, "sh", "-c", `[ -e "$1" ] || exit 0; cat -- "$1"`, "sh", path)
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", n.name, path, err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// RemoveFile implements lab.VaultNode: `rm -f` in the pod's Vault container.
func (n *vaultNode) RemoveFile(ctx context.Context, path string) error {
	if _, err := n.l.exec(ctx, n.name, vaultContainer, "rm", "-f", "--", path); err != nil {
		return fmt.Errorf("%s: remove %s: %w", n.name, path, err)
	}
	return nil
}

// exec runs cmd in a container of a Vault pod and returns its stdout; a non-zero exit is an
// error carrying (a short part of) stderr.
func (l *Lab) exec(ctx context.Context, pod, container string, cmd ...string) ([]byte, error) {
	req := l.kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(l.vaultNS).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(l.cfg, "POST", req.URL())
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return nil, fmt.Errorf("exec %s in %s/%s: %w (%s)", cmd[0], l.vaultNS, pod, err, l.secrets.String(msg))
	}
	return stdout.Bytes(), nil
}
