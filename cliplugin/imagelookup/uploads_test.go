package imagelookup

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
)

func TestCheckUploads(t *testing.T) {
	reg := newFakeRegistry(t, false)
	for i, ref := range []string{reg.host + "/app:1", reg.host + "/new/repository"} {
		if err := CheckUploads(t.Context(), ref, Sources{}); err != nil {
			t.Errorf("%s: %v, want none (the registry takes uploads)", ref, err)
		}
		if started, chunks, open := reg.uploadCounts(); started != i+1 || chunks != i+1 || open != 0 {
			t.Errorf("%s: %d uploads started, %d chunks taken, %d left open; want %d, %d, 0", ref, started, chunks, open, i+1, i+1)
		}
	}

	// A registry that answers 503 to an upload.
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	host := strings.TrimPrefix(failing.URL, "http://")
	if err := CheckUploads(t.Context(), host+"/app:1", Sources{}); err == nil || !strings.HasPrefix(err.Error(), "the registry "+host+": ") || !strings.Contains(err.Error(), "503") {
		t.Errorf("a registry answering 503: %v", err)
	}

	if err := CheckUploads(t.Context(), "App:1", Sources{}); err == nil || !strings.HasPrefix(err.Error(), "App:1: not an image reference") {
		t.Errorf("a bad reference: %v", err)
	}
}

// TestCheckUploadsStalled: a registry that answers reads and never an
// upload passes CheckRegistry and fails CheckUploads, naming it, when the
// caller's bound ends.
func TestCheckUploadsStalled(t *testing.T) {
	reg := newFakeRegistry(t, false)
	stalled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost, http.MethodPatch, http.MethodPut:
			<-r.Context().Done()
		default:
			reg.ServeHTTP(w, r)
		}
	}))
	defer stalled.Close()
	host := strings.TrimPrefix(stalled.URL, "http://")
	ref := host + "/app:1"
	if err := CheckRegistry(t.Context(), ref, Sources{}); err != nil {
		t.Fatalf("the read check: %v, want none (reads are answered)", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err := CheckUploads(ctx, ref, Sources{})
	if err == nil || !strings.HasPrefix(err.Error(), "the registry "+host+": ") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("uploads stalled: %v, want the registry named and the deadline", err)
	}
}

// TestCheckUploadsCredentials: the upload is made with docker's
// credentials; without them the registry's refusal is the push's to judge.
func TestCheckUploadsCredentials(t *testing.T) {
	reg := newFakeRegistry(t, false)
	reg.auth = "alice:secret"
	ref := reg.host + "/private/app:1"
	if err := CheckUploads(t.Context(), ref, Sources{}); err != nil {
		t.Errorf("without credentials: %v, want none (a refusal is an answer)", err)
	}
	if started, _, _ := reg.uploadCounts(); started != 0 {
		t.Errorf("without credentials: %d uploads started", started)
	}
	cfg := configfile.New("")
	cfg.AuthConfigs = map[string]types.AuthConfig{reg.host: {Username: "alice", Password: "secret"}}
	if err := CheckUploads(t.Context(), ref, Sources{Auth: cfg}); err != nil {
		t.Errorf("with credentials: %v", err)
	}
	if started, chunks, open := reg.uploadCounts(); started != 1 || chunks != 1 || open != 0 {
		t.Errorf("with credentials: %d uploads started, %d chunks taken, %d left open; want 1, 1, 0", started, chunks, open)
	}
}
