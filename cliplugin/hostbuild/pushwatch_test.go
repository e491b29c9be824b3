package hostbuild

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	bkclient "github.com/moby/buildkit/client"
)

// step is a progress status of one of BuildKit's steps, started or done.
func step(id string, done bool) *bkclient.SolveStatus {
	now := time.Now()
	v := &bkclient.VertexStatus{ID: id, Started: &now}
	if done {
		v.Completed = &now
	}
	return &bkclient.SolveStatus{Statuses: []*bkclient.VertexStatus{v}}
}

// forward sends statuses into a watched build's channel and closes it,
// and returns how many came out on the other side.
func forward(statuses []*bkclient.SolveStatus, in chan<- *bkclient.SolveStatus, out <-chan *bkclient.SolveStatus) int {
	go func() {
		for _, s := range statuses {
			in <- s
		}
		close(in)
	}()
	n := 0
	for range out {
		n++
	}
	return n
}

func TestWatchPushesEndsAStalledPush(t *testing.T) {
	out := make(chan *bkclient.SolveStatus)
	stalled := errors.New("the registry example.test did not answer")
	ctx, in := watchPushes(context.Background(), out, func(context.Context) error { return stalled }, time.Millisecond)
	go func() { in <- step("pushing layers", false) }()
	<-out
	select {
	case <-ctx.Done():
	case <-time.After(time.Minute):
		t.Fatal("a push to a registry that does not answer went on")
	}
	if cause := context.Cause(ctx); !errors.Is(cause, stalled) {
		t.Errorf("cause %v, want %v", cause, stalled)
	}
	close(in)
	for range out {
	}
}

func TestWatchPushesChecksOnlyWhilePushing(t *testing.T) {
	var checks atomic.Int32
	check := func(context.Context) error { checks.Add(1); return errors.New("checked") }
	out := make(chan *bkclient.SolveStatus)
	// A build that pushes nothing, and one whose push is done before a
	// check is due: the ticker never runs.
	statuses := []*bkclient.SolveStatus{step("exporting layers", false), step("exporting layers", true),
		step("pushing layers", false), step("pushing layers", true)}
	ctx, in := watchPushes(context.Background(), out, check, time.Hour)
	if n := forward(statuses, in, out); n != len(statuses) {
		t.Errorf("%d statuses forwarded, want %d", n, len(statuses))
	}
	if checks.Load() != 0 || ctx.Err() != nil {
		t.Errorf("%d checks, context %v: want none, not ended", checks.Load(), ctx.Err())
	}
	// A registry that answers lets a slow push go on.
	out = make(chan *bkclient.SolveStatus)
	answered := make(chan struct{}, 1)
	ctx, in = watchPushes(context.Background(), out, func(context.Context) error {
		select {
		case answered <- struct{}{}:
		default:
		}
		return nil
	}, time.Millisecond)
	go func() { in <- step("pushing manifest for example.test/app:1", false) }()
	<-out
	select {
	case <-answered:
	case <-time.After(time.Minute):
		t.Fatal("no check while the manifest was pushed")
	}
	close(in)
	for range out {
	}
	if ctx.Err() != nil {
		t.Errorf("a push whose registry answers ended: %v", context.Cause(ctx))
	}
}
