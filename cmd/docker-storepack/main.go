// Command docker-storepack is the `docker storepack` Docker CLI plugin.
//
// Install it as ~/.docker/cli-plugins/docker-storepack (or in any other
// directory docker searches for CLI plugins) and run `docker storepack`.
//
// Run directly, it accepts the same arguments as the plugin framework
// expects from docker (`docker-storepack [GLOBAL OPTIONS] storepack ...`),
// and, for convenience, also `docker-storepack [COMMAND]` without the
// leading "storepack" (for example `docker-storepack version`).
//
// Named storepack (a copy or a link; `make install` installs one), it is a
// command of its own, `storepack build|load|run|plan|graph`, with the same
// flags, help and exit codes, for machines without a docker CLI.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/debug"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel"

	"github.com/storepack/storepack/cliplugin"
	"github.com/storepack/storepack/cliplugin/rundir"
	"github.com/storepack/storepack/frontend/inbuilder"
	"github.com/storepack/storepack/internal/memlimit"
	"github.com/storepack/storepack/internal/version"
)

func main() {
	memlimit.Apply()
	// In the builder, this binary does what FileOps cannot for RUN (see
	// hostbuild: it is sent there only when a manifest has RUN).
	if ok, err := inbuilder.Main(context.Background(), os.Args[1:]); ok {
		if err != nil {
			fmt.Fprintln(os.Stderr, "docker-storepack:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(run())
}

// run is plugin.Run's work, except that a status without a message (the
// exit code of a container, from `run`) prints nothing, as docker run
// prints nothing.
func run() int {
	otel.SetErrorHandler(debug.OTELErrorHandler)
	// Every temporary file of this run goes into a directory of its own,
	// which a later run removes should this one be killed before it can.
	if rundir.Enter() == nil {
		defer rundir.Leave()
	}
	dockerCli, err := command.NewDockerCli()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if isStandaloneName(os.Args[0]) {
		err = runStandalone(dockerCli)
	} else {
		err = runPlugin(dockerCli)
	}
	if err == nil {
		return 0
	}
	code := 1
	if st, ok := errors.AsType[cli.StatusError](err); ok && st.StatusCode != 0 {
		code = st.StatusCode
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(dockerCli.Err(), msg)
	}
	return code
}

// isStandaloneName tells whether the binary was invoked as `storepack`.
func isStandaloneName(arg0 string) bool {
	return strings.TrimSuffix(filepath.Base(arg0), ".exe") == cliplugin.StandaloneName
}

// runStandalone runs the command tree as a command of its own.
func runStandalone(dockerCli *command.DockerCli) error {
	tcmd := cliplugin.NewStandaloneCommand(dockerCli)
	cmd, args, err := tcmd.HandleGlobalFlags()
	if err != nil {
		return err
	}
	cmd.SetArgs(args)
	return cmd.Execute()
}

// runPlugin runs the command tree under docker's plugin framework.
func runPlugin(dockerCli *command.DockerCli) error {
	root := cliplugin.NewRootCommand(dockerCli)
	if plugin.RunningStandalone() {
		os.Args = standaloneArgs(root, os.Args)
	}
	v, _ := version.Get()
	return plugin.RunPlugin(dockerCli, root, metadata.Metadata{
		SchemaVersion:    "0.1.0",
		Vendor:           "storepack",
		Version:          v,
		ShortDescription: cliplugin.ShortDescription,
		URL:              "https://github.com/storepack/storepack",
	})
}

// standaloneArgs rewrites the command line of a direct invocation so that
// `docker-storepack` and `docker-storepack COMMAND ...` run the plugin's own
// command tree, as `docker storepack [COMMAND ...]` would. Anything else
// (global options, the "storepack" name itself, the framework's hidden
// commands) is left for the framework to handle.
func standaloneArgs(root *cobra.Command, args []string) []string {
	if len(args) == 0 {
		return args
	}
	if len(args) > 1 && !isSubcommand(root, args[1]) {
		return args
	}
	out := make([]string, 0, len(args)+1)
	out = append(out, args[0], root.Name())
	return append(out, args[1:]...)
}

func isSubcommand(root *cobra.Command, name string) bool {
	for _, c := range root.Commands() {
		if c.Name() == name || c.HasAlias(name) {
			return true
		}
	}
	return false
}
