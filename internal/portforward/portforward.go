// Package portforward forwards a local port to a pod's port through the API server, as
// `kubectl port-forward` does, with client-go's tools/portforward over SPDY: no kubectl.
//
//	f, err := portforward.Open(ctx, cfg, "vault", "svc/vault", 8200)
//	...
//	defer f.Close()
//	http.Get("http://" + f.Addr() + "/v1/sys/health")
//
// A Forward listens on 127.0.0.1 on a free port. It ends when Close is called, when the
// connection to the pod is lost, or when its pod goes away (deleted, replaced, terminating or
// finished; checked every Options.WatchInterval). Done and Err tell which.
//
// Note client-go's behaviour (v0.29 on): when one forwarded connection fails on the pod's side
// (for example nothing listens on the port yet), it ends the whole forward; Err then says that
// the connection to the pod was lost while the pod is still running. The message of that
// connection's failure goes to klog (client-go's runtime.HandleError), not to Options.Out.
package portforward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// Options tune OpenWithOptions; the zero value gives Open's defaults.
type Options struct {
	// Out receives client-go's messages ("Forwarding from ...", "Handling connection for ...").
	// nil: discarded.
	Out io.Writer
	// ReadyTimeout bounds the wait for the forward to be ready (connection upgraded through the
	// API server and the kubelet, local port listening). Default 30s.
	ReadyTimeout time.Duration
	// WatchInterval is how often the pod is checked while the forward runs. Default 2s;
	// negative: never (the forward then ends only when the connection is lost).
	WatchInterval time.Duration
}

// DefaultReadyTimeout is Options.ReadyTimeout's default.
const DefaultReadyTimeout = 30 * time.Second

// Forward is a running port-forward.
type Forward struct {
	target *Target
	addr   string

	stop       chan struct{} // closed to stop client-go's forwarder
	stopOnce   sync.Once
	done       chan struct{} // closed when the forward has ended
	dialCancel context.CancelFunc

	mu     sync.Mutex
	err    error
	closed bool
}

// Open forwards 127.0.0.1:<free port> to remotePort of target ("pod/NAME", or "svc/NAME" with
// remotePort a port of the Service) in namespace. ctx bounds the opening only (resolving the
// target and waiting, at most DefaultReadyTimeout, for the forward to be ready); the forward
// then runs until Close or failure.
func Open(ctx context.Context, cfg *rest.Config, namespace, target string, remotePort int) (*Forward, error) {
	return OpenWithOptions(ctx, cfg, namespace, target, remotePort, Options{})
}

// OpenWithOptions is Open with Options.
func OpenWithOptions(ctx context.Context, cfg *rest.Config, namespace, target string, remotePort int, opts Options) (*Forward, error) {
	if cfg == nil {
		return nil, errors.New("port-forward: nil rest.Config")
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("port-forward: %w", err)
	}
	t, err := Resolve(ctx, cs, namespace, target, remotePort)
	if err != nil {
		return nil, err
	}
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s: %w", t, err)
	}
	u := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(t.Namespace).Name(t.Pod).SubResource("portforward").URL()
	return start(ctx, cs, t, &ctxDialer{upgrader: upgrader, client: &http.Client{Transport: transport}, url: u}, opts)
}

// ctxDialer is spdy.NewDialer's dialer with a context on the upgrade request, so that a dial
// that hangs can be abandoned (spdy's own dialer has no context).
type ctxDialer struct {
	ctx      context.Context
	upgrader spdy.Upgrader
	client   *http.Client
	url      *url.URL
}

func (d *ctxDialer) Dial(protocols ...string) (httpstream.Connection, string, error) {
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, d.url.String(), nil)
	if err != nil {
		return nil, "", err
	}
	return spdy.Negotiate(d.upgrader, d.client, req, protocols...)
}

type dialerWithContext interface {
	httpstream.Dialer
	setContext(context.Context)
}

func (d *ctxDialer) setContext(ctx context.Context) { d.ctx = ctx }

func start(ctx context.Context, cs kubernetes.Interface, t *Target, dialer dialerWithContext, opts Options) (*Forward, error) {
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	readyTimeout := opts.ReadyTimeout
	if readyTimeout <= 0 {
		readyTimeout = DefaultReadyTimeout
	}
	interval := opts.WatchInterval
	if interval == 0 {
		interval = 2 * time.Second
	}

	// The upgrade request lives as long as the forward: cancelled on a failed open or on Close.
	dialCtx, dialCancel := context.WithCancel(context.Background())
	dialer.setContext(dialCtx)
	f := &Forward{target: t, stop: make(chan struct{}), done: make(chan struct{}), dialCancel: dialCancel}
	ready := make(chan struct{})
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", t.Port)}, f.stop, ready, out, out)
	if err != nil {
		dialCancel()
		return nil, fmt.Errorf("port-forward to %s: %w", t, err)
	}
	ended := make(chan error, 1)
	go func() { ended <- pf.ForwardPorts() }()

	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	fail := func(err error) (*Forward, error) {
		f.stopOnce.Do(func() { close(f.stop) })
		dialCancel()
		return nil, err
	}
	select {
	case <-ready:
	case err := <-ended:
		if err == nil {
			err = errors.New("ended before it was ready")
		}
		return fail(fmt.Errorf("port-forward to %s: %w", t, err))
	case <-ctx.Done():
		return fail(fmt.Errorf("port-forward to %s: not ready: %w", t, ctx.Err()))
	case <-timer.C:
		return fail(fmt.Errorf("port-forward to %s: not ready after %s (the upgrade through the API server and the kubelet did not finish)", t, readyTimeout))
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) == 0 {
		return fail(fmt.Errorf("port-forward to %s: no local port: %v", t, err))
	}
	f.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(int(ports[0].Local)))
	go f.run(cs, ended, interval)
	return f, nil
}

// Addr is the local address, "127.0.0.1:PORT".
func (f *Forward) Addr() string { return f.addr }

// Target is the pod and port the forward goes to.
func (f *Forward) Target() Target { return *f.target }

// Done is closed when the forward has ended (Close or failure).
func (f *Forward) Done() <-chan struct{} { return f.done }

// Err is nil while the forward runs and after a Close; after a failure it says why (the pod was
// deleted, replaced or is terminating, or the connection to it was lost).
func (f *Forward) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Close stops the forward and its listener, and waits (a few seconds at most) for it to end.
// It returns nil; a failure before Close stays in Err.
func (f *Forward) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.stopOnce.Do(func() { close(f.stop) })
	select {
	case <-f.done:
	case <-time.After(5 * time.Second):
	}
	f.dialCancel()
	return nil
}

// setErr records the first failure, unless the forward was closed on purpose.
func (f *Forward) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil && !f.closed {
		f.err = err
	}
}

func (f *Forward) run(cs kubernetes.Interface, ended <-chan error, interval time.Duration) {
	defer close(f.done)
	var tick <-chan time.Time
	if interval > 0 {
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		tick = ticker.C
	}
	for {
		select {
		case err := <-ended:
			if err != nil || !f.isClosed() {
				reason := "the forward ended"
				if err != nil {
					reason = err.Error()
				}
				f.setErr(fmt.Errorf("port-forward to %s: %s%s", f.target, reason, f.podState(cs)))
			}
			return
		case <-tick:
			if gone := podGone(cs, f.target); gone != "" {
				f.setErr(fmt.Errorf("port-forward to %s: ended: %s", f.target, gone))
				f.stopOnce.Do(func() { close(f.stop) })
				tick = nil // wait for client-go's forwarder to end
			}
		}
	}
}

func (f *Forward) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// podState explains a lost connection: the pod went away, or it is still running.
func (f *Forward) podState(cs kubernetes.Interface) string {
	if gone := podGone(cs, f.target); gone != "" {
		return ": " + gone
	}
	return fmt.Sprintf(" (pod %s/%s is still running: client-go ends a forward when one connection to the pod's port fails, e.g. when nothing listens on port %d; see klog for its message)", f.target.Namespace, f.target.Pod, f.target.Port)
}

// podGone says how the target's pod went away, or "" when it is still there and running (or
// the API server cannot tell right now).
func podGone(cs kubernetes.Interface, t *Target) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pod, err := cs.CoreV1().Pods(t.Namespace).Get(ctx, t.Pod, metav1.GetOptions{})
	name := t.Namespace + "/" + t.Pod
	switch {
	case apierrors.IsNotFound(err):
		return "pod " + name + " was deleted"
	case err != nil:
		return ""
	case t.PodUID != "" && pod.UID != t.PodUID:
		return "pod " + name + " was replaced (deleted and created again)"
	case pod.DeletionTimestamp != nil:
		return "pod " + name + " is terminating"
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return fmt.Sprintf("pod %s has finished (%s)", name, pod.Status.Phase)
	}
	return ""
}
