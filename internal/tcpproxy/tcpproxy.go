// Package tcpproxy is the embedded stand-in for a Service in front of several backends:
// a loopback listener that hands each new connection to the first backend a picker names.
package tcpproxy

import (
	"context"
	"io"
	"net"
	"sync"
	"time"
)

// Proxy forwards connections on a loopback port.
type Proxy struct {
	l    net.Listener
	pick func(ctx context.Context) []string // backends to try, best first
	wg   sync.WaitGroup
	done chan struct{}
	once sync.Once
}

// Start listens on 127.0.0.1:0 and forwards each connection to the first backend of pick()
// that accepts it.
func Start(pick func(ctx context.Context) []string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{l: l, pick: pick, done: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is host:port of the listener.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

func (p *Proxy) handle(c net.Conn) {
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var up net.Conn
	for _, addr := range p.pick(ctx) {
		d, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err == nil {
			up = d
			break
		}
	}
	if up == nil {
		return // like a Service without ready endpoints: the connection is refused
	}
	defer up.Close()
	finished := make(chan struct{})
	defer close(finished)
	go func() { // Close ends long-lived (keep-alive) connections too
		select {
		case <-p.done:
			c.Close()
			up.Close()
		case <-finished:
		}
	}()
	upstreamDone := make(chan struct{})
	go func() {
		io.Copy(up, c)
		if tc, ok := up.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		close(upstreamDone)
	}()
	io.Copy(c, up)
	c.Close()
	<-upstreamDone
}

// Close stops listening and ends open connections; closing again does nothing.
func (p *Proxy) Close() {
	p.once.Do(func() {
		close(p.done)
		p.l.Close()
		p.wg.Wait()
	})
}
