package cliplugin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	dockercommands "github.com/docker/cli/cli/command/commands"
	"github.com/moby/moby/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/storepack/storepack/cliplugin/hostbuild"
	"github.com/storepack/storepack/cliplugin/podman"
	"github.com/storepack/storepack/frontend/inputs"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

// runImageRepository is where `run` tags the images it builds: a name of
// its own, so that it never replaces an image of the user's.
const runImageRepository = "storepack/"

// runContainerLabel marks the container of one `run`, so that it can be
// found and stopped when the plugin is told to stop.
const runContainerLabel = "dev.storepack.run"

type runOptions struct {
	labels  []string
	convert convertOptions
	roots   rootOptions
	builder builderOptions
	runtime runtimeOption
	// runFlags are docker run's options as given, for podman run.
	runFlags *podman.FlagLog
}

func newRunCommand(dockerCli command.Cli) *cobra.Command {
	var opts runOptions
	dockerRun := dockerRunCommand(dockerCli)
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE|MANIFEST|ROOT [COMMAND] [ARG...]",
		Short: "Build an image of a closure or a manifest if needed, and run it",
		Long: `Run a command in a new container, as "docker run --rm" does, from an image,
a manifest or store paths.

A ROOT (a store path, a path inside one, or a symlink into the store such as
./result) is built as "docker storepack build ROOT" builds it; a MANIFEST file
(or a directory holding ` + defaultManifest + `) as "docker storepack build -f
MANIFEST DIR" builds it, its directory being the build context. The image is
tagged ` + runImageRepository + `NAME:latest (NAME: the package's name or the
manifest's) and records a key of its inputs (storepack's version, the
manifest, the build options, the roots and GRAPH files), so that the next run
of the same inputs neither builds nor loads. When the inputs changed, the
image is rebuilt, keeping the previous image's layers where that ships less.
Any other argument is an image, run as docker run runs it.

--runtime podman (or STOREPACK_RUNTIME=podman; the default when no docker
engine is named or answers and podman is on PATH) runs it with podman run,
with the same options. The image is loaded into Podman: written on the host
with no builder, or, for FROM, COPY or RUN, built by a BuildKit daemon
(BUILDKIT_HOST, --addr). Any other --runtime value is docker run's: the OCI
runtime of the container.

Every docker run option applies, and the exit code is docker run's: the
command's own, or 125 when storepack or the engine failed, 126 when the
command cannot be invoked, 127 when it is not found. The container is removed
when it exits (--rm=false keeps it), also when storepack is interrupted.`,
		Example: `  docker storepack run ./result
  docker storepack run -p 8080:80 -e GREETING=hi ./result --port 80
  docker storepack run -it --platform linux/arm/v7 app.storepack sh`,
		Args:                  cli.RequiresMinArgs(1),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd.Context(), dockerCli, dockerRun, opts, args)
		},
	}
	flags := cmd.Flags()
	flags.SetInterspersed(false)
	opts.runFlags = podman.Record(dockerRun.Flags())
	// docker run's --runtime also chooses the engine (docker, podman).
	dockerRun.Flags().Lookup("runtime").Usage = runtimeHelp + `; any other value: the container's OCI runtime`
	flags.AddFlagSet(dockerRun.Flags())
	build := pflag.NewFlagSet("build", pflag.ContinueOnError)
	// docker run's --label labels the container.
	build.StringArrayVar(&opts.labels, "build-label", nil, labelHelp)
	opts.convert.addFlags(build)
	opts.roots.addFlags(build)
	opts.builder.addFlags(build)
	flags.AddFlagSet(build)
	cmd.SetUsageFunc(func(c *cobra.Command) error {
		return writeRunUsage(c, dockerRun.Flags(), build)
	})
	return cmd
}

// dockerRunCommand is docker's own `docker run`, so that every option,
// message and exit code is docker's.
func dockerRunCommand(dockerCli command.Cli) *cobra.Command {
	root := &cobra.Command{Use: "docker"}
	dockercommands.AddCommands(root, dockerCli)
	for _, c := range root.Commands() {
		if c.Name() == "run" {
			return c
		}
	}
	panic("docker/cli has no run command")
}

// writeRunUsage prints the help as docker's, with the build options apart.
func writeRunUsage(c *cobra.Command, runFlags, buildFlags *pflag.FlagSet) error {
	w := c.OutOrStderr()
	fmt.Fprintf(w, "Usage:  %s\n\n%s\n\nExamples:\n%s\n", c.UseLine(), c.Long, c.Example)
	fmt.Fprintf(w, "\nOptions (docker run's):\n%s", visibleFlags(runFlags).FlagUsages())
	fmt.Fprintf(w, "\nBuild Options (for a MANIFEST or ROOT):\n%s", buildFlags.FlagUsages())
	return nil
}

func visibleFlags(fs *pflag.FlagSet) *pflag.FlagSet {
	out := pflag.NewFlagSet(fs.Name(), pflag.ContinueOnError)
	fs.VisitAll(func(f *pflag.Flag) {
		if !f.Hidden && f.Deprecated == "" {
			out.AddFlag(f)
		}
	})
	return out
}

func runRun(ctx context.Context, dockerCli command.Cli, dockerRun *cobra.Command, opts runOptions, args []string) error {
	flags := dockerRun.Flags()
	platform, _ := flags.GetString("platform")
	quiet, _ := flags.GetBool("quiet")
	var eng runEngine = dockerEngine{dockerCli.Client()}
	skipFlags := []string{}
	if name, _ := flags.GetString("runtime"); isEngine(name) {
		// An engine's name is no OCI runtime for docker run or podman run.
		opts.runtime.name = name
		skipFlags = append(skipFlags, "runtime")
		if err := flags.Set("runtime", ""); err != nil {
			return err
		}
	}
	pod, err := opts.runtime.podman(ctx, dockerCli)
	if err != nil {
		return cli.StatusError{Status: err.Error(), StatusCode: 125}
	}
	if pod != nil {
		eng = podmanEngine{pod}
	}
	buildCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	image, err := runImage(buildCtx, dockerCli, eng, opts, args[0], platform, quiet)
	stop()
	if err != nil {
		return cli.StatusError{Status: err.Error(), StatusCode: 125}
	}
	if !flags.Changed("rm") {
		if err := flags.Set("rm", "true"); err != nil {
			return err
		}
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	runID := hex.EncodeToString(nonce)
	if err := flags.Set("label", runContainerLabel+"="+runID); err != nil {
		return err
	}
	if pod != nil {
		// podman run takes docker run's options, exit codes and signals.
		runArgs := append([]string{"run"}, opts.runFlags.Args(skipFlags...)...)
		return pod.Exec(append(append(runArgs, image), args[1:]...))
	}
	err = runContainer(ctx, dockerCli, dockerRun, runID, append([]string{image}, args[1:]...))
	// docker run's errors point at its help; the flags are the same here.
	if st, ok := errors.AsType[cli.StatusError](err); ok {
		st.Status = strings.Replace(st.Status, "'docker run --help'", "'docker storepack run --help'", 1)
		return st
	}
	return err
}

// runContainer runs docker's run command, which forwards the signals this
// process receives to the container. The docker CLI tells a plugin to stop
// by cancelling ctx instead: then the container is stopped as `docker stop`
// stops it, and removed once docker run returns.
func runContainer(ctx context.Context, dockerCli command.Cli, dockerRun *cobra.Command, runID string, args []string) error {
	engine := dockerCli.Client()
	// Calls to the engine once ctx is cancelled must still be made.
	bg := context.WithoutCancel(ctx)
	eachContainer := func(do func(containerID string)) {
		mine := client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", runContainerLabel+"="+runID)}
		if list, err := engine.ContainerList(bg, mine); err == nil {
			for _, c := range list.Items {
				do(c.ID)
			}
		}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-done:
		case <-ctx.Done():
			eachContainer(func(cid string) { _, _ = engine.ContainerStop(bg, cid, client.ContainerStopOptions{}) })
		}
	}()
	dockerRun.SetContext(bg)
	err := dockerRun.RunE(dockerRun, args)
	close(done)
	<-stopped
	if ctx.Err() != nil {
		eachContainer(func(cid string) {
			_, _ = engine.ContainerRemove(bg, cid, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		})
	}
	return err
}

// runImage returns the image to run for arg: an image reference as it is,
// or the image built from a ROOT or MANIFEST, built and loaded only when
// the engine has no image of the same inputs.
func runImage(ctx context.Context, dockerCli command.Cli, engine runEngine, opts runOptions, arg, platform string, quiet bool) (string, error) {
	if err := opts.convert.check(); err != nil {
		return "", err
	}
	in, name, ok, err := runInput(arg, opts.roots)
	if err != nil {
		return "", err
	}
	if !ok {
		return arg, checkImageRunnable(ctx, engine, arg, platform)
	}
	p, err := engine.platform(ctx, platform)
	if err != nil {
		return "", err
	}
	if err := engine.checkRunnable(ctx, p); err != nil {
		return "", err
	}
	progress, err := opts.builder.progressMode(quiet)
	if err != nil {
		return "", err
	}
	var note io.Writer
	if !quiet {
		note = dockerCli.Err()
	}
	req, err := opts.convert.request(dockerCli, in, opts.roots, note)
	if err != nil {
		return "", err
	}
	req.Platforms = []ocispecs.Platform{p}
	req.NoCache = opts.builder.noCache
	req.LayerCache = opts.builder.layerCache(dockerCli.Err())
	for _, kv := range opts.labels {
		k, v, _ := strings.Cut(kv, "=")
		req.Labels[k] = v
	}
	tag := runImageRepository + name + ":latest"
	input, err := hostbuild.Open(ctx, req)
	if err != nil {
		return "", err
	}
	key := input.Key(p)
	old, err := engine.image(ctx, tag)
	var recorded *layering.Plan
	switch {
	case err == nil:
		if old.labels[hostbuild.InputKeyLabel] == key.String() && !req.NoCache {
			return tag, nil
		}
		if plan, perr := layerllb.RecordedPlan(old.labels); perr == nil {
			recorded = plan
		}
	case !cerrdefs.IsNotFound(err):
		return "", fmt.Errorf("cannot reach the engine: %w", err)
	}
	// The image being replaced is the previous image; the registry is
	// never asked for it.
	input.DefaultPrevious = tag
	input.ReadPrevious = func(context.Context, string, ocispecs.Platform) (*manifest2llb.PreviousImage, error) {
		if recorded == nil {
			return nil, cerrdefs.ErrNotFound
		}
		return &manifest2llb.PreviousImage{Plan: recorded}, nil
	}
	input.Labels[hostbuild.InputKeyLabel] = key.String()
	b, err := engine.builder(ctx, dockerCli, input, opts.builder)
	if err != nil {
		return "", err
	}
	if b != nil {
		defer b.Close()
	}
	out := hostbuild.Output{Auth: dockerCli.ConfigFile(), Out: dockerCli.Err(), Progress: progress}
	if out.Exports, err = engine.exports(ctx, dockerCli, b, tag, quiet); err != nil {
		return "", err
	}
	if _, err := hostbuild.Build(ctx, b, input, out); err != nil {
		return "", err
	}
	if built, err := engine.image(ctx, tag); err == nil && old.id != "" && built.id != old.id {
		// The replaced image, unless a container or another tag uses it.
		engine.removeImage(context.WithoutCancel(ctx), old.id)
	}
	return tag, nil
}

// checkImageRunnable checks that the image docker run is to run can run
// here: the platform asked for, else the platform of the engine's image of
// that name (an image the engine lacks is pulled for its own platform).
func checkImageRunnable(ctx context.Context, engine runEngine, ref, platform string) error {
	if platform != "" {
		p, err := inputs.ParsePlatform(platform)
		if err != nil {
			return err
		}
		return engine.checkRunnable(ctx, p)
	}
	img, err := engine.image(ctx, ref)
	if err != nil {
		return nil // docker run pulls it, or says why it cannot
	}
	return engine.checkRunnable(ctx, img.platform)
}

// runInput tells what arg is: a ROOT, a MANIFEST file or a directory
// holding one (ok, with the image's name), or an image reference (not ok).
func runInput(arg string, ro rootOptions) (in input, name string, ok bool, err error) {
	if in, err := rootsInput([]string{arg}, ro); err == nil {
		return in, imageName(packageName(in.roots[0].Path.Name)), true, nil
	} else if abs, aerr := filepath.Abs(arg); aerr == nil && store.LooksInStore(abs) {
		return input{}, "", false, err
	}
	// As build and plan tell a context and a manifest from ROOTs.
	if isContextDir([]string{arg}) {
		abs, err := filepath.Abs(arg)
		if err != nil {
			return input{}, "", false, err
		}
		return input{contextDir: arg, manifestFile: filepath.Join(arg, defaultManifest)}, imageName(filepath.Base(abs)), true, nil
	}
	if file, ok := manifestArg([]string{arg}, ""); ok {
		dir := filepath.Dir(file)
		base := filepath.Base(file)
		if base == defaultManifest {
			abs, err := filepath.Abs(dir)
			if err != nil {
				return input{}, "", false, err
			}
			base = filepath.Base(abs)
		}
		return input{contextDir: dir, manifestFile: file}, imageName(strings.TrimSuffix(base, filepath.Ext(base))), true, nil
	}
	switch _, err := os.Stat(arg); {
	case err == nil:
		return input{}, "", false, fmt.Errorf("%s: not a store path, a manifest file or a build context directory", arg)
	case strings.ContainsRune(arg, os.PathSeparator) && !looksLikeReference(arg):
		return input{}, "", false, fmt.Errorf("%s: %w", arg, errors.Unwrap(err))
	}
	return input{}, "", false, nil
}

// looksLikeReference tells an image reference from a path that does not
// exist: "registry:5000/app:1" is one, "./app" is not.
func looksLikeReference(arg string) bool {
	if strings.HasPrefix(arg, ".") || strings.HasPrefix(arg, "/") {
		return false
	}
	_, err := reference.ParseNormalizedNamed(arg)
	return err == nil
}

// packageName drops a Nix or Guix store path name's version.
func packageName(name string) string {
	pname, _ := store.SplitName(name)
	return pname
}

var notInRepositoryName = regexp.MustCompile(`[^a-z0-9]+`)

// imageName makes s a valid repository name component: lower case, runs of
// other characters as one "-".
func imageName(s string) string {
	s = strings.Trim(notInRepositoryName.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if s == "" {
		return "image"
	}
	return s
}
