package scenarios

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/secretslab/secretslab/lab"
)

// rotationAnnotation is the pod template annotation of ch15.05 ("Annotate the Deployment with
// `secret-rotation: <ts>` to force a rollout").
const rotationAnnotation = "secret-rotation"

// reloader is the suite's small stand-in for stakater/Reloader: it watches one Secret and,
// each time its data changes, sets rotationAnnotation on the workload's pod template to a
// keyed fingerprint of the new data (the key is the reloader's own, so the annotation tells
// nothing of the values), which rolls the workload; it waits for each rollout to complete.
type reloader struct {
	secret string
	w      lab.Workload
	key    []byte
	cancel context.CancelFunc
	done   chan struct{}
	rolls  chan reload

	mu   sync.Mutex
	hash string // of the data the workload's pods were last rolled to (or started with)
}

// reload is one rollout the reloader made.
type reload struct {
	Seen    time.Time // the watch delivered the changed Secret
	Rolled  time.Time // the rollout was complete
	Version string    // the Secret's resourceVersion
	Err     error
}

// startReloader starts watching Secret name; its data now is what the workload runs with.
// Stop it with stop (a deferred cleanup does too).
func (e *Env) startReloader(ctx context.Context, name string, w lab.Workload) (*reloader, error) {
	rl := &reloader{secret: name, w: w, key: make([]byte, 32), done: make(chan struct{}), rolls: make(chan reload, 16)}
	if _, err := rand.Read(rl.key); err != nil {
		return nil, err
	}
	s, err := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	rl.hash = rl.hashOf(s.Data)
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rl.cancel = cancel
	e.Defer("stop the reloader of Secret "+name, func(context.Context) error { rl.stop(); return nil })
	go rl.run(wctx, e, s.ResourceVersion)
	return rl, nil
}

func (rl *reloader) stop() {
	rl.cancel()
	<-rl.done
}

// hashOf is an HMAC of the data under the reloader's key, keys in order.
func (rl *reloader) hashOf(data map[string][]byte) string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	m := hmac.New(sha256.New, rl.key)
	for _, k := range keys {
		fmt.Fprintf(m, "%d:%s=%d:", len(k), k, len(data[k]))
		m.Write(data[k])
	}
	return hex.EncodeToString(m.Sum(nil))[:16]
}

// run watches the Secret from resourceVersion rv, re-establishing the watch when the server
// ends it, and rolls the workload on every change of the data.
func (rl *reloader) run(ctx context.Context, e *Env, rv string) {
	defer close(rl.done)
	secrets := e.Lab.Kube().CoreV1().Secrets(ns)
	for ctx.Err() == nil {
		wi, err := secrets.Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", rl.secret).String(), ResourceVersion: rv})
		if err != nil {
			if ctx.Err() == nil {
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			continue
		}
		for ev := range wi.ResultChan() {
			switch ev.Type {
			case watch.Added, watch.Modified:
				s, ok := ev.Object.(*corev1.Secret)
				if !ok {
					continue
				}
				rv = s.ResourceVersion
				rl.consider(ctx, s)
			case watch.Error:
				// the resourceVersion is too old (410): read the Secret as it is now
				if s, err := secrets.Get(ctx, rl.secret, metav1.GetOptions{}); err == nil {
					rv = s.ResourceVersion
					rl.consider(ctx, s)
				} else if apierrors.IsNotFound(err) {
					rv = ""
				}
			}
		}
		wi.Stop()
	}
}

// consider rolls the workload when s's data differs from what it last rolled to.
func (rl *reloader) consider(ctx context.Context, s *corev1.Secret) {
	h := rl.hashOf(s.Data)
	rl.mu.Lock()
	same := h == rl.hash
	rl.mu.Unlock()
	if same {
		return
	}
	seen := time.Now()
	err := rl.w.Rollout(ctx, map[string]string{rotationAnnotation: h})
	if err == nil {
		rl.mu.Lock()
		rl.hash = h
		rl.mu.Unlock()
	}
	select {
	case rl.rolls <- reload{Seen: seen, Rolled: time.Now(), Version: s.ResourceVersion, Err: err}:
	default: // nobody is reading: the next wait sees the workload as it is
	}
}

// next waits for the reloader's next rollout.
func (rl *reloader) next(ctx context.Context, timeout time.Duration) (reload, error) {
	select {
	case r := <-rl.rolls:
		return r, r.Err
	case <-ctx.Done():
		return reload{}, ctx.Err()
	case <-time.After(timeout):
		return reload{}, fmt.Errorf("waiting for the reloader to roll %s after Secret %s changed: timed out after %s", rl.w.Name(), rl.secret, timeout)
	}
}
