package cliplugin

import (
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/hoststore"
)

type graphOptions struct {
	roots     rootOptions
	storeRoot string
	args      []string
}

func newGraphCommand(dockerCli command.Cli) *cobra.Command {
	var opts graphOptions
	cmd := &cobra.Command{
		Use:   "graph [OPTIONS] ROOT [ROOT...]",
		Short: "Print the closure graph of store paths as JSON",
		Long: `Print the closure graph of store paths as JSON.

The output is the object form of "nix path-info --json" (Nix 2.19+): one
member per store path of the closure, with its NAR size, its NAR hash when
the source has it (a scan does not) and its references, sorted, so that the
same closure always gives the same bytes. --from FILE
and a manifest's GRAPH instruction read it back.

` + fromHelp,
		Example: `  docker storepack graph ./result
  docker storepack graph --from scan /nix/store/...-hello-2.12.1 > graph.json
  docker storepack graph --from path-info.json ./result`,
		Args:                  cli.RequiresMinArgs(1),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.args = args
			return runGraph(cmd, dockerCli, opts)
		},
	}
	opts.roots.addFlags(cmd.Flags())
	addStoreRootFlag(cmd.Flags(), &opts.storeRoot)
	return cmd
}

func runGraph(cmd *cobra.Command, dockerCli command.Cli, opts graphOptions) error {
	in, err := rootsInput(opts.args, opts.roots)
	if err != nil {
		return err
	}
	g, err := hoststore.LoadClosure(cmd.Context(), in.roots, in.storeDir, graphSource(opts.roots), hoststore.Options{Root: opts.storeRoot, Warn: dockerCli.Err()})
	if err != nil {
		return err
	}
	return store.WritePathInfoJSON(dockerCli.Out(), g)
}
