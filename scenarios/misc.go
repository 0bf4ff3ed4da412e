package scenarios

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/secretslab/secretslab/internal/kube"
	"github.com/secretslab/secretslab/internal/proc"
)

func conditionsOf(o *unstructured.Unstructured) []kube.Condition { return kube.Conditions(o) }

func randomSecret(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func waitFor(ctx context.Context, what string, timeout time.Duration, cond func(context.Context) (bool, error)) error {
	return proc.WaitFor(ctx, what, timeout, 250*time.Millisecond, nil, cond)
}

// rotationProbe derives a probe ExternalSecret from the db-credentials fixture: same store
// and remote key, target NAME, only POSTGRES_PASSWORD, no template.
func (e *Env) rotationProbe(ctx context.Context, name string) (*unstructured.Unstructured, error) {
	es, err := e.find(ctx, sec+"20-externalsecret-db-credentials.yaml", "ExternalSecret", "")
	if err != nil {
		return nil, err
	}
	probe := es.DeepCopy()
	probe.SetName(name)
	probe.SetAnnotations(nil)
	unstructured.RemoveNestedField(probe.Object, "spec", "target", "template")
	_ = unstructured.SetNestedField(probe.Object, name, "spec", "target", "name")
	data, _, _ := unstructured.NestedSlice(probe.Object, "spec", "data")
	var keep []any
	for _, d := range data {
		if m, ok := d.(map[string]any); ok && m["secretKey"] == "POSTGRES_PASSWORD" {
			keep = append(keep, d)
		}
	}
	if len(keep) == 0 {
		return nil, fmt.Errorf("the db-credentials ExternalSecret fixture maps no POSTGRES_PASSWORD")
	}
	_ = unstructured.SetNestedSlice(probe.Object, keep, "spec", "data")
	return probe, nil
}
