package imagelookup

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestIdleTransport: an exchange that stands still (a registry that stops
// taking an upload, answers nothing, or stops in the middle of its answer) ends
// with an IdleError naming the registry; one whose bytes keep moving goes
// on past the bound.
func TestIdleTransport(t *testing.T) {
	const idle = 500 * time.Millisecond
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/take-nothing" {
			<-done
			return
		}
		// Read, so that the server sees the client go.
		io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/stall":
			<-r.Context().Done()
		case "/half":
			w.Write([]byte("half an answer"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		case "/slow":
			// Four times the bound, a byte at a time.
			for range 40 {
				w.Write([]byte("x"))
				w.(http.Flusher).Flush()
				time.Sleep(idle / 10)
			}
		}
	}))
	defer srv.Close()
	defer close(done)
	client := &http.Client{Transport: idleTransport{next: http.DefaultTransport, idle: idle}}
	host := strings.TrimPrefix(srv.URL, "http://")

	// More than the connection's buffers hold, for /take-nothing.
	blob := strings.Repeat("a blob ", 16<<20)
	for _, path := range []string{"/stall", "/half", "/take-nothing"} {
		resp, err := client.Post(srv.URL+path, "text/plain", strings.NewReader(blob))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		var idleErr *IdleError
		if !errors.As(err, &idleErr) || idleErr.Host != host || !strings.Contains(err.Error(), "the registry "+host+" stopped answering") {
			t.Errorf("%s: error %v, want one naming the registry %s", path, err, host)
		}
	}
	resp, err := client.Get(srv.URL + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if body, err := io.ReadAll(resp.Body); err != nil || len(body) != 40 {
		t.Errorf("/slow: %d bytes, %v; want all 40", len(body), err)
	}
}
