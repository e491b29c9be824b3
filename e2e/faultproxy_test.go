//go:build e2e

package e2e

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// fault is how a faultProxy treats the connections it accepts.
type fault string

const (
	passThrough fault = "pass"   // forwarded to the registry
	refuse      fault = "refuse" // nothing listens: connections are refused
	stall       fault = "stall"  // accepted and read, never answered
	reset       fault = "reset"  // the request read, then the connection reset (RST)
	serverError fault = "5xx"    // every request answered 503 Service Unavailable
	// Reads forwarded, uploads (POST, PUT, PATCH) never answered: a push
	// stays in "pushing layers" until its client gives up.
	stallUploads fault = "stall-uploads"
	// Everything forwarded until the first upload starts (a POST), then
	// nothing answered: a registry that dies in the middle of a push,
	// after answering the checks before it.
	stallMidPush fault = "stall-mid-push"
)

// faults are the modes in which a registry fails.
var faults = []fault{refuse, stall, reset, serverError}

// faultProxy is a registry on loopback that is the test bed's registry
// (same repositories, same blobs) behind a fault: an image pushed to the
// registry is, through the proxy, ADDR/repo:tag.
type faultProxy struct {
	addr string // host:port of the proxy, on 127.0.0.1
	ln   net.Listener
	mode fault

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// newFaultProxy starts a proxy in front of the test bed's registry that
// fails as mode says; the test's end closes it and every connection it
// holds (a stalled client then sees its connection close).
func newFaultProxy(t *testing.T, mode fault) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{addr: ln.Addr().String(), ln: ln, mode: mode}
	switch mode {
	case refuse:
		// The port was free a moment ago and nothing listens on it now.
		ln.Close()
		return p
	case serverError, stallUploads, stallMidPush:
		var handler http.HandlerFunc = func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "injected fault", http.StatusServiceUnavailable)
		}
		registry := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: bed.registry})
		switch mode {
		case stallUploads:
			handler = func(w http.ResponseWriter, r *http.Request) {
				switch r.Method {
				case http.MethodPost, http.MethodPut, http.MethodPatch:
					<-r.Context().Done() // the client gone, or the proxy closed
				default:
					registry.ServeHTTP(w, r)
				}
			}
		case stallMidPush:
			var dead sync.Once
			died := make(chan struct{})
			handler = func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost {
					dead.Do(func() { close(died) })
				}
				select {
				case <-died:
					<-r.Context().Done()
				default:
					registry.ServeHTTP(w, r)
				}
			}
		}
		srv := &http.Server{Handler: handler}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			srv.Serve(ln)
		}()
		t.Cleanup(func() {
			srv.Close()
			p.wg.Wait()
		})
		return p
	}
	p.wg.Add(1)
	go p.accept(t)
	t.Cleanup(p.close)
	return p
}

func (p *faultProxy) accept(t *testing.T) {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("fault proxy: %v", err)
			}
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

func (p *faultProxy) serve(c net.Conn) {
	switch p.mode {
	case stall:
		io.Copy(io.Discard, c)
	case reset:
		c.Read(make([]byte, 512))
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	case passThrough:
		up, err := net.Dial("tcp", bed.registry)
		if err != nil {
			c.Close()
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, up)
		p.mu.Unlock()
		go func() {
			io.Copy(up, c)
			up.(*net.TCPConn).CloseWrite()
		}()
		io.Copy(c, up)
		c.(*net.TCPConn).CloseWrite()
	}
}

func (p *faultProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
