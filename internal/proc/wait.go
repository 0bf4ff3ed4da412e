package proc

import (
	"context"
	"fmt"
	"time"
)

// WaitFor polls cond every interval until it returns true, an error wrapped as permanent,
// ctx ends, or timeout passes. what names the condition in errors ("etcd to answer on ...").
// If p is given and exits meanwhile, the wait fails at once with its exit and log path.
func WaitFor(ctx context.Context, what string, timeout, interval time.Duration, p *Process, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := cond(ctx)
		if err != nil {
			if pe, isPermanent := err.(permanent); isPermanent {
				return fmt.Errorf("waiting for %s: %w", what, pe.error)
			}
			last = err
		}
		if ok {
			return nil
		}
		var exited <-chan struct{}
		if p != nil {
			exited = p.Done()
		}
		select {
		case <-exited:
			return fmt.Errorf("waiting for %s: %v (log: %s)", what, p.ExitError(), p.LogPath)
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("timed out after %s waiting for %s: last error: %w", timeout, what, last)
			}
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		case <-time.After(interval):
		}
	}
}

type permanent struct{ error }

// Permanent marks err as not worth retrying in WaitFor.
func Permanent(err error) error { return permanent{err} }
