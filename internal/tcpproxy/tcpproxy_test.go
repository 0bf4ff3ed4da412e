package tcpproxy

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

func echoServer(t *testing.T, reply string) (string, func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { c.Write([]byte(reply)); c.Close() }()
		}
	}()
	return l.Addr().String(), func() { l.Close() }
}

// When the preferred backend goes away, new connections reach the next one, as a Service
// follows its ready endpoints.
func TestConnectionsFollowTheFirstBackendThatAnswers(t *testing.T) {
	a, stopA := echoServer(t, "a")
	b, stopB := echoServer(t, "b")
	defer stopB()
	var picks atomic.Int32
	p, err := Start(func(context.Context) []string { picks.Add(1); return []string{a, b} })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	read := func() string {
		c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		got, _ := io.ReadAll(c)
		return string(got)
	}
	if got := read(); got != "a" {
		t.Fatalf("first backend: got %q", got)
	}
	stopA()
	if got := read(); got != "b" {
		t.Fatalf("after the first backend stopped: got %q", got)
	}
	if picks.Load() != 2 {
		t.Fatalf("pick called %d times, want once per connection", picks.Load())
	}
}

// A workload stopped by a scenario and then by the lab's Close closes its proxy twice.
func TestCloseTwice(t *testing.T) {
	p, err := Start(func(context.Context) []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	p.Close()
}
