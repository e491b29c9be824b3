package hostbuild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/docker/cli/cli/config/configfile"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/frontend/dockerui"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/filesync"
	"github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"

	"github.com/storepack/storepack/frontend"
	"github.com/storepack/storepack/frontend/inbuilder"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/llb/layerllb"
)

// Output is where a build's image goes and how the build shows itself.
type Output struct {
	Exports []Export
	Auth    *configfile.ConfigFile // registry credentials for pushes

	Progress progressui.DisplayMode
	Out      io.Writer // progress output

	// FrontendImage, when set, builds through that frontend image in the
	// builder, as `docker buildx build` with `# syntax=` does, instead of
	// in this process: for comparisons. It needs named contexts.
	FrontendImage string

	// Platform, when not nil, gives the platform of an image written on
	// the host when the build names none: the engine's that the builder
	// is, as its builder would build; nil: this host's. It is asked only
	// when the host writes the image.
	Platform func(context.Context) (ocispecs.Platform, error)

	// SBOM attaches each platform's SPDX document of its closure as an
	// attestation, asked for as `docker buildx build --sbom=true` asks.
	SBOM bool
	// SBOMFiles lists each store path's files in the SBOM, asked for as
	// `docker buildx build --sbom=files=true` asks.
	SBOMFiles bool
	// CheckPushes, if set, asks the registries the exports push to whether
	// they answer, within a bound of its own: while the builder pushes it
	// is asked every pushCheckInterval, and its error ends the build.
	CheckPushes func(ctx context.Context) error
}

// Result is what a build made.
type Result struct {
	// ImageID is the image's config digest, when it is one image.
	ImageID string
	// Metadata is the exporters' response, JSON values decoded, as buildx
	// writes its --metadata-file.
	Metadata map[string]any
}

// Build builds in with b and exports the result as out says. An image that
// needs no builder (no FROM, COPY or RUN) exported to archives or loaded
// into an engine is written on the host, and b may be nil for it. Nothing
// outlives Build: staged and compressed files are removed, also on error.
func Build(ctx context.Context, b *Builder, in *Input, out Output) (*Result, error) {
	defer in.layers.Close()
	statusCh := make(chan *bkclient.SolveStatus)
	in.progress.ch = statusCh
	display, err := progressui.NewDisplay(out.Out, out.Progress)
	if err != nil {
		return nil, err
	}
	hostFirst := onHost(out) && !in.conv.NeedsBuilder()
	var res *Result
	eg, egCtx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		_, err := display.UpdateFrom(context.WithoutCancel(egCtx), statusCh)
		return err
	})
	eg.Go(func() (err error) {
		if hostFirst {
			res, err = in.writeOnHost(egCtx, out)
			if !errors.Is(err, errNeedsBuilder) {
				close(statusCh)
				return err
			}
		}
		if b == nil {
			close(statusCh)
			return errors.New("this image needs a BuildKit builder (FROM, COPY or RUN, or an output other than an archive or a load): none was given")
		}
		res, err = in.buildOn(egCtx, b, out, statusCh)
		return err
	})
	err = eg.Wait()
	if in.LayerCache != nil {
		_ = in.LayerCache.Prune() // a cache left large costs disk, not the build
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// buildWith builds in with b and exports the result as out says, showing
// its progress on statusCh, which the builder closes.
func (in *Input) buildWith(ctx context.Context, b *Builder, out Output, statusCh chan *bkclient.SolveStatus) (*Result, error) {
	if out.Progress != progressui.QuietMode && out.Progress != progressui.RawJSONMode {
		fmt.Fprintf(out.Out, "#0 building with %q instance using %s driver\n", b.Name, b.Driver)
	}
	stageDir, err := os.MkdirTemp("", "storepack-stage-")
	if err != nil {
		close(statusCh)
		return nil, err
	}
	defer os.RemoveAll(stageDir)
	exports, finish, err := exportEntries(ctx, out.Exports, in.layers)
	if err != nil {
		close(statusCh)
		return nil, err
	}
	conv := in.buildOpt(stageDir)
	conv.ReadPrevious = noted(conv.ReadPrevious, statusCh)
	var attachables []session.Attachable
	if out.Auth != nil {
		attachables = append(attachables, authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
			AuthConfigProvider: authprovider.LoadAuthConfig(out.Auth),
		}))
	}
	solveOpt := bkclient.SolveOpt{
		Exports: exports,
		// One name for every build of this tool, so that the builder keeps
		// its copies of transferred store paths from one build to the next.
		SharedKey: "storepack",
		Session:   attachables,
	}
	if out.SBOM {
		// Read by the conversion (dockerui) and by the builder, which then
		// finds the conversion's document and runs no scanner.
		params := ""
		if out.SBOMFiles {
			params = frontend.SBOMFilesParameter + "=true"
		}
		solveOpt.FrontendAttrs = map[string]string{"attest:sbom": params}
	}
	var (
		resp *bkclient.SolveResponse
		// The conversion's own error, before the gateway wraps it.
		convErr error
	)
	solveCtx, builderCh := ctx, statusCh
	if out.CheckPushes != nil {
		solveCtx, builderCh = watchPushes(ctx, statusCh, out.CheckPushes, pushCheckInterval)
	}
	if out.FrontendImage != "" {
		if solveOpt, err = throughFrontendImage(solveOpt, in, out.FrontendImage, stageDir); err == nil {
			resp, err = b.Client.Solve(solveCtx, nil, solveOpt, builderCh)
		} else {
			close(builderCh)
		}
	} else {
		solveOpt.Session = append(solveOpt.Session, filesync.NewFSSyncProvider(newLocalDirs(in.locals)))
		solveOpt.OCIStores = map[string]content.Store{LayerStoreID: in.layers}
		resp, err = b.Client.Build(solveCtx, solveOpt, "storepack", func(ctx context.Context, c gateway.Client) (*gateway.Result, error) {
			res, err := in.solve(ctx, c, conv)
			convErr = err
			return res, err
		}, builderCh)
	}
	if convErr != nil && solveCtx.Err() == nil {
		err = convErr
	}
	if cause := context.Cause(solveCtx); err != nil && ctx.Err() == nil && cause != nil {
		err = cause // a registry stopped answering the builder's push
	}
	if err != nil {
		err = withSourceLine(err) // a failed RUN, in the conversion or after
	}
	var response map[string]string
	if resp != nil {
		response = resp.ExporterResponse
	}
	if ferr := finish(response, err); err == nil {
		err = ferr
	}
	if err != nil {
		return nil, err
	}
	return result(resp), nil
}

// buildOpt is the conversion's options for a build, its customisation
// stages written below stageDir.
func (in *Input) buildOpt(stageDir string) manifest2llb.ConvertOpt {
	conv := in.convertOpt()
	conv.Stager = HostStager{Dir: stageDir, Locals: in.locals}
	conv.Differ = SelfDiffer{Locals: in.locals}
	if in.ManifestName != "" {
		conv.SourceMap = llb.NewSourceMap(nil, in.ManifestName, "storepack", in.Manifest)
	}
	return conv
}

// solve is the gateway side of a build: the conversion of in with conv,
// solved by c as the frontend solves it.
func (in *Input) solve(ctx context.Context, c gateway.Client, conv manifest2llb.ConvertOpt) (*gateway.Result, error) {
	bc, err := dockerui.NewClient(c)
	if err != nil {
		return nil, err
	}
	res, err := frontend.Solve(ctx, c, bc, in.conv, conv)
	return res, in.located(err)
}

// throughFrontendImage makes solveOpt run the frontend image opt names in
// the builder, with the manifest, the context and the store as the local
// contexts `docker buildx build --build-context store=DIR` sends (the
// client serves them itself).
func throughFrontendImage(solveOpt bkclient.SolveOpt, in *Input, image, stageDir string) (bkclient.SolveOpt, error) {
	attrs := frontendAttrs(in)
	maps.Copy(attrs, solveOpt.FrontendAttrs)
	solveOpt.FrontendAttrs = attrs
	manifestDir, name := filepath.Split(in.ManifestName)
	if fi, err := os.Stat(in.ManifestName); err != nil || !fi.Mode().IsRegular() { // bare roots, standard input
		manifestDir, name = stageDir, defaultManifestName
		if err := os.WriteFile(filepath.Join(stageDir, name), in.Manifest, 0o644); err != nil {
			return solveOpt, err
		}
	}
	contextDir := in.ContextDir
	if contextDir == "" {
		contextDir = stageDir
	}
	solveOpt.LocalMounts = map[string]fsutil.FS{}
	for local, dir := range map[string]string{"context": contextDir, "dockerfile": manifestDir, "store": filepath.Join(in.StoreRoot, in.conv.StoreDir())} {
		if dir == "" {
			dir = "."
		}
		fs, err := fsutil.NewFS(dir)
		if err != nil {
			return solveOpt, err
		}
		solveOpt.LocalMounts[local] = fs
	}
	solveOpt.Frontend = "gateway.v0"
	solveOpt.FrontendAttrs["source"] = image
	solveOpt.FrontendAttrs["filename"] = name
	solveOpt.FrontendAttrs["context:store"] = "local:store"
	return solveOpt, nil
}

// frontendAttrs are the build options of in as a frontend image reads them
// (dockerui's attributes), as `docker buildx build` sends them.
func frontendAttrs(in *Input) map[string]string {
	attrs := map[string]string{}
	for k, v := range in.BuildArgs {
		attrs["build-arg:"+k] = v
	}
	for k, v := range in.Labels {
		attrs["label:"+k] = v
	}
	if len(in.Platforms) > 0 {
		names := make([]string, len(in.Platforms))
		for i, p := range in.Platforms {
			names[i] = platforms.Format(p)
		}
		attrs["platform"] = strings.Join(names, ",")
	}
	return attrs
}

// defaultManifestName names a manifest that has no file of its own.
const defaultManifestName = "Storepackfile"

// result reads the exporters' response.
func result(resp *bkclient.SolveResponse) *Result {
	r := &Result{Metadata: map[string]any{}}
	for k, v := range resp.ExporterResponse {
		var decoded any
		if json.Unmarshal([]byte(v), &decoded) == nil && (strings.HasPrefix(v, "{") || strings.HasPrefix(v, "[")) {
			r.Metadata[k] = decoded
		} else {
			r.Metadata[k] = v
		}
	}
	// The image and docker exporters name the config; the engine's moby
	// exporter gives the image ID as the image digest.
	r.ImageID = resp.ExporterResponse[exptypes.ExporterImageConfigDigestKey]
	if r.ImageID == "" {
		if id := resp.ExporterResponse[exptypes.ExporterImageDigestKey]; id != "" && !strings.Contains(id, ",") {
			r.ImageID = id
		}
	}
	return r
}

// noted makes read say in the progress which image's plan it read.
func noted(read manifest2llb.PreviousReader, ch chan<- *bkclient.SolveStatus) manifest2llb.PreviousReader {
	if read == nil {
		return nil
	}
	return func(ctx context.Context, ref string, p ocispecs.Platform) (*manifest2llb.PreviousImage, error) {
		started := time.Now()
		prev, err := read(ctx, ref, p)
		name := fmt.Sprintf("[storepack] previous image %s (%s): ", ref, platforms.Format(p))
		switch {
		case cerrdefs.IsNotFound(err):
			name += "not found, no layers to keep"
		case err != nil:
			name += "cannot read its layer plan: " + firstLine(err.Error())
		default:
			name += fmt.Sprintf("read its plan of %d layers, keeping them where that ships less", len(prev.Plan.Layers))
			if len(prev.Layers) > 0 {
				name += fmt.Sprintf("; %d of its layers can be taken from its registry", len(prev.Layers))
			}
		}
		completed := time.Now()
		v := &bkclient.Vertex{Digest: digest.FromString(name), Name: name, Started: &started, Completed: &completed}
		(&progress{ch: ch}).send(ctx, &bkclient.SolveStatus{Vertexes: []*bkclient.Vertex{v}})
		return prev, err
	}
}

// withSourceLine starts a builder's error with the manifest file and line
// it carries (a failed RUN), as the conversion's errors start.
func withSourceLine(err error) error {
	for _, src := range errdefs.Sources(err) {
		if src.Info != nil && src.Info.Filename != "" && len(src.Ranges) > 0 {
			return fmt.Errorf("%s:%d: %w", src.Info.Filename, src.Ranges[0].Start.Line, err)
		}
	}
	return err
}

// SelfDiffer runs this binary in the builder (inbuilder's commands) to
// find what RUN changed: the builder needs no frontend image, and the
// binary is sent only when a manifest has RUN. Locals records the local
// source that carries it; nil for a conversion that is not built (plan).
type SelfDiffer struct{ Locals *Locals }

var _ layerllb.Differ = SelfDiffer{}

// helperLocal is the local source that carries this binary.
const helperLocal = "storepack-helper"

func (d SelfDiffer) Diff(before, after llb.State, step string) (layerllb.Changes, error) {
	if d.Locals != nil && runtime.GOOS != "linux" {
		return layerllb.Changes{}, fmt.Errorf("RUN: this docker-storepack is built for %s/%s and the builder runs Linux programs, so it cannot find what RUN changed there: build with `docker buildx build` and `# syntax=storepack`, whose frontend image does", runtime.GOOS, runtime.GOARCH)
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return layerllb.Changes{}, fmt.Errorf("RUN: this binary, to run in the builder: %w", err)
	}
	if err := d.Locals.Add(helperLocal, filepath.Dir(exe)); err != nil {
		return layerllb.Changes{}, err
	}
	// Run natively on the build platform, whatever the target's.
	image := llb.Local(helperLocal,
		llb.IncludePatterns([]string{filepath.Base(exe)}),
		llb.SharedKeyHint(helperLocal),
		llb.WithCustomName("transfer the storepack binary (for RUN)"),
	).Platform(platforms.Normalize(platforms.DefaultSpec()))
	return inbuilder.Helper{Image: image, Binary: "/" + filepath.Base(exe)}.Diff(before, after, step)
}

// localDirs serves the local sources a host conversion names from their
// directories on the host, a few transfers per core at a time: BuildKit
// asks for every layer's transfer at once, each open transfer holds
// buffers of its own in this process, and a transfer waits on the disk and
// the builder more than on a core.
type localDirs struct {
	locals *Locals
	slots  chan struct{}
}

var _ filesync.DirSource = localDirs{}

func newLocalDirs(locals *Locals) localDirs {
	return localDirs{locals: locals, slots: make(chan struct{}, 4*runtime.GOMAXPROCS(0))}
}

func (l localDirs) LookupDir(name string) (fsutil.FS, bool) {
	local, ok := l.locals.Lookup(name)
	if !ok {
		return nil, false
	}
	fs, err := fsutil.NewFS(local.Dir)
	if err != nil {
		return nil, false
	}
	if local.StoreDir != "" {
		fs = storeDirFS{store: fs, dir: strings.TrimPrefix(local.StoreDir, "/")}
	}
	return slotFS{FS: fs, slots: l.slots}, true
}

// slotFS holds a slot from the start of a transfer (its walk) until the
// transfer's stream ends, which ends the context the walk is given.
type slotFS struct {
	fsutil.FS
	slots chan struct{}
}

func (f slotFS) Walk(ctx context.Context, target string, fn fs.WalkDirFunc) error {
	select {
	case f.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	go func() {
		<-ctx.Done()
		<-f.slots
	}()
	return f.FS.Walk(ctx, target, fn)
}
