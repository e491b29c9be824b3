// Package cliplugin implements the command tree of the `docker storepack`
// Docker CLI plugin as a library, so that it can be embedded in other
// binaries and exercised in tests without going through the plugin
// framework.
//
// Commands in this package are intentionally thin: they parse flags and
// arguments, and delegate the actual work to other packages of the module.
// Each subcommand lives in its own file and is registered in addCommands.
package cliplugin

import (
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

// PluginName is the name under which the plugin is invoked (`docker
// storepack`). The plugin binary must be called "docker-" + PluginName.
const PluginName = "storepack"

// ShortDescription is the one-line description shown in `docker --help`.
const ShortDescription = "Build container images from Nix and Guix store closures"

// NewRootCommand returns the `docker storepack` command tree. dockerCli is
// used for output streams and, lazily, for access to the Docker daemon;
// the daemon is only contacted by commands that need it.
//
// The returned command does not set a PersistentPreRun hook, so the one
// installed by the plugin framework (which initializes dockerCli from the
// global flags) is inherited by all subcommands. Subcommands that need
// their own hook must call plugin.PersistentPreRunE first.
func NewRootCommand(dockerCli command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   PluginName,
		Short: ShortDescription,
		// Like docker's management commands: without a subcommand, print
		// the help text; reject unknown subcommands with docker's wording.
		Args:                  cli.NoArgs,
		RunE:                  command.ShowHelp(dockerCli.Err()),
		DisableFlagsInUseLine: true,
		// The plugin framework prints errors itself, and usage is only
		// printed for argument errors (see cli.NoArgs and friends).
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	addCommands(cmd, dockerCli)
	return cmd
}

// StandaloneName is the name under which the same binary runs as a command
// of its own (`storepack build ...`), on machines without a docker CLI.
const StandaloneName = "storepack"

// NewStandaloneCommand returns the command tree run as `storepack` itself:
// docker's global options (-H, --context, --config, -D, ...) on the root,
// as docker gives them to a plugin, and dockerCli made from them before a
// subcommand runs. Making the client contacts no engine: commands that
// need none (plan, graph, a Podman run) work without one.
func NewStandaloneCommand(dockerCli *command.DockerCli) *cli.TopLevelCommand {
	cmd := NewRootCommand(dockerCli)
	opts, _ := cli.SetupRootCommand(cmd)
	// Docker's pointer to its own guides is not this command's.
	delete(cmd.Annotations, "additionalHelp")
	// Global options come before the subcommand, as with docker.
	cmd.TraverseChildren = true
	// As the plugin framework has it: `completion` works, unlisted.
	cmd.CompletionOptions.HiddenDefaultCmd = true
	cmd.SetIn(dockerCli.In())
	cmd.SetOut(dockerCli.Out())
	cmd.SetErr(dockerCli.Err())
	tcmd := cli.NewTopLevelCommand(cmd, dockerCli, opts, cmd.Flags())
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error { return tcmd.Initialize() }
	return tcmd
}

// addCommands registers the subcommands of `docker storepack`.
func addCommands(cmd *cobra.Command, dockerCli command.Cli) {
	cmd.AddCommand(
		newBuildCommand(dockerCli),
		newGraphCommand(dockerCli),
		newLoadCommand(dockerCli),
		newPlanCommand(dockerCli),
		newRunCommand(dockerCli),
		newSBOMCommand(dockerCli),
		newVerifyCommand(dockerCli),
		newVersionCommand(dockerCli),
	)
}
