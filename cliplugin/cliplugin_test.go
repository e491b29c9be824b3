package cliplugin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/cli/cli/command"
	cliflags "github.com/docker/cli/cli/flags"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/storepack/storepack/internal/version"
)

// fakeAPIClient answers the calls `version` makes, and those that reading
// a previous plan makes (previous_test.go). Any other method panics
// through the nil embedded interface, which flags unexpected daemon
// access.
type fakeAPIClient struct {
	client.APIClient
	server    client.ServerVersionResult
	serverErr error

	images     map[string]image.InspectResponse // ImageInspect's images; others are not found
	inspectErr error                            // ImageInspect's error, if not nil
	inspected  []string                         // the references ImageInspect was asked for
	info       client.SystemInfoResult          // Info's answer
	infoCalls  int
}

func (f *fakeAPIClient) Ping(context.Context, client.PingOptions) (client.PingResult, error) {
	if f.serverErr != nil {
		return client.PingResult{}, f.serverErr
	}
	return client.PingResult{APIVersion: f.server.APIVersion, OSType: f.server.Os}, nil
}

func (f *fakeAPIClient) ClientVersion() string { return f.server.APIVersion }

func (f *fakeAPIClient) ServerVersion(context.Context, client.ServerVersionOptions) (client.ServerVersionResult, error) {
	return f.server, f.serverErr
}

// newTestCLI returns an initialized DockerCli writing to buffers, with a
// private config directory and the given daemon host. apiClient may be
// nil, in which case a real client for host is used.
func newTestCLI(t *testing.T, host string, apiClient client.APIClient) (cli *command.DockerCli, stdout, stderr *bytes.Buffer) {
	t.Helper()
	stdout, stderr = new(bytes.Buffer), new(bytes.Buffer)
	ops := []command.CLIOption{
		command.WithInputStream(io.NopCloser(strings.NewReader(""))),
		command.WithOutputStream(stdout),
		command.WithErrorStream(stderr),
	}
	if apiClient != nil {
		ops = append(ops, command.WithAPIClient(apiClient))
	}
	cli, err := command.NewDockerCli(ops...)
	if err != nil {
		t.Fatal(err)
	}
	opts := cliflags.NewClientOptions()
	opts.ConfigDir = t.TempDir()
	opts.Hosts = []string{host}
	if err := cli.Initialize(opts); err != nil {
		t.Fatal(err)
	}
	return cli, stdout, stderr
}

func execute(t *testing.T, cmd *cobra.Command, args ...string) error {
	t.Helper()
	cmd.SetArgs(args)
	cmd.SetContext(t.Context())
	return cmd.Execute()
}

func TestVersionWithoutDaemon(t *testing.T) {
	for _, tc := range []struct {
		name string
		api  client.APIClient
	}{
		// A real client pointed at a socket that does not exist.
		{name: "no socket"},
		{name: "daemon error", api: &fakeAPIClient{serverErr: errors.New("daemon is down")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := "unix://" + filepath.Join(t.TempDir(), "missing.sock")
			cli, stdout, stderr := newTestCLI(t, host, tc.api)

			if err := execute(t, NewRootCommand(cli), "version"); err != nil {
				t.Fatalf("version failed without a daemon: %v", err)
			}

			lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
			if want := version.String(); lines[0] != want {
				t.Errorf("first line = %q, want %q", lines[0], want)
			}
			if !strings.HasPrefix(lines[0], "storepack "+version.Version+" ") {
				t.Errorf("first line %q does not carry version %q", lines[0], version.Version)
			}
			if len(lines) != 2 || !strings.HasPrefix(lines[1], "Docker client: ") || !strings.Contains(lines[1], host) {
				t.Errorf("want exactly one client line naming %s, got stdout:\n%s", host, stdout)
			}
			if !strings.Contains(stderr.String(), "Docker server: unavailable") {
				t.Errorf("stderr does not report the unreachable daemon:\n%s", stderr)
			}
		})
	}
}

func TestVersionWithDaemon(t *testing.T) {
	fake := &fakeAPIClient{server: client.ServerVersionResult{
		Platform:   client.PlatformInfo{Name: "Docker Engine - Community"},
		Version:    "28.2.2",
		APIVersion: "1.50",
		Os:         "linux",
		Arch:       "amd64",
	}}
	cli, stdout, stderr := newTestCLI(t, "unix:///nonexistent/docker.sock", fake)

	if err := execute(t, NewRootCommand(cli), "version"); err != nil {
		t.Fatal(err)
	}
	want := version.String() + "\n" +
		"Docker client: docker/cli " + dockerCLIModuleVersion() + ", API 1.50, context default (unix:///nonexistent/docker.sock)\n" +
		"Docker server: Docker Engine - Community 28.2.2, API 1.50, linux/amd64\n"
	if got := stdout.String(); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
	if stderr.Len() != 0 {
		t.Errorf("unexpected stderr: %s", stderr)
	}
}

func TestVersionUsesLinkedVersion(t *testing.T) {
	oldV, oldR := version.Version, version.Revision
	t.Cleanup(func() { version.Version, version.Revision = oldV, oldR })
	version.Version, version.Revision = "v1.2.3", "abc123"

	cli, stdout, _ := newTestCLI(t, "unix:///nonexistent/docker.sock", &fakeAPIClient{serverErr: errors.New("down")})
	if err := execute(t, NewRootCommand(cli), "version"); err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(stdout.String(), "\n"); first != "storepack v1.2.3 abc123" {
		t.Errorf("first line = %q", first)
	}
}

func TestRootCommand(t *testing.T) {
	cli, _, stderr := newTestCLI(t, "unix:///nonexistent/docker.sock", &fakeAPIClient{})
	root := NewRootCommand(cli)

	if root.Name() != PluginName || root.Short != "Build container images from Nix and Guix store closures" {
		t.Errorf("root command: name %q, short %q", root.Name(), root.Short)
	}
	var names []string
	for _, c := range root.Commands() {
		names = append(names, c.Name())
	}
	if strings.Join(names, ",") != "build,graph,load,plan,run,sbom,verify,version" {
		t.Errorf("subcommands = %v, want [build graph load plan run sbom verify version]", names)
	}

	// Without a subcommand the help text goes to stderr, like docker's
	// management commands.
	if err := execute(t, root); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), root.Short) || !strings.Contains(stderr.String(), "version") {
		t.Errorf("help output missing description or commands:\n%s", stderr)
	}

	err := execute(t, NewRootCommand(cli), "frobnicate")
	if err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("unknown subcommand: err = %v", err)
	}
	err = execute(t, NewRootCommand(cli), "version", "extra")
	if err == nil || !strings.Contains(err.Error(), "accepts no arguments") {
		t.Errorf("version with arguments: err = %v", err)
	}
}
