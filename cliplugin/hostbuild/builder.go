// Package hostbuild builds images from the host's store through a BuildKit
// builder, as `docker storepack build` does: it picks the builder a docker
// user expects, runs the conversion (frontend/manifest2llb) in this process
// over the gateway API, so that no frontend image has to reach the builder,
// serves the closure's store paths from the host, and exports the result.
package hostbuild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli/command"
	bkclient "github.com/moby/buildkit/client"
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer" // docker-container:// addresses of buildx builders
	"github.com/opencontainers/go-digest"
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

// Builder is a BuildKit builder to build with.
type Builder struct {
	Name   string // as the user knows it: a buildx builder, an address, the docker context
	Driver string // buildx's word for how it is reached
	Kind   Kind
	Client *bkclient.Client
}

// Close closes the connection to the builder.
func (b *Builder) Close() error { return b.Client.Close() }

// Choice names the builder the user asked for; empty fields are unset.
type Choice struct {
	Addr    string // --addr
	Builder string // --builder
}

// SelectBuilder connects to the builder a docker user expects: --addr, then
// --builder, then BUILDKIT_HOST, then BUILDX_BUILDER, then the builder
// `docker buildx use` selected, then the current docker context's engine.
func SelectBuilder(ctx context.Context, dockerCli command.Cli, choice Choice) (*Builder, error) {
	switch {
	case choice.Addr != "":
		return daemonBuilder(ctx, choice.Addr, choice.Addr, "remote")
	case choice.Builder != "":
		return buildxBuilder(ctx, dockerCli, choice.Builder)
	case os.Getenv("BUILDKIT_HOST") != "":
		addr := os.Getenv("BUILDKIT_HOST")
		return daemonBuilder(ctx, addr, addr, "remote")
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

func daemonBuilder(ctx context.Context, name, addr, driver string) (*Builder, error) {
	c, err := bkclient.New(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("builder %s: %w", name, err)
	}
	b := &Builder{Name: name, Driver: driver, Kind: Daemon, Client: c}
	return b, b.check(ctx)
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
	b := &Builder{Name: name, Driver: "docker", Kind: Engine, Client: c}
	return b, b.check(ctx)
}

// check asks the builder for its workers, so that an unreachable builder
// is one clear error before any work starts.
func (b *Builder) check(ctx context.Context) error {
	if _, err := b.Client.ListWorkers(ctx); err != nil {
		b.Client.Close()
		return fmt.Errorf("cannot reach the builder %q (%s driver): %s", b.Name, b.Driver, firstLine(err.Error()))
	}
	return nil
}

// buildxNode is what a buildx builder's file says of one of its nodes.
type buildxNode struct {
	Name     string
	Endpoint string
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

// buildxBuilder connects to the first node of the buildx builder name; a
// name buildx does not store is a docker context (buildx's docker driver).
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
	node := g.Nodes[0]
	switch g.Driver {
	case "remote":
		return daemonBuilder(ctx, g.Name, node.Endpoint, g.Driver)
	case "docker-container":
		return daemonBuilder(ctx, g.Name, "docker-container://buildx_buildkit_"+node.Name, g.Driver)
	case "docker":
		return engineBuilder(ctx, dockerCli, node.Endpoint)
	}
	return nil, fmt.Errorf("buildx builder %q uses the %s driver, which storepack cannot reach: use a remote, docker-container or docker builder, or --addr", name, g.Driver)
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
