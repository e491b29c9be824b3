//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/platforms"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// remoteBuilderBound bounds a remote buildkitd's start, as the test bed's.
const remoteBuilderBound = 2 * time.Minute

// netns is a network namespace of the test's own, joined to the host by a
// veth pair with a /30 of 198.18.0.0/15 (RFC 2544's benchmarking range)
// chosen at random, so that test beds side by side do not clash. In it,
// the test bed's registry (127.0.0.1:PORT on the host) is at the same
// address: connections to it leave through the veth (DNAT to the host's
// end) and a relay of the test on the host's end takes them to the
// registry, so an image has one name on both sides.
type netns struct {
	name           string
	hostIP, nsIP   netip.Addr
	hostIf, nsIf   string
	registryRelay  net.Listener
	relays         sync.WaitGroup
	relayConnsDone chan struct{}
}

// newNetns makes the namespace, removed with its veth pair when t ends.
func newNetns(t *testing.T) *netns {
	t.Helper()
	id := make([]byte, 4)
	rand.Read(id)
	tag := hex.EncodeToString(id)
	slot := binary.BigEndian.Uint32(id) % (1 << 15) // /30s in a /15
	base := netip.AddrFrom4([4]byte{198, 18, 0, 0}).As4()
	v := binary.BigEndian.Uint32(base[:]) + slot*4
	var host, ns [4]byte
	binary.BigEndian.PutUint32(host[:], v+1)
	binary.BigEndian.PutUint32(ns[:], v+2)
	n := &netns{name: "spk-" + tag, hostIP: netip.AddrFrom4(host), nsIP: netip.AddrFrom4(ns), hostIf: "spkh" + tag, nsIf: "spkn" + tag, relayConnsDone: make(chan struct{})}
	must(t, nil, "ip", "netns", "add", n.name)
	t.Cleanup(func() {
		// The pair goes with either end; the namespace's would go with
		// the namespace, but later (the kernel tears namespaces down in
		// the background).
		if cmd(nil, "ip", "link", "show", n.hostIf).err == nil {
			if r := cmd(nil, "ip", "link", "del", n.hostIf); r.err != nil {
				t.Errorf("%s", r)
			}
		}
		if r := cmd(nil, "ip", "netns", "del", n.name); r.err != nil {
			t.Errorf("%s", r)
		}
	})
	in := func(args ...string) { must(t, nil, "ip", append([]string{"netns", "exec", n.name}, args...)...) }
	must(t, nil, "ip", "link", "add", n.hostIf, "type", "veth", "peer", "name", n.nsIf, "netns", n.name)
	must(t, nil, "ip", "addr", "add", n.hostIP.String()+"/30", "dev", n.hostIf)
	must(t, nil, "ip", "link", "set", n.hostIf, "up")
	in("ip", "addr", "add", n.nsIP.String()+"/30", "dev", n.nsIf)
	in("ip", "link", "set", n.nsIf, "up")
	in("ip", "link", "set", "lo", "up")
	n.relayRegistry(t, in)
	return n
}

// relayRegistry makes the registry's address answer in the namespace:
// there, connections to 127.0.0.1:PORT go to the host's end of the veth,
// where a relay of the test passes them to the registry.
func (n *netns) relayRegistry(t *testing.T, in func(args ...string)) {
	t.Helper()
	_, port, err := net.SplitHostPort(bed.registry)
	if err != nil {
		t.Fatal(err)
	}
	hostEnd := net.JoinHostPort(n.hostIP.String(), port)
	l, err := net.Listen("tcp", hostEnd)
	if err != nil {
		t.Fatal(err)
	}
	n.registryRelay = l
	t.Cleanup(func() {
		l.Close()
		close(n.relayConnsDone)
		n.relays.Wait()
	})
	n.relays.Add(1)
	go func() {
		defer n.relays.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.relays.Add(1)
			go func() {
				defer n.relays.Done()
				relay(c, bed.registry, n.relayConnsDone)
			}()
		}
	}()
	// Loopback addresses may leave through the veth only with
	// route_localnet, and leave with the namespace's own as source.
	in("sysctl", "-q", "-w", "net.ipv4.conf.all.route_localnet=1")
	in("iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "127.0.0.1", "--dport", port, "-j", "DNAT", "--to-destination", hostEnd)
	in("iptables", "-t", "nat", "-A", "POSTROUTING", "-p", "tcp", "-d", n.hostIP.String(), "--dport", port, "-j", "SNAT", "--to-source", n.nsIP.String())
}

// relay copies between c and a new connection to addr both ways until
// either ends, or done closes.
func relay(c net.Conn, addr string, done <-chan struct{}) {
	defer c.Close()
	up, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	ended := make(chan struct{}, 2)
	go func() { io.Copy(up, c); ended <- struct{}{} }()
	go func() { io.Copy(c, up); ended <- struct{}{} }()
	select {
	case <-ended:
	case <-done:
	}
}

// remoteServerName is a name the builder's certificate carries besides its
// address, for --tlsservername.
const remoteServerName = "buildkitd.e2e.storepack.test"

// tlsFiles are the PEM files of a CA, a server certificate it signed for
// the builder's address and a client certificate it signed.
type tlsFiles struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

// newTLSFiles writes a CA and the certificates it signs into dir.
func newTLSFiles(t *testing.T, dir string, serverIP netip.Addr) tlsFiles {
	t.Helper()
	f := tlsFiles{
		ca:         filepath.Join(dir, "ca.pem"),
		serverCert: filepath.Join(dir, "server.pem"), serverKey: filepath.Join(dir, "server-key.pem"),
		clientCert: filepath.Join(dir, "client.pem"), clientKey: filepath.Join(dir, "client-key.pem"),
	}
	serial := int64(0)
	now := time.Now()
	issue := func(tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, filepath.Base(certFile), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
		if keyFile != "" {
			writeFile(t, dir, filepath.Base(keyFile), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
		}
		return cert, key
	}
	ca, caKey := issue(&x509.Certificate{
		Subject: pkix.Name{CommonName: "storepack e2e CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil, f.ca, "")
	issue(&x509.Certificate{
		Subject: pkix.Name{CommonName: "buildkitd"}, IPAddresses: []net.IP{serverIP.AsSlice()}, DNSNames: []string{remoteServerName},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, caKey, f.serverCert, f.serverKey)
	issue(&x509.Certificate{
		Subject:  pkix.Name{CommonName: "storepack e2e client"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, caKey, f.clientCert, f.clientKey)
	return f
}

// remoteBuildkitd is a buildkitd the test started, with a root dir and a
// log of its own.
type remoteBuildkitd struct {
	addr string
	log  string
}

// startBuildkitd starts buildkitd with a root of its own under dir,
// listening on addr (with tlsArgs, buildkitd's --tls* flags), in the
// namespace ns ("" for the host's), with its OCI worker declaring
// platforms (nil: buildkitd's own); debug logging shows each solve's
// platform. It is stopped when t ends. ready checks it answers, as a
// client that has the certificates.
func startBuildkitd(t *testing.T, dir, ns, addr string, platforms []string, tlsArgs []string, ready []string) remoteBuildkitd {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf("root = %q\n[worker.oci]\n  enabled = true\n  snapshotter = %q\n", filepath.Join(dir, "root"), os.Getenv("TESTBED_BUILDKIT_SNAPSHOTTER"))
	if len(platforms) > 0 {
		config += fmt.Sprintf("  platforms = [\"%s\"]\n", strings.Join(platforms, `", "`))
	}
	// docker.io through the registry, as the test bed's buildkitd: the
	// frontend image is there.
	config += fmt.Sprintf("[worker.containerd]\n  enabled = false\n[registry.\"docker.io\"]\n  mirrors = [%q]\n[registry.%q]\n  http = true\n", bed.registry, bed.registry)
	conf := writeFile(t, dir, "buildkitd.toml", config)
	args := append([]string{"buildkitd", "--debug", "--config", conf, "--addr", addr, "--otel-socket-path", filepath.Join(dir, "otel.sock")}, tlsArgs...)
	if ns != "" {
		// Into the network namespace alone: `ip netns exec` would also
		// mount a /sys of its own, without the cgroup mount runc needs.
		args = append([]string{"nsenter", "--net=/run/netns/" + ns, "--"}, args...)
	}
	logFile := filepath.Join(dir, "buildkitd.log")
	logw, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Command(args[0], args[1:]...)
	c.Stdout, c.Stderr = logw, logw
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait(); logw.Close() }()
	t.Cleanup(func() {
		c.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			c.Process.Kill()
			<-exited
		}
		if t.Failed() {
			if data, err := os.ReadFile(logFile); err == nil {
				t.Logf("%s (last 4 KiB):\n%s", logFile, data[max(0, len(data)-4096):])
			}
		}
	})
	// Poll until it answers, bounded; its exit ends the wait at once.
	ctx, cancel := context.WithTimeout(context.Background(), remoteBuilderBound)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	probe := append([]string{"--addr", addr}, ready...)
	for {
		if cmdWithin(30*time.Second, nil, "buildctl", append(probe, "debug", "workers")...).err == nil {
			return remoteBuildkitd{addr: addr, log: logFile}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("buildkitd exited before it answered: %v\n%s", err, readFile(t, logFile))
		case <-ctx.Done():
			t.Fatalf("buildkitd did not answer within %s\n%s", remoteBuilderBound, readFile(t, logFile))
		case <-tick.C:
		}
	}
}

// TestRemoteTLS builds on a buildkitd in a network namespace of its own,
// reached over TCP with mutual TLS, nothing of the store shared on disk:
// the plugin reaches it with --addr and buildctl's --tls* flags, and as a
// buildx remote builder with cacert, cert and key; it builds a manifest
// with COPY and one with FROM and RUN (which need the builder), and a plain
// one, pushes them to the registry, and the images run. A client without
// the client certificate is refused, in one line that says so.
func TestRemoteTLS(t *testing.T) {
	installPlugin(t)
	ns := newNetns(t)
	dir := t.TempDir()
	certs := newTLSFiles(t, dir, ns.nsIP)
	addr := "tcp://" + net.JoinHostPort(ns.nsIP.String(), "1234")
	startBuildkitd(t, filepath.Join(dir, "buildkitd"), ns.name, addr, nil,
		[]string{"--tlscacert", certs.ca, "--tlscert", certs.serverCert, "--tlskey", certs.serverKey},
		[]string{"--tlscacert", certs.ca, "--tlscert", certs.clientCert, "--tlskey", certs.clientKey})
	builder := "storepack-remote-tls-" + ns.name
	must(t, nil, "docker", "buildx", "create", "--name", builder, "--driver", "remote",
		"--driver-opt", fmt.Sprintf("cacert=%s,cert=%s,key=%s", certs.ca, certs.clientCert, certs.clientKey), addr)
	t.Cleanup(func() { cmd(nil, "docker", "buildx", "rm", builder) })

	c := nixClosure(t)
	writeFile(t, c.dir, "remote.conf", "sent through the session\n")
	tlsFlags := []string{"--addr", addr, "--tlscacert", certs.ca, "--tlscert", certs.clientCert, "--tlskey", certs.clientKey}
	busybox := pathNamed(t, c, "busybox") + "/bin/busybox"
	for i, tc := range []struct {
		name    string
		builder []string
		extra   []string // nil: a plain image, which the host writes
		from    bool     // on the registry's busybox
		check   []string // a command in the image, and what it prints
	}{
		{"COPY with --addr and --tls flags", tlsFlags, []string{"COPY remote.conf /etc/remote.conf"}, false, []string{busybox, "cat", "/etc/remote.conf", "sent through the session\n"}},
		{"FROM and RUN on the buildx remote builder", []string{"--builder", builder}, []string{"RUN echo ran remotely > /ran"}, true, []string{"/bin/cat", "/ran", "ran remotely\n"}},
		{"plain on the buildx remote builder", []string{"--builder", builder}, nil, false, nil},
		{"COPY with --tlsservername", slices.Concat(tlsFlags, []string{"--tlsservername", remoteServerName}), []string{"COPY remote.conf /etc/remote.conf"}, false, []string{busybox, "cat", "/etc/remote.conf", "sent through the session\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tag := fmt.Sprintf("%s/storepack-e2e/remote-tls:case%d", bed.registry, i)
			text := manifest("./result", "path-info.json", tc.extra...)
			if tc.from {
				text = fromManifest(bed.registry+"/library/busybox:latest", "./result", "path-info.json", tc.extra...)
			}
			df := writeFile(t, c.dir, "remote.storepack", text)
			_, stderr := mustPluginEnv(t, nil, append(append([]string{"build", "--progress=plain"}, tc.builder...), "-f", df, "-t", tag, "--push", c.dir)...)
			if tc.extra != nil && !strings.Contains(stderr, "instance using remote driver") {
				t.Errorf("the build did not name the remote builder:\n%s", stderr)
			}
			must(t, nil, bed.docker, "pull", "-q", tag)
			t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", tag) })
			if tc.check != nil {
				n := len(tc.check) - 1
				if out := dockerRun(t, append([]string{"--rm", "--entrypoint", tc.check[0], tag}, tc.check[1:n]...)...); out != tc.check[n] {
					t.Errorf("%v printed %q, want %q", tc.check[:n], out, tc.check[n])
				}
			}
			if !tc.from {
				if out := dockerRun(t, "--rm", tag); strings.TrimSpace(out) != greeting {
					t.Errorf("docker run printed %q, want %q", out, greeting)
				}
			}
		})
	}
	t.Run("docker buildx build with the frontend image on the remote builder", func(t *testing.T) {
		df := writeFile(t, c.dir, "buildx.storepack", manifest("./result", "path-info.json", "COPY remote.conf /etc/remote.conf"))
		tag := bed.registry + "/storepack-e2e/remote-tls:buildx"
		must(t, nil, "docker", "buildx", "build", "--builder", builder, "--progress=plain", "-f", df, "--build-context", "store=/nix/store", "-t", tag, "--push", c.dir)
		must(t, nil, bed.docker, "pull", "-q", tag)
		t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", tag) })
		if out := dockerRun(t, "--rm", tag); strings.TrimSpace(out) != greeting {
			t.Errorf("docker run printed %q, want %q", out, greeting)
		}
	})
	t.Run("refused under a name its certificate does not carry", func(t *testing.T) {
		_, stderr, err := runPluginEnv(nil, "build", "-q", "--addr", addr, "--tlscacert", certs.ca, "--tlscert", certs.clientCert, "--tlskey", certs.clientKey, "--tlsservername", "elsewhere.e2e.storepack.test", "-f", filepath.Join(c.dir, "remote.storepack"), c.dir)
		if want := "not elsewhere.e2e.storepack.test"; err == nil || !strings.Contains(stderr, want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("err %v, stderr %q; want one line with %q", err, stderr, want)
		}
	})
	t.Run("refused without the client certificate", func(t *testing.T) {
		df := writeFile(t, c.dir, "refused.storepack", manifest("./result", "path-info.json", "COPY remote.conf /etc/remote.conf"))
		tag := bed.registry + "/storepack-e2e/remote-tls:refused"
		_, stderr, err := runPluginEnv(nil, "build", "-q", "--addr", addr, "--tlscacert", certs.ca, "-f", df, "-t", tag, "--push", c.dir)
		want := fmt.Sprintf("cannot reach the builder %q (remote driver): it asks for a client certificate, which this client has none of: give --tlscert and --tlskey (buildx: driver-opts cert and key)", addr)
		if err == nil || !strings.Contains(stderr, want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("err %v, stderr %q; want the one line %q", err, stderr, want)
		}
		if r := cmd(nil, bed.docker, "manifest", "inspect", "--insecure", tag); r.err == nil {
			t.Errorf("%s was pushed", tag)
		}
	})
}

// TestRemoteMultiNode builds two platforms on a buildx builder of two
// remote nodes, each a buildkitd of its own declared for one platform (see
// checkMultiNode); one platform alone goes to its node, and an archive of
// both is refused.
func TestRemoteMultiNode(t *testing.T) {
	installPlugin(t)
	dir := t.TempDir()
	builder := "storepack-multinode-" + filepath.Base(dir)
	t.Cleanup(func() { cmd(nil, "docker", "buildx", "rm", builder) })
	var nodes []multiNode
	for i, n := range []multiNode{{name: "amd64", platform: "linux/amd64", arch: "amd64"}, {name: "armv7", platform: "linux/arm/v7", arch: "arm"}} {
		nodeDir := filepath.Join(dir, n.name)
		d := startBuildkitd(t, nodeDir, "", "unix://"+filepath.Join(nodeDir, "buildkitd.sock"), []string{n.platform}, nil, nil)
		n.log = func(t *testing.T) string { return readFile(t, d.log) }
		n.holds = func(t *testing.T, blob string) bool {
			_, err := os.Stat(filepath.Join(nodeDir, "root", "runc-"+os.Getenv("TESTBED_BUILDKIT_SNAPSHOTTER"), "content", "blobs", "sha256", blob))
			return err == nil
		}
		args := []string{"buildx", "create", "--name", builder, "--driver", "remote", "--node", n.node(builder), "--platform", n.platform}
		if i > 0 {
			args = append(args, "--append")
		}
		must(t, nil, "docker", append(args, d.addr)...)
		nodes = append(nodes, n)
	}
	mf, multiDir, repo := checkMultiNode(t, builder, "remote", nodes)
	t.Run("one platform goes to its node", func(t *testing.T) {
		armTag := repo + ":arm-only"
		_, stderr := mustPluginEnv(t, nil, "build", "--progress=plain", "--builder", builder, "--platform", "linux/arm/v7", "-f", mf, "-t", armTag, "--push", multiDir)
		if want := fmt.Sprintf("building with %q instance", builder+"/"+builder+"-armv7"); !strings.Contains(stderr, want) || strings.Count(stderr, "#0 building with") != 1 {
			t.Errorf("want one build, %s:\n%s", want, stderr)
		}
	})
	t.Run("an archive of several nodes' images is refused", func(t *testing.T) {
		dest := filepath.Join(t.TempDir(), "multinode.tar")
		_, stderr, err := runPluginEnv(nil, "build", "-q", "--builder", builder, "--platform", "linux/amd64,linux/arm/v7", "-f", mf, "-o", "type=oci,dest="+dest, multiDir)
		want := fmt.Sprintf("the builder %q builds these platforms on 2 nodes (linux/amd64 on %s-amd64; linux/arm/v7 on %s-armv7): only --push joins their images", builder, builder, builder)
		if err == nil || !strings.Contains(stderr, want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("err %v, stderr %q; want one line with %q", err, stderr, want)
		}
		if entries, _ := os.ReadDir(filepath.Dir(dest)); len(entries) > 0 {
			t.Errorf("left behind: %v", entries)
		}
	})
}

// multiNode is a node of a buildx builder that checkMultiNode builds on:
// the platform it is declared for (and uname -m's word for it), its log
// and whether its content store holds a blob (sha256 hex).
type multiNode struct {
	name, platform, arch string
	log                  func(t *testing.T) string
	holds                func(t *testing.T, blob string) bool
}

// node is the buildx node's name in builder.
func (n multiNode) node(builder string) string { return builder + "-" + n.name }

// checkMultiNode builds the multi-arch closures for each node's platform
// on builder (of the given driver) with --push: each platform's solve goes
// to its node, which exports only its own platform's image (its store holds
// that image's manifest and not the other's, and its log names that
// manifest's push alone), and the registry gets one index of both, each of
// which runs (arm under qemu). The manifest has COPY, so the builder builds
// it. It returns the manifest, its directory and the repository pushed to.
func checkMultiNode(t *testing.T, builder, driver string, nodes []multiNode) (mf, multiDir, repo string) {
	t.Helper()
	multiDir = multiarchClosures(t, "multinode")
	writeFile(t, multiDir, "node.conf", "copied on each node\n")
	mf = multiarchManifest(t, multiDir, "LINK /bin -> bin", "COPY node.conf /etc/node.conf", `ENTRYPOINT ["/bin/hello"]`)
	repo = bed.registry + "/storepack-e2e/multinode-" + driver
	tag := repo + ":1"
	var ps []string
	for _, n := range nodes {
		ps = append(ps, n.platform)
	}
	_, stderr := mustPluginEnv(t, nil, "build", "--progress=plain", "--builder", builder, "--platform", strings.Join(ps, ","), "-f", mf, "-t", tag, "--push", multiDir)

	var index ocispecs.Index
	if err := json.Unmarshal(registryGet(t, repo, "1", ocispecs.MediaTypeImageIndex), &index); err != nil {
		t.Fatal(err)
	}
	built := map[string]ocispecs.Descriptor{} // platform -> its manifest
	for _, m := range index.Manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" {
			continue
		}
		built[platforms.Format(*m.Platform)] = m
	}
	if len(built) != len(nodes) {
		t.Fatalf("the index holds %v, want %v", slices.Sorted(maps.Keys(built)), ps)
	}
	for p, m := range built {
		var img ocispecs.Manifest
		if err := json.Unmarshal(registryGet(t, repo, m.Digest.String(), m.MediaType), &img); err != nil || len(img.Layers) == 0 {
			t.Fatalf("%s: manifest %v", p, err)
		}
		if got := layerFile(t, repo, img.Layers[len(img.Layers)-1], "etc/node.conf"); got != "copied on each node\n" {
			t.Errorf("%s: the COPY layer's etc/node.conf holds %q", p, got)
		}
	}
	for _, n := range nodes {
		log := n.log(t)
		for _, other := range nodes {
			m, ok := built[other.platform]
			if !ok {
				t.Fatalf("the index has no %s image", other.platform)
			}
			held, logged := n.holds(t, m.Digest.Encoded()), strings.Contains(log, m.Digest.Encoded())
			if mine := other.platform == n.platform; held != mine || logged != mine {
				t.Errorf("node %s: holds the %s image's manifest %s: %v, its log names it: %v; want %v", n.name, other.platform, m.Digest, held, logged, mine)
			}
		}
		if want := fmt.Sprintf("building with %q instance using %s driver", builder+"/"+n.node(builder), driver); !strings.Contains(stderr, want) {
			t.Errorf("the build did not say %s:\n%s", want, stderr)
		}
	}
	for _, n := range nodes {
		must(t, nil, bed.docker, "pull", "-q", "--platform", n.platform, tag)
		t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", tag) })
		if out := dockerRun(t, "--rm", "--platform", n.platform, tag); !strings.Contains(out, "arch="+n.arch+"\n") || !strings.Contains(out, greeting) {
			t.Errorf("docker run --platform %s printed %q, want arch=%s and %q", n.platform, out, n.arch, greeting)
		}
	}
	return mf, multiDir, repo
}

// layerFile is the content of the file name in the gzip layer l of repo,
// "" when the layer has no such file.
func layerFile(t *testing.T, repo string, l ocispecs.Descriptor, name string) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(registryGet(t, repo, "blob:"+l.Digest.String())))
	if err != nil {
		t.Fatalf("layer %s: %v", l.Digest, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return ""
		}
		if err != nil {
			t.Fatalf("layer %s: %v", l.Digest, err)
		}
		if strings.TrimPrefix(h.Name, "./") == name {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(data)
		}
	}
}
