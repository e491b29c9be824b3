package hostbuild

import (
	"context"
	"time"

	bkclient "github.com/moby/buildkit/client"
	"github.com/opencontainers/go-digest"
)

// progress puts the host pipeline's own steps into the build's progress
// display, beside the builder's; its channel is set once the build has
// one (a plan shows nothing).
type progress struct {
	ch chan<- *bkclient.SolveStatus
}

// step shows a step named name as started; the function it returns shows it
// completed, with lines of log, or failed with err.
func (p *progress) step(ctx context.Context, name string) func(err error, log string) {
	if p == nil || p.ch == nil {
		return func(error, string) {}
	}
	started := time.Now()
	v := &bkclient.Vertex{Digest: digest.FromString(name), Name: name, Started: &started}
	p.send(ctx, &bkclient.SolveStatus{Vertexes: []*bkclient.Vertex{v}})
	return func(err error, log string) {
		completed := time.Now()
		done := *v
		done.Completed = &completed
		if err != nil {
			done.Error = err.Error()
		}
		status := &bkclient.SolveStatus{Vertexes: []*bkclient.Vertex{&done}}
		if log != "" {
			status.Logs = []*bkclient.VertexLog{{Vertex: v.Digest, Stream: 1, Data: []byte(log + "\n"), Timestamp: completed}}
		}
		p.send(ctx, status)
	}
}

func (p *progress) send(ctx context.Context, s *bkclient.SolveStatus) {
	select {
	case p.ch <- s:
	case <-ctx.Done():
	}
}
