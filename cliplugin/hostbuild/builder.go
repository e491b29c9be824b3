// Package hostbuild builds images from the host's store through a BuildKit
// builder, as `docker storepack build` does: it picks the builder a docker
// user expects, runs the conversion (frontend/manifest2llb) in this process
// over the gateway API, so that no frontend image has to reach the builder,
// serves the closure's store paths from the host, and exports the result.
package hostbuild

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/connhelper/commandconn"
	bkclient "github.com/moby/buildkit/client"
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer" // docker-container:// addresses (--addr, BUILDKIT_HOST)
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Kind says what a builder is, which decides how images reach the engine.
type Kind string

const (
	// Engine is the docker engine's embedded BuildKit: its exporter puts
	// images into the engine's image store.
	Engine Kind = "docker"
	// Daemon is a BuildKit daemon (buildx's remote and docker-container
	// drivers, BUILDKIT_HOST): images are loaded into the engine from a
	// docker archive.
	Daemon Kind = "buildkitd"
)

// Builder is a BuildKit builder to build with: one daemon, or the nodes of
// a buildx builder, each building the platforms it is declared for.
type Builder struct {
	Name   string // as the user knows it: a buildx builder, an address, the docker context
	Driver string // buildx's word for how it is reached
	Kind   Kind
	Client *bkclient.Client // the first node's
	// Nodes are the builder's daemons, the first one's client being
	// Client: more than one for a buildx builder of several nodes.
	Nodes []*Node
}

// Node is one daemon of a builder, with the platforms it is declared for
// (`docker buildx create --platform`; none: only what its workers say).
type Node struct {
	Name      string
	Platforms []ocispecs.Platform
	// Client is nil until a build needs the node (connect): a node of a
	// buildx builder other than the first may be stopped or away, and a
	// build of other nodes' platforms goes on without it.
	Client *bkclient.Client
	dial   func(context.Context) (*bkclient.Client, error)
}

// connect dials those of nodes that are not connected yet, all at once.
func connect(ctx context.Context, nodes ...*Node) error {
	var eg errgroup.Group
	for _, n := range nodes {
		if n.Client == nil {
			eg.Go(func() (err error) {
				n.Client, err = n.dial(ctx)
				return err
			})
		}
	}
	return eg.Wait()
}

// Close closes the connections to the builder's nodes.
func (b *Builder) Close() error {
	var errs []error
	for _, n := range b.Nodes {
		if n.Client != nil {
			errs = append(errs, n.Client.Close())
		}
	}
	return errors.Join(errs...)
}

// Choice names the builder the user asked for; empty fields are unset.
type Choice struct {
	Addr    string // --addr
	Builder string // --builder
	TLS     TLS    // for --addr or BUILDKIT_HOST
}

// TLS is how a BuildKit daemon on TCP is reached with (mutual) TLS: the
// files buildctl's --tlscacert, --tlscert and --tlskey name, and the name
// to verify (--tlsservername; default the address's host), as buildx's
// remote driver takes them as cacert, cert, key and servername.
type TLS struct {
	CACert, Cert, Key, ServerName string
}

func (t TLS) set() bool { return t != TLS{} }

// clientOpts are the client's options for t, which TLS is on with a CA
// certificate; a client certificate needs its key.
func (t TLS) clientOpts() ([]bkclient.ClientOpt, error) {
	if !t.set() {
		return nil, nil
	}
	if t.CACert == "" {
		return nil, errors.New("TLS needs the CA certificate that signed the builder's (--tlscacert, or buildx's driver-opt cacert)")
	}
	if (t.Cert == "") != (t.Key == "") {
		return nil, errors.New("a client certificate needs its key, and a key its certificate (--tlscert with --tlskey, or buildx's driver-opts cert with key)")
	}
	opts := []bkclient.ClientOpt{bkclient.WithServerConfig(t.ServerName, t.CACert)}
	if t.Cert != "" {
		opts = append(opts, bkclient.WithCredentials(t.Cert, t.Key))
	}
	return opts, nil
}

// SelectBuilder connects to the builder a docker user expects: --addr, then
// --builder, then BUILDKIT_HOST, then BUILDX_BUILDER, then the builder
// `docker buildx use` selected, then the current docker context's engine.
func SelectBuilder(ctx context.Context, dockerCli command.Cli, choice Choice) (*Builder, error) {
	addr := choice.Addr
	if addr == "" && choice.Builder == "" {
		addr = os.Getenv("BUILDKIT_HOST")
	}
	if addr != "" {
		return daemonBuilder(ctx, addr, addr, "remote", choice.TLS)
	}
	if choice.TLS.set() {
		return nil, errors.New("--tlscacert, --tlscert, --tlskey and --tlsservername apply to a BuildKit daemon's address (--addr, BUILDKIT_HOST); a buildx builder has its own (docker buildx create --driver remote --driver-opt cacert=...,cert=...,key=...)")
	}
	switch {
	case choice.Builder != "":
		return buildxBuilder(ctx, dockerCli, choice.Builder)
	case os.Getenv("BUILDX_BUILDER") != "":
		return buildxBuilder(ctx, dockerCli, os.Getenv("BUILDX_BUILDER"))
	}
	name, err := selectedBuildxBuilder(dockerCli)
	if err != nil {
		return nil, err
	}
	if name != "" {
		return buildxBuilder(ctx, dockerCli, name)
	}
	return engineBuilder(ctx, dockerCli, dockerCli.CurrentContext())
}

func daemonBuilder(ctx context.Context, name, addr, driver string, tls TLS) (*Builder, error) {
	c, err := dialDaemon(ctx, name, addr, driver, tls)
	if err != nil {
		return nil, err
	}
	return &Builder{Name: name, Driver: driver, Kind: Daemon, Client: c, Nodes: []*Node{{Name: name, Client: c}}}, nil
}

// dialDaemon connects to the BuildKit daemon at addr (or through the
// dialer among extra), which the user knows as name, and checks that it
// answers.
func dialDaemon(ctx context.Context, name, addr, driver string, tls TLS, extra ...bkclient.ClientOpt) (*bkclient.Client, error) {
	opts, err := tls.clientOpts()
	if err != nil {
		return nil, fmt.Errorf("builder %s: %w", name, err)
	}
	opts = append(opts, extra...)
	c, err := bkclient.New(ctx, addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("builder %s: %w", name, err)
	}
	if err := check(ctx, c, name, driver); err != nil {
		if tls.CACert != "" && tls.Cert == "" && refusesWithoutCert(ctx, addr, tls) {
			return nil, fmt.Errorf("cannot reach the builder %q (%s driver): it asks for a client certificate, which this client has none of: give --tlscert and --tlskey (buildx: driver-opts cert and key)", name, driver)
		}
		return nil, err
	}
	return c, nil
}

// refusesWithoutCert tells whether the daemon at addr (tcp://) ends the
// TLS handshake of a client without a certificate with the alert that says
// it wants one: in TLS 1.3 the client learns it on its first read, which
// gRPC's error may not show (it may see its write fail first).
func refusesWithoutCert(ctx context.Context, addr string, t TLS) bool {
	u, err := url.Parse(addr)
	if err != nil || u.Scheme != "tcp" {
		return false
	}
	ca, err := os.ReadFile(t.CACert)
	if err != nil {
		return false
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{RootCAs: roots, ServerName: cmp.Or(t.ServerName, u.Hostname())}}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err == nil {
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Read(make([]byte, 1))
	}
	return err != nil && strings.Contains(err.Error(), "tls: certificate required")
}

// engineBuilder reaches the engine's embedded BuildKit through its /grpc
// and /session endpoints, as buildx's docker driver does.
func engineBuilder(ctx context.Context, dockerCli command.Cli, name string) (*Builder, error) {
	if dockerCli.DockerEndpoint().Host == "" {
		return nil, fmt.Errorf("no docker engine to build with: the docker context %q has no endpoint", name)
	}
	api := dockerCli.Client()
	c, err := bkclient.New(ctx, "",
		bkclient.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return api.DialHijack(ctx, "/grpc", "h2c", nil)
		}),
		bkclient.WithSessionDialer(func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
			return api.DialHijack(ctx, "/session", proto, meta)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("the docker engine's builder: %w", err)
	}
	if err := check(ctx, c, name, "docker"); err != nil {
		return nil, err
	}
	return &Builder{Name: name, Driver: "docker", Kind: Engine, Client: c, Nodes: []*Node{{Name: name, Client: c}}}, nil
}

// check asks the builder for its workers, so that an unreachable builder
// is one clear error before any work starts.
func check(ctx context.Context, c *bkclient.Client, name, driver string) error {
	if _, err := c.ListWorkers(ctx); err != nil {
		c.Close()
		return fmt.Errorf("cannot reach the builder %q (%s driver): %s", name, driver, firstLine(err.Error()))
	}
	return nil
}

// buildxNode is what a buildx builder's file says of one of its nodes.
type buildxNode struct {
	Name       string
	Endpoint   string
	Platforms  []ocispecs.Platform
	DriverOpts map[string]string
}

// tls is what the remote driver's options cacert, cert, key and servername
// say.
func (n buildxNode) tls() TLS {
	o := n.DriverOpts
	return TLS{CACert: o["cacert"], Cert: o["cert"], Key: o["key"], ServerName: o["servername"]}
}

// buildxGroup is a buildx builder's file, $DOCKER_CONFIG/buildx/instances/NAME.
type buildxGroup struct {
	Name   string
	Driver string
	Nodes  []buildxNode
}

func buildxDir(dockerCli command.Cli) string {
	if d := os.Getenv("BUILDX_CONFIG"); d != "" {
		return d
	}
	return filepath.Join(filepath.Dir(dockerCli.ConfigFile().Filename), "buildx")
}

// buildxBuilder connects to the first node of the buildx builder name (the
// others when a build needs them); a name buildx does not store is a docker
// context (buildx's docker driver).
func buildxBuilder(ctx context.Context, dockerCli command.Cli, name string) (*Builder, error) {
	data, err := os.ReadFile(filepath.Join(buildxDir(dockerCli), "instances", strings.ToLower(name)))
	if errors.Is(err, os.ErrNotExist) {
		if _, cerr := dockerCli.ContextStore().GetMetadata(name); cerr == nil || name == "default" {
			return engineBuilder(ctx, dockerCli, name)
		}
		return nil, fmt.Errorf("no buildx builder %q (docker buildx ls lists them)", name)
	}
	if err != nil {
		return nil, fmt.Errorf("buildx builder %q: %w", name, err)
	}
	var g buildxGroup
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("buildx builder %q: %w", name, err)
	}
	if len(g.Nodes) == 0 {
		return nil, fmt.Errorf("buildx builder %q has no nodes", name)
	}
	switch g.Driver {
	case "remote", "docker-container":
	case "docker":
		return engineBuilder(ctx, dockerCli, g.Nodes[0].Endpoint)
	default:
		return nil, fmt.Errorf("buildx builder %q uses the %s driver, which storepack cannot reach: use a remote, docker-container or docker builder, or --addr", name, g.Driver)
	}
	b := &Builder{Name: g.Name, Driver: g.Driver, Kind: Daemon}
	for _, node := range g.Nodes {
		addr, tls := node.Endpoint, node.tls()
		var extra []bkclient.ClientOpt
		if g.Driver == "docker-container" {
			addr, tls = "", TLS{}
			extra = append(extra, containerDialer("buildx_buildkit_"+node.Name, node.Endpoint))
		}
		known := g.Name
		if len(g.Nodes) > 1 {
			known = g.Name + "/" + node.Name
		}
		b.Nodes = append(b.Nodes, &Node{Name: node.Name, Platforms: node.Platforms, dial: func(ctx context.Context) (*bkclient.Client, error) {
			c, err := dialDaemon(ctx, known, addr, g.Driver, tls, extra...)
			if err != nil && g.Driver == "docker-container" {
				err = fmt.Errorf("%w (docker buildx inspect --bootstrap %s starts its containers)", err, g.Name)
			}
			return c, err
		}})
	}
	// The first node answers before any work starts, as a builder of one.
	if err := connect(ctx, b.Nodes[0]); err != nil {
		return nil, err
	}
	b.Client = b.Nodes[0].Client
	return b, nil
}

// containerDialer reaches the buildkitd in a docker-container node's
// container as buildx does, through `docker exec -i CONTAINER buildctl
// dial-stdio`, on the engine the node was created on (its endpoint: a
// docker host's address, or a docker context's name) rather than the one
// DOCKER_HOST or the current context names now.
func containerDialer(container, endpoint string) bkclient.ClientOpt {
	args := dialStdioArgs(container, endpoint)
	return bkclient.WithContextDialer(func(context.Context, string) (net.Conn, error) {
		// The connection outlives the dial's context, which would end the command.
		return commandconn.New(context.Background(), "docker", args...)
	})
}

// dialStdioArgs are docker's arguments for containerDialer.
func dialStdioArgs(container, endpoint string) []string {
	var args []string
	switch {
	case strings.Contains(endpoint, "://"):
		args = append(args, "--host", endpoint)
	case endpoint != "":
		args = append(args, "--context", endpoint)
	}
	return append(args, "exec", "-i", container, "buildctl", "dial-stdio")
}

// selectedBuildxBuilder is the builder `docker buildx use` selected for the
// current docker endpoint, "" for none, read as buildx stores it.
func selectedBuildxBuilder(dockerCli command.Cli) (string, error) {
	dir := buildxDir(dockerCli)
	data, err := os.ReadFile(filepath.Join(dir, "current"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var current struct {
		Key    string
		Name   string
		Global bool
	}
	if err := json.Unmarshal(data, &current); err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(dir, "current"), err)
	}
	key := dockerCli.CurrentContext()
	if key == "default" {
		key = dockerCli.DockerEndpoint().Host
	}
	if current.Name != "" && (current.Global || current.Key == key) {
		return current.Name, nil
	}
	// buildx's default per endpoint, under the start of the key's digest.
	name, err := os.ReadFile(filepath.Join(dir, "defaults", digest.FromString(key).Encoded()[:20]))
	if err != nil {
		return "", nil
	}
	return strings.TrimSpace(string(name)), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
