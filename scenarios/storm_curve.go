package scenarios

import (
	"context"
	"sync"
	"time"
)

// stormCurve samples, once a second, the lease storm's minted roles in Postgres and its
// leases in Vault, for the report's picture (the numbers stay in the figures). A sample that
// cannot be read (Vault down during the restart) leaves a gap.
type stormCurve struct {
	start  time.Time
	stop   context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	roles  [][2]float64
	leases [][2]float64
	marks  []struct {
		name string
		at   float64
	}
}

// startStormCurve starts sampling until stop (or the run's end).
func startStormCurve(ctx context.Context, e *Env) *stormCurve {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &stormCurve{start: time.Now(), stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			c.sample(ctx, e)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return c
}

func (c *stormCurve) sample(ctx context.Context, e *Env) {
	at := time.Since(c.start).Seconds()
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	roles, rerr := e.countMintedRoles(sctx)
	leases, lerr := e.countLeases(sctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if rerr == nil {
		c.roles = append(c.roles, [2]float64{at, float64(roles)})
	}
	if lerr == nil {
		c.leases = append(c.leases, [2]float64{at, float64(leases)})
	}
}

// mark names this moment on the curve's time axis.
func (c *stormCurve) mark(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.marks = append(c.marks, struct {
		name string
		at   float64
	}{name, time.Since(c.start).Seconds()})
}

// finish stops sampling (once) and records the curve on r.
func (c *stormCurve) finish(r *Result) {
	c.stop()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	r.Series("minted roles in Postgres", c.roles)
	r.Series("leases in Vault", c.leases)
	for _, m := range c.marks {
		r.Mark(m.name, m.at)
	}
}
