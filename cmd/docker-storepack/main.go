// Command docker-storepack is the `docker storepack` Docker CLI plugin.
//
// Install it as ~/.docker/cli-plugins/docker-storepack (or in any other
// directory docker searches for CLI plugins) and run `docker storepack`.
//
// Run directly, it accepts the same arguments as the plugin framework
// expects from docker (`docker-storepack [GLOBAL OPTIONS] storepack ...`),
// and, for convenience, also `docker-storepack [COMMAND]` without the
// leading "storepack" (for example `docker-storepack version`).
package main

import (
	"os"

	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/storepack/storepack/cliplugin"
	"github.com/storepack/storepack/internal/version"
)

func main() {
	v, _ := version.Get()
	plugin.Run(
		func(dockerCli command.Cli) *cobra.Command {
			root := cliplugin.NewRootCommand(dockerCli)
			if plugin.RunningStandalone() {
				// The framework reads os.Args after this function returns.
				os.Args = standaloneArgs(root, os.Args)
			}
			return root
		},
		metadata.Metadata{
			SchemaVersion:    "0.1.0",
			Vendor:           "storepack",
			Version:          v,
			ShortDescription: cliplugin.ShortDescription,
			URL:              "https://github.com/storepack/storepack",
		},
	)
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
