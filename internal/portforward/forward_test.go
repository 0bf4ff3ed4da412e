package portforward

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/clientcmd"
)

// fakeConn is an upgraded connection whose data streams echo what they get, and whose error
// streams carry errMsg (what the kubelet sends when it cannot reach the pod's port).
type fakeConn struct {
	mu      sync.Mutex
	closed  chan bool
	once    sync.Once
	errMsg  string
	streams int
}

func newFakeConn() *fakeConn { return &fakeConn{closed: make(chan bool)} }

func (c *fakeConn) CreateStream(h http.Header) (httpstream.Stream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closed:
		return nil, errors.New("connection closed")
	default:
	}
	c.streams++
	if h.Get(corev1.StreamType) == corev1.StreamTypeError {
		return &errStream{h: h, msg: c.errMsg}, nil
	}
	return &echoStream{h: h, ch: make(chan []byte, 64), done: make(chan struct{})}, nil
}
func (c *fakeConn) Close() error                       { c.once.Do(func() { close(c.closed) }); return nil }
func (c *fakeConn) CloseChan() <-chan bool             { return c.closed }
func (c *fakeConn) SetIdleTimeout(time.Duration)       {}
func (c *fakeConn) RemoveStreams(...httpstream.Stream) {}

type errStream struct {
	h    http.Header
	msg  string
	read bool
}

func (s *errStream) Read(p []byte) (int, error) {
	if s.read || s.msg == "" {
		return 0, io.EOF
	}
	s.read = true
	return copy(p, s.msg), nil
}
func (s *errStream) Write(p []byte) (int, error) { return len(p), nil }
func (s *errStream) Close() error                { return nil }
func (s *errStream) Reset() error                { return nil }
func (s *errStream) Headers() http.Header        { return s.h }
func (s *errStream) Identifier() uint32          { return 1 }

type echoStream struct {
	h       http.Header
	ch      chan []byte
	pending []byte
	done    chan struct{}
	once    sync.Once
}

func (s *echoStream) Write(p []byte) (int, error) {
	s.ch <- append([]byte(nil), p...)
	return len(p), nil
}
func (s *echoStream) Read(p []byte) (int, error) {
	if len(s.pending) == 0 {
		select {
		case b := <-s.ch:
			s.pending = b
		case <-s.done:
			select {
			case b := <-s.ch:
				s.pending = b
			default:
				return 0, io.EOF
			}
		}
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}
func (s *echoStream) Close() error         { s.once.Do(func() { close(s.done) }); return nil }
func (s *echoStream) Reset() error         { return s.Close() }
func (s *echoStream) Headers() http.Header { return s.h }
func (s *echoStream) Identifier() uint32   { return 2 }

// fakeDialer hands out conn, or fails, or hangs until its context ends.
type fakeDialer struct {
	ctx  context.Context
	conn *fakeConn
	err  error
	hang bool
}

func (d *fakeDialer) setContext(ctx context.Context) { d.ctx = ctx }
func (d *fakeDialer) Dial(protocols ...string) (httpstream.Connection, string, error) {
	if d.hang {
		<-d.ctx.Done()
		return nil, "", d.ctx.Err()
	}
	if d.err != nil {
		return nil, "", d.err
	}
	return d.conn, protocols[0], nil
}

func running(name, uid string) *corev1.Pod {
	return pod(name, uid, corev1.PodRunning)
}

func tgt() *Target { return &Target{Namespace: "ns", Pod: "vault-0", PodUID: "uid-1", Port: 8200} }

func roundTrip(t *testing.T, addr, msg string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != msg+"\n" {
		t.Fatalf("echo through the forward: %q, %v", got, err)
	}
}

func waitDone(t *testing.T, f *Forward) {
	t.Helper()
	select {
	case <-f.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the forward did not end")
	}
}

func TestForwardCloses(t *testing.T) {
	cs := fake.NewSimpleClientset(running("vault-0", "uid-1"))
	conn := newFakeConn()
	var out strings.Builder
	f, err := start(context.Background(), cs, tgt(), &fakeDialer{conn: conn}, Options{Out: &syncWriter{w: &out}, WatchInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(f.Addr(), "127.0.0.1:") || strings.HasSuffix(f.Addr(), ":0") {
		t.Fatalf("Addr() = %q", f.Addr())
	}
	roundTrip(t, f.Addr(), "hello")
	roundTrip(t, f.Addr(), "again")
	time.Sleep(60 * time.Millisecond) // a few pod checks: the pod is fine
	if err := f.Err(); err != nil {
		t.Fatalf("Err() while running: %v", err)
	}
	f.Close()
	waitDone(t, f)
	if err := f.Err(); err != nil {
		t.Fatalf("Err() after Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", f.Addr(), time.Second); err == nil {
		t.Fatal("still listening after Close")
	}
	f.Close() // twice is fine
}

func TestForwardPodDeleted(t *testing.T) {
	cs := fake.NewSimpleClientset(running("vault-0", "uid-1"))
	f, err := start(context.Background(), cs, tgt(), &fakeDialer{conn: newFakeConn()}, Options{WatchInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := cs.CoreV1().Pods("ns").Delete(context.Background(), "vault-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitDone(t, f)
	if err := f.Err(); err == nil || !strings.Contains(err.Error(), "pod ns/vault-0 was deleted") {
		t.Fatalf("Err() = %v", err)
	}
	if _, err := net.DialTimeout("tcp", f.Addr(), time.Second); err == nil {
		t.Fatal("still listening after the pod went away")
	}
}

func TestForwardPodReplaced(t *testing.T) {
	cs := fake.NewSimpleClientset(running("vault-0", "uid-2")) // same name, another pod
	f, err := start(context.Background(), cs, tgt(), &fakeDialer{conn: newFakeConn()}, Options{WatchInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	waitDone(t, f)
	if err := f.Err(); err == nil || !strings.Contains(err.Error(), "was replaced") {
		t.Fatalf("Err() = %v", err)
	}
}

func TestForwardConnectionLost(t *testing.T) {
	cs := fake.NewSimpleClientset(running("vault-0", "uid-1"))
	conn := newFakeConn()
	f, err := start(context.Background(), cs, tgt(), &fakeDialer{conn: conn}, Options{WatchInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	conn.Close() // the API server or kubelet went away
	waitDone(t, f)
	if err := f.Err(); err == nil || !strings.Contains(err.Error(), "lost connection to pod") || !strings.Contains(err.Error(), "still running") {
		t.Fatalf("Err() = %v", err)
	}
}

func TestForwardRemoteErrorEndsIt(t *testing.T) {
	// client-go ends the whole forward when the kubelet reports an error for one connection.
	cs := fake.NewSimpleClientset(running("vault-0", "uid-1"))
	conn := newFakeConn()
	conn.errMsg = "failed to connect to localhost:8200 inside namespace: connection refused"
	f, err := start(context.Background(), cs, tgt(), &fakeDialer{conn: conn}, Options{WatchInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitDone(t, f)
	if err := f.Err(); err == nil || !strings.Contains(err.Error(), "lost connection to pod") {
		t.Fatalf("Err() = %v", err)
	}
}

func TestForwardOpenFailures(t *testing.T) {
	cs := fake.NewSimpleClientset(running("vault-0", "uid-1"))
	_, err := start(context.Background(), cs, tgt(), &fakeDialer{err: errors.New(`pods "vault-0" is forbidden`)}, Options{})
	if err == nil || !strings.Contains(err.Error(), "forbidden") || !strings.Contains(err.Error(), "pod ns/vault-0 port 8200") {
		t.Fatalf("dial error: %v", err)
	}

	d := &fakeDialer{hang: true}
	start0 := time.Now()
	_, err = start(context.Background(), cs, tgt(), d, Options{ReadyTimeout: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "not ready after 200ms") {
		t.Fatalf("hanging dial: %v", err)
	}
	if time.Since(start0) > 5*time.Second {
		t.Fatal("the ready timeout was not honoured")
	}
	select {
	case <-d.ctx.Done(): // the hanging upgrade was abandoned
	case <-time.After(5 * time.Second):
		t.Fatal("the dial context was not cancelled")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = start(ctx, cs, tgt(), &fakeDialer{hang: true}, Options{})
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("cancelled context: %v", err)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestOpenKind forwards for real when KIND_TEST_KUBECONFIG names a cluster's kubeconfig:
// PF_TEST_TARGET (e.g. "svc/vault"), PF_TEST_NAMESPACE and PF_TEST_PORT say where to. It only
// checks that a TCP connection through the forward opens.
func TestOpenKind(t *testing.T) {
	kc := os.Getenv("KIND_TEST_KUBECONFIG")
	target, ns, port := os.Getenv("PF_TEST_TARGET"), os.Getenv("PF_TEST_NAMESPACE"), os.Getenv("PF_TEST_PORT")
	if kc == "" || target == "" || port == "" {
		t.Skip("skipping the real port-forward: set KIND_TEST_KUBECONFIG, PF_TEST_TARGET, PF_TEST_PORT (and PF_TEST_NAMESPACE)")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("PF_TEST_PORT: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := Open(ctx, cfg, ns, target, p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t.Logf("forwarding %s -> %s", f.Addr(), f.Target().String())
	c, err := net.DialTimeout("tcp", f.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
