package kind

import (
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretslab/secretslab/internal/proc"
	"github.com/secretslab/secretslab/lab"
)

var _ lab.Injector = (*Lab)(nil)

// injectorSelector picks the chart's injector pods and Deployment.
const injectorSelector = "app.kubernetes.io/name=vault-agent-injector"

// SetVaultInjector implements lab.Injector: the Vault release upgraded with only
// injector.enabled changed (the server pods update OnDelete: none restarts), then a wait for
// the injector's Deployment to be available, or for its pods to be gone.
func (l *Lab) SetVaultInjector(ctx context.Context, enabled bool) error {
	if l.vaultChart == nil {
		return errors.New("no Vault chart installed")
	}
	l.injector = enabled
	if _, err := l.installVaultChart(ctx, l.vaultChart, l.vaultTag); err != nil {
		return err
	}
	what := "the Vault Agent injector Deployment to be available"
	if !enabled {
		what = "the Vault Agent injector's pods to be gone"
	}
	return proc.WaitFor(ctx, what, podTimeout, time.Second, nil, func(ctx context.Context) (bool, error) {
		if !enabled {
			pods, err := l.kube.CoreV1().Pods(l.vaultNS).List(ctx, metav1.ListOptions{LabelSelector: injectorSelector})
			if err != nil {
				return false, err
			}
			return len(pods.Items) == 0, fmt.Errorf("%d pod(s) left", len(pods.Items))
		}
		ds, err := l.kube.AppsV1().Deployments(l.vaultNS).List(ctx, metav1.ListOptions{LabelSelector: injectorSelector})
		if err != nil {
			return false, err
		}
		if len(ds.Items) == 0 {
			return false, errors.New("no injector Deployment yet")
		}
		d := ds.Items[0]
		if d.Status.AvailableReplicas < 1 {
			return false, fmt.Errorf("deployment %s: %d of %d replicas available", d.Name, d.Status.AvailableReplicas, d.Status.Replicas)
		}
		return true, nil
	})
}
