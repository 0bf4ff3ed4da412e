package kind

import (
	"context"
	"fmt"
	"time"

	vault "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretslab/secretslab/internal/vaultops"
	"github.com/secretslab/secretslab/lab"
)

var _ lab.Upgrader = (*Lab)(nil)

// Upgrade moves the lab in place to to's charts and images, as vault-helm's and ESO's
// upgrade guides do: `helm upgrade` of external-secrets (CRDs first, server-side, when given
// apart), then of vault; the vault chart updates its StatefulSet OnDelete, so no pod restarts
// by itself: each Raft pod is deleted in turn, standbys first and the active one last, and
// unsealed and healthy before the next. A dev-mode Vault keeps its data in memory and is not
// rolled.
func (l *Lab) Upgrade(ctx context.Context, to lab.Upgrade) ([]lab.UpgradeStep, error) {
	var steps []lab.UpgradeStep
	step := func(what string, start time.Time) {
		steps = append(steps, lab.UpgradeStep{What: what, Took: time.Since(start)})
		l.say("upgrade: %s (%s)", what, time.Since(start).Round(100*time.Millisecond))
	}
	vaultCh, esoCh, err := l.loadChartsOf(ctx, to.Versions, to.VaultChart, to.ESOChart)
	if err != nil {
		return steps, fmt.Errorf("upgrade: %w", err)
	}
	start := time.Now()
	if err := l.installESOWith(ctx, esoCh, to.ESOCRDs, to.Versions.ESO); err != nil {
		return steps, fmt.Errorf("upgrade: %w", err)
	}
	step(fmt.Sprintf("helm upgrade external-secrets to chart %s (%s), Deployments ready, webhook serving", esoCh.Metadata.Version, imageNote(esoCh, to.Versions.ESO)), start)
	l.opts.Versions.ESO, l.opts.Versions.ESOChart = to.Versions.ESO, to.Versions.ESOChart

	before, err := l.vaultImage(ctx)
	if err != nil {
		return steps, err
	}
	start = time.Now()
	if _, err := l.installVaultChart(ctx, vaultCh, to.Versions.Vault); err != nil {
		return steps, fmt.Errorf("upgrade: %w", err)
	}
	step(fmt.Sprintf("helm upgrade vault to chart %s (%s); OnDelete: no pod restarted", vaultCh.Metadata.Version, imageNote(vaultCh, to.Versions.Vault)), start)
	l.opts.Versions.VaultChart = to.Versions.VaultChart
	after, err := l.vaultImage(ctx)
	if err != nil {
		return steps, err
	}
	switch {
	case after == before:
		steps = append(steps, lab.UpgradeStep{What: "Vault pods on " + before, Skipped: "the StatefulSet's image did not change: no roll"})
	case l.opts.VaultMode != lab.VaultHA:
		steps = append(steps, lab.UpgradeStep{What: "Vault " + before + " -> " + after,
			Skipped: "a dev-mode Vault keeps its data in memory: deleting its pod would lose it, so it is not rolled (run with HA=1)"})
	default:
		rolled, err := l.rollVault(ctx, after)
		steps = append(steps, rolled...)
		if err != nil {
			return steps, err
		}
		l.opts.Versions.Vault = to.Versions.Vault
	}
	l.opts.Versions.Name += " -> " + to.Versions.Name
	return steps, nil
}

// vaultImage is the image of the vault StatefulSet's server container.
func (l *Lab) vaultImage(ctx context.Context) (string, error) {
	sts, err := l.kube.AppsV1().StatefulSets(l.vaultNS).Get(ctx, "vault", metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("read StatefulSet vault/vault: %w", err)
	}
	for _, c := range sts.Spec.Template.Spec.Containers {
		if c.Name == "vault" {
			return c.Image, nil
		}
	}
	return "", fmt.Errorf("StatefulSet vault/vault has no container named vault")
}

// rollVault deletes each Vault pod (standbys first, the active one last) so the StatefulSet
// re-creates it on image, then unseals it and waits for healthy Raft voters.
func (l *Lab) rollVault(ctx context.Context, image string) ([]lab.UpgradeStep, error) {
	active, err := vaultops.WaitOneActive(ctx, l.clients(), 2*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("upgrade: find the active Vault pod: %w", err)
	}
	var order []*vaultNode
	for i, n := range l.nodes {
		if i != active {
			order = append(order, n)
		}
	}
	order = append(order, l.nodes[active])
	var steps []lab.UpgradeStep
	for _, n := range order {
		start := time.Now()
		role := "standby"
		if n == l.nodes[active] {
			role = "active"
		}
		p, err := l.kube.CoreV1().Pods(l.vaultNS).Get(ctx, n.name, metav1.GetOptions{})
		if err != nil {
			return steps, fmt.Errorf("upgrade: %w", err)
		}
		n.killedUID = string(p.UID)
		if err := l.kube.CoreV1().Pods(l.vaultNS).Delete(ctx, n.name, metav1.DeleteOptions{}); err != nil {
			return steps, fmt.Errorf("upgrade: delete pod %s: %w", n.name, err)
		}
		if err := n.Restart(ctx); err != nil {
			return steps, fmt.Errorf("upgrade: %s: %w", n.name, err)
		}
		if err := n.Unseal(ctx); err != nil {
			return steps, fmt.Errorf("upgrade: %w", err)
		}
		if got, err := l.podImage(ctx, n.name); err != nil || got != image {
			return steps, fmt.Errorf("upgrade: pod %s runs %q, want %s (%v)", n.name, got, image, err)
		}
		if _, err := vaultops.WaitHealthyVoters(ctx, l.healthyClient(n), len(l.nodes), 3*time.Minute); err != nil {
			return steps, fmt.Errorf("upgrade: after re-creating %s: %w", n.name, err)
		}
		what := fmt.Sprintf("Vault pod %s (%s) re-created on %s, unsealed, raft healthy", n.name, role, image)
		steps = append(steps, lab.UpgradeStep{What: what, Took: time.Since(start)})
		l.say("upgrade: %s (%s)", what, time.Since(start).Round(100*time.Millisecond))
	}
	return steps, nil
}

func (l *Lab) podImage(ctx context.Context, name string) (string, error) {
	p, err := l.kube.CoreV1().Pods(l.vaultNS).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return containerImage(p, "vault"), nil
}

func containerImage(p *corev1.Pod, name string) string {
	for _, c := range p.Spec.Containers {
		if c.Name == name {
			return c.Image
		}
	}
	return ""
}

// healthyClient is the active node's client, or n's when none is active yet.
func (l *Lab) healthyClient(n *vaultNode) *vault.Client {
	if c := l.Vault(); c != nil {
		return c
	}
	return n.client
}
