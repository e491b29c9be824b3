package hostbuild

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	bkclient "github.com/moby/buildkit/client"
)

// pushCheckInterval is how often the registries are asked whether they
// answer while the builder pushes to them.
const pushCheckInterval = time.Minute

// watchPushes forwards the builder's progress from the channel it returns
// to statusCh, which it closes when the builder closes that one. While the
// builder pushes (its "pushing layers" and "pushing manifest" steps),
// check asks the registries whether they answer, every interval; should
// one not, the returned context ends with check's error as its cause.
// BuildKit's pushes have no bound of their own on a registry that stops
// answering, and their progress has no bytes to tell a slow upload from a
// dead registry: a registry that answers lets a slow upload go on.
func watchPushes(ctx context.Context, statusCh chan<- *bkclient.SolveStatus, check func(context.Context) error, interval time.Duration) (context.Context, chan *bkclient.SolveStatus) {
	ctx, cancel := context.WithCancelCause(ctx)
	in := make(chan *bkclient.SolveStatus)
	go func() {
		defer close(statusCh)
		pushing := map[string]bool{} // the push steps started and not completed
		var checking atomic.Bool
		var tick <-chan time.Time
		var ticker *time.Ticker
		defer func() {
			if ticker != nil {
				ticker.Stop()
			}
		}()
		for {
			select {
			case s, ok := <-in:
				if !ok {
					return
				}
				for _, v := range s.Statuses {
					if isPushStep(v.ID) {
						pushing[v.ID] = v.Completed == nil
					}
				}
				switch active := anyTrue(pushing); {
				case active && ticker == nil:
					ticker = time.NewTicker(interval)
					tick = ticker.C
				case !active && ticker != nil:
					ticker.Stop()
					ticker, tick = nil, nil
				}
				statusCh <- s
			case <-tick:
				if !checking.CompareAndSwap(false, true) {
					continue // the last check still waits for its answer
				}
				go func() {
					defer checking.Store(false)
					if err := check(ctx); err != nil && ctx.Err() == nil {
						cancel(fmt.Errorf("the builder's push stopped: %w", err))
					}
				}()
			}
		}
	}()
	return ctx, in
}

// isPushStep tells whether a progress status of BuildKit's is one of its
// push's steps.
func isPushStep(id string) bool {
	return id == "pushing layers" || strings.HasPrefix(id, "pushing manifest for ")
}

func anyTrue(m map[string]bool) bool {
	for _, v := range m {
		if v {
			return true
		}
	}
	return false
}
