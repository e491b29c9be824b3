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

// addCommands registers the subcommands of `docker storepack`.
func addCommands(cmd *cobra.Command, dockerCli command.Cli) {
	cmd.AddCommand(
		newBuildCommand(dockerCli),
		newGraphCommand(dockerCli),
		newLoadCommand(dockerCli),
		newPlanCommand(dockerCli),
		newRunCommand(dockerCli),
		newSBOMCommand(dockerCli),
		newVersionCommand(dockerCli),
	)
}
