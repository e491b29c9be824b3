package cliplugin

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/cliplugin/engineload"
	"github.com/storepack/storepack/cliplugin/hostbuild"
	"github.com/storepack/storepack/cliplugin/podman"
)

// runEngine is what run asks of the engine that holds and runs its
// images: the docker engine or Podman.
type runEngine interface {
	// platform parses spec; "" is the engine's platform.
	platform(ctx context.Context, spec string) (ocispecs.Platform, error)
	// checkRunnable fails when the engine's kernel runs no programs of p.
	checkRunnable(ctx context.Context, p ocispecs.Platform) error
	// image inspects ref: an error that is cerrdefs.ErrNotFound when the
	// engine holds no image of that name.
	image(ctx context.Context, ref string) (engineImage, error)
	// removeImage removes a replaced image unless something uses it.
	removeImage(ctx context.Context, id string)
	// builder is the builder of in, nil for none (the image is written on
	// the host).
	builder(ctx context.Context, dockerCli command.Cli, in *hostbuild.Input, opts builderOptions) (*hostbuild.Builder, error)
	// exports are the exports of builder b (nil: none) that put an image
	// named name into the engine.
	exports(ctx context.Context, dockerCli command.Cli, b *hostbuild.Builder, name string, quiet bool) ([]hostbuild.Export, error)
}

// engineImage is what run reads of an image.
type engineImage struct {
	id       string
	labels   map[string]string
	platform ocispecs.Platform
}

// dockerEngine is the docker engine, through its API.
type dockerEngine struct{ client.APIClient }

func (e dockerEngine) platform(ctx context.Context, spec string) (ocispecs.Platform, error) {
	return enginePlatform(ctx, e.APIClient, spec)
}

func (e dockerEngine) checkRunnable(ctx context.Context, p ocispecs.Platform) error {
	return checkRunnable(ctx, e.APIClient, p)
}

func (e dockerEngine) image(ctx context.Context, ref string) (engineImage, error) {
	img, err := e.ImageInspect(ctx, ref)
	if err != nil {
		return engineImage{}, err
	}
	out := engineImage{id: img.ID, platform: ocispecs.Platform{OS: img.Os, Architecture: img.Architecture, Variant: img.Variant}}
	if img.Config != nil {
		out.labels = img.Config.Labels
	}
	return out, nil
}

func (e dockerEngine) removeImage(ctx context.Context, id string) {
	_, _ = e.ImageRemove(ctx, id, client.ImageRemoveOptions{PruneChildren: true})
}

func (dockerEngine) builder(ctx context.Context, dockerCli command.Cli, _ *hostbuild.Input, opts builderOptions) (*hostbuild.Builder, error) {
	return hostbuild.SelectBuilder(ctx, dockerCli, opts.choice())
}

func (e dockerEngine) exports(ctx context.Context, dockerCli command.Cli, b *hostbuild.Builder, name string, quiet bool) ([]hostbuild.Export, error) {
	return exportsFor(ctx, dockerCli, b, buildOptions{tags: []string{name}, load: true, quiet: quiet}, 1)
}

// podmanEngine is Podman, through the podman command.
type podmanEngine struct{ *podman.Podman }

func (e podmanEngine) platform(ctx context.Context, spec string) (ocispecs.Platform, error) {
	return podmanPlatform(ctx, e.Podman, spec)
}

func (e podmanEngine) checkRunnable(ctx context.Context, p ocispecs.Platform) error {
	if p.OS != "linux" {
		return nil
	}
	host, err := e.Host(ctx)
	if err != nil {
		return err
	}
	return runnableOn(host.Platform.OS, host.Platform.Architecture, host.Kernel, hostKernel(), hostRuns, p)
}

func (e podmanEngine) image(ctx context.Context, ref string) (engineImage, error) {
	img, err := e.Image(ctx, ref)
	return engineImage{id: img.ID, labels: img.Labels, platform: img.Platform}, err
}

func (e podmanEngine) removeImage(ctx context.Context, id string) { _ = e.RemoveImage(ctx, id) }

// builder is none for an image written on the host, else a BuildKit
// daemon: the docker engine's builder puts images into its own store, not
// into a docker archive for Podman.
func (podmanEngine) builder(ctx context.Context, dockerCli command.Cli, in *hostbuild.Input, opts builderOptions) (*hostbuild.Builder, error) {
	if !in.NeedsBuilder() {
		return nil, nil
	}
	const start = "start buildkitd (rootless: rootlesskit buildkitd) and give its address with BUILDKIT_HOST or --addr"
	if !opts.named() {
		return nil, errors.New("this manifest has FROM, COPY or RUN, which need a BuildKit daemon to build for Podman, and none is named: " + start)
	}
	b, err := hostbuild.SelectBuilder(ctx, dockerCli, opts.choice())
	if err != nil {
		return nil, err
	}
	if b.Kind != hostbuild.Daemon {
		b.Close()
		return nil, fmt.Errorf("the builder %q is the docker engine's, which cannot put an image into Podman: %s", b.Name, start)
	}
	return b, nil
}

// exports load a docker archive into Podman.
func (e podmanEngine) exports(_ context.Context, _ command.Cli, _ *hostbuild.Builder, name string, _ bool) ([]hostbuild.Export, error) {
	return []hostbuild.Export{{Type: "docker", Attrs: map[string]string{"name": name}, Load: func(ctx context.Context, r io.Reader) error {
		return engineload.Archive(ctx, e.Podman, r, io.Discard)
	}}}, nil
}
