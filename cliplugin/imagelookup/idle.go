package imagelookup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// RegistryIdleTimeout bounds how long an exchange with a registry may move
// no byte either way (an upload the registry stops taking, an answer that
// stops coming): a registry that stops in the middle of a push then ends
// it with an error naming the registry, not a hang. A slow upload moves
// bytes and goes on. It is longer than the bounds that fire first where
// they apply, with their own errors: manifest2llb.RegistryTimeout for
// metadata, and containerd's wait for an answer to a request sent
// (ResponseHeaderTimeout, 30 s).
const RegistryIdleTimeout = 60 * time.Second

// IdleError says that a registry let an exchange stand still too long.
type IdleError struct {
	Host string
	Idle time.Duration
}

func (e *IdleError) Error() string {
	return fmt.Sprintf("the registry %s stopped answering: nothing moved for %s", e.Host, e.Idle)
}

// idleTransport ends a request, and its answer's body, once no byte of it
// moved for idle.
type idleTransport struct {
	next http.RoundTripper
	idle time.Duration
}

func (t idleTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	w := &watch{idle: t.idle, cancel: cancel, err: &IdleError{Host: req.URL.Host, Idle: t.idle}}
	w.timer = time.AfterFunc(t.idle, w.expire)
	req = req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = &watchedBody{ReadCloser: req.Body, w: w}
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		w.stop()
		return nil, w.cause(err)
	}
	w.touch()
	resp.Body = &watchedBody{ReadCloser: resp.Body, w: w, closes: true}
	return resp, nil
}

// watch cancels an exchange when its timer, reset by every byte that
// moves, runs out.
type watch struct {
	idle   time.Duration
	cancel context.CancelCauseFunc
	err    *IdleError

	mu      sync.Mutex
	timer   *time.Timer
	expired bool
}

func (w *watch) expire() {
	w.mu.Lock()
	w.expired = true
	w.mu.Unlock()
	w.cancel(w.err)
}

func (w *watch) touch() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.expired {
		w.timer.Reset(w.idle)
	}
}

func (w *watch) stop() {
	w.timer.Stop()
	w.cancel(nil)
}

// cause is err, or the IdleError when the watch ended the exchange.
func (w *watch) cause(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.expired {
		return w.err
	}
	return err
}

// watchedBody is a request's or an answer's body whose reads reset the
// watch; closing an answer's body ends the watch.
type watchedBody struct {
	io.ReadCloser
	w      *watch
	closes bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.w.touch()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		err = b.w.cause(err)
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.ReadCloser.Close()
	if b.closes {
		b.w.stop()
	}
	return err
}
