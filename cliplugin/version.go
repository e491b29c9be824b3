package cliplugin

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/storepack/storepack/internal/version"
)

// serverVersionTimeout bounds how long `version` waits for the daemon.
const serverVersionTimeout = 5 * time.Second

func newVersionCommand(dockerCli command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the storepack version information",
		Long: `Show the storepack version information.

The first line is always "storepack <version> <revision>". It is followed by
the Docker client and, if the daemon can be reached, the Docker server
versions that storepack sees. An unreachable daemon is not an error.`,
		Args:                  cli.NoArgs,
		DisableFlagsInUseLine: true,
		ValidArgsFunction:     cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVersion(cmd.Context(), dockerCli)
		},
	}
}

// runVersion prints storepack's version, then what it knows about the
// Docker client and server. Failing to reach the daemon is reported on
// stderr and does not make the command fail.
func runVersion(ctx context.Context, dockerCli command.Cli) error {
	if ctx == nil {
		ctx = context.Background()
	}
	out := dockerCli.Out()
	if _, err := fmt.Fprintln(out, version.String()); err != nil {
		return err
	}

	// CurrentVersion initializes the API client (pinging the daemon with
	// a short timeout) but, unlike Client, never exits the process. It
	// reports the negotiated API version, or the client's maximum when
	// the daemon cannot be reached.
	apiVersion := dockerCli.CurrentVersion()
	endpoint := dockerCli.DockerEndpoint()
	printClientVersion(out, clientVersion{
		Library:    dockerCLIModuleVersion(),
		APIVersion: apiVersion,
		Context:    dockerCli.CurrentContext(),
		Host:       endpoint.Host,
	})

	if endpoint.Host == "" {
		// The endpoint could not be resolved (for example, the current
		// context does not exist); DockerEndpoint has already reported
		// why on stderr. Client() would exit the process here.
		_, _ = fmt.Fprintln(dockerCli.Err(), "Docker server: unavailable (no Docker endpoint)")
		return nil
	}

	ctx, cancel := context.WithTimeout(ctx, serverVersionTimeout)
	defer cancel()
	sv, err := dockerCli.Client().ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		_, _ = fmt.Fprintf(dockerCli.Err(), "Docker server: unavailable (%s)\n", oneLine(err.Error()))
		return nil
	}
	printServerVersion(out, sv)
	return nil
}

type clientVersion struct {
	Library    string // version of the docker/cli module storepack is built with
	APIVersion string
	Context    string
	Host       string
}

func printClientVersion(w io.Writer, c clientVersion) {
	var b strings.Builder
	b.WriteString("Docker client: docker/cli ")
	b.WriteString(c.Library)
	if c.APIVersion != "" {
		b.WriteString(", API ")
		b.WriteString(c.APIVersion)
	}
	if c.Context != "" {
		b.WriteString(", context ")
		b.WriteString(c.Context)
	}
	if c.Host != "" {
		b.WriteString(" (")
		b.WriteString(c.Host)
		b.WriteString(")")
	}
	_, _ = fmt.Fprintln(w, b.String())
}

func printServerVersion(w io.Writer, sv client.ServerVersionResult) {
	name := sv.Platform.Name
	if name == "" {
		name = "Docker Engine"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Docker server: %s %s", name, sv.Version)
	if sv.APIVersion != "" {
		fmt.Fprintf(&b, ", API %s", sv.APIVersion)
	}
	if sv.Os != "" || sv.Arch != "" {
		fmt.Fprintf(&b, ", %s/%s", sv.Os, sv.Arch)
	}
	_, _ = fmt.Fprintln(w, b.String())
}

// dockerCLIModuleVersion returns the version of github.com/docker/cli
// linked into this binary. A plugin cannot know the version of the docker
// binary that invoked it; the library version and the negotiated API
// version are what storepack actually uses.
func dockerCLIModuleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == "github.com/docker/cli" {
				if dep.Replace != nil && dep.Replace.Version != "" {
					return dep.Replace.Version
				}
				return dep.Version
			}
		}
	}
	return "unknown"
}

// oneLine collapses an error message to a single line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
