package hostbuild

import (
	"crypto/tls"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTLSClientOpts(t *testing.T) {
	for _, tc := range []struct {
		tls TLS
		n   int
		err string
	}{
		{TLS{}, 0, ""},
		{TLS{CACert: "ca.pem"}, 1, ""},
		{TLS{CACert: "ca.pem", Cert: "c.pem", Key: "k.pem"}, 2, ""},
		{TLS{Cert: "c.pem", Key: "k.pem"}, 0, "needs the CA certificate"},
		{TLS{CACert: "ca.pem", Cert: "c.pem"}, 0, "needs its key"},
		{TLS{CACert: "ca.pem", Key: "k.pem"}, 0, "needs its key"},
	} {
		opts, err := tc.tls.clientOpts()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: err %v, want %q", tc.tls, err, tc.err)
			}
			continue
		}
		if err != nil || len(opts) != tc.n {
			t.Errorf("%+v: %d options, err %v; want %d", tc.tls, len(opts), err, tc.n)
		}
	}
}

// TestRefusesWithoutCert: a daemon that wants a client certificate is
// recognised from its alert, which a client without one reads after the
// handshake.
func TestRefusesWithoutCert(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "tcp://" + srv.Listener.Addr().String()
	if !refusesWithoutCert(t.Context(), addr, TLS{CACert: ca}) {
		t.Errorf("%s asks for a client certificate, not recognised", addr)
	}
	if refusesWithoutCert(t.Context(), "unix:///nonexistent.sock", TLS{CACert: ca}) {
		t.Error("a unix socket taken for a TLS refusal")
	}
}

// A docker-container node is dialled on the engine buildx created it on:
// the address of a docker host, or a docker context's name.
func TestDialStdioArgs(t *testing.T) {
	for _, tc := range []struct {
		endpoint string
		want     []string
	}{
		{"unix:///run/other/docker.sock", []string{"--host", "unix:///run/other/docker.sock"}},
		{"ssh://builder@example.test", []string{"--host", "ssh://builder@example.test"}},
		{"other-context", []string{"--context", "other-context"}},
		{"", nil},
	} {
		want := append(tc.want, "exec", "-i", "buildx_buildkit_n0", "buildctl", "dial-stdio")
		if got := dialStdioArgs("buildx_buildkit_n0", tc.endpoint); !slices.Equal(got, want) {
			t.Errorf("endpoint %q: %q, want %q", tc.endpoint, got, want)
		}
	}
}
