package cliplugin

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/config/configfile"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"

	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/layerllb"
)

// This file reads the layer plan that a previous image records in its
// config (the label llb.PlanLabel), for `plan --previous` and a manifest's
// LAYERS --previous: first from the local engine, else from the image's
// registry, where only the manifests and the config are fetched, never a
// layer. The frontend does the same through the builder
// (frontend/previous.go).
//
// Registries are reached with containerd's resolver, over HTTPS verified
// with the system's certificates and, as docker does, a registry's own
// directory in /etc/docker/certs.d (CA certificates *.crt, client
// certificates *.cert with their *.key; or containerd's hosts.toml, which
// docker reads there too with its containerd image store). An insecure
// registry is tried with HTTPS without verifying the certificate, then
// with plain HTTP: a loopback one (localhost, 127.0.0.0/8, ::1, as docker
// treats them) and one that the local engine lists as insecure (its
// --insecure-registry, shown by `docker info`).
// Credentials come from docker's config (`docker login`, its credential
// stores and helpers).

// engineTimeout bounds each question to the local engine, which may be
// unreachable or slow: the registry is asked next.
const engineTimeout = 10 * time.Second

// dockerCertsDir holds a directory per registry host ("host:port") with
// the certificates docker uses for it.
const dockerCertsDir = "/etc/docker/certs.d"

// dockerHubAuthKey is the key of Docker Hub's credentials in docker's
// config file.
const dockerHubAuthKey = "https://index.docker.io/v1/"

// engineAPI is what reading a previous plan asks the local engine;
// client.APIClient has it.
type engineAPI interface {
	ClientVersion() string
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	Info(ctx context.Context, opts client.InfoOptions) (client.SystemInfoResult, error)
}

// previousSources says where readPreviousPlan looks for an image.
type previousSources struct {
	engine   engineAPI              // the local engine; nil: none
	auth     *configfile.ConfigFile // docker's credentials; nil: none
	insecure func(string) bool      // which registry hosts are insecure; nil: insecureRegistries
	certsDir string                 // per-registry certificates; "": dockerCertsDir
}

// dockerSources returns the sources of the docker CLI: its engine (unless
// its endpoint cannot be resolved) and its credentials.
func dockerSources(dockerCli command.Cli) previousSources {
	src := previousSources{auth: dockerCli.ConfigFile()}
	// Client() exits the process when the endpoint cannot be resolved
	// (DockerEndpoint has said why on stderr); the registry may still
	// have the image.
	if dockerCli.DockerEndpoint().Host != "" {
		src.engine = dockerCli.Client()
	}
	return src
}

// readPreviousPlan reads the layer plan recorded in the config of image
// ref for platform p: from the local engine if it has the image for p,
// else from the registry. Errors start with ref.
func readPreviousPlan(ctx context.Context, ref string, p ocispecs.Platform, src previousSources) (*layering.Plan, error) {
	p = platforms.Normalize(p)
	// containerd's resolver logs failed requests; its errors say enough.
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	ctx = log.WithLogger(ctx, logrus.NewEntry(quiet))
	labels, found, engineNote := engineLabels(ctx, src.engine, ref, p)
	if !found {
		var err error
		labels, err = registryLabels(ctx, ref, p, src)
		if err != nil {
			if engineNote != "" {
				err = fmt.Errorf("%w (local engine: %s)", err, engineNote)
			}
			return nil, err
		}
	}
	label, ok := labels[layerllb.PlanLabel]
	if !ok {
		return nil, fmt.Errorf("%s records no layer plan (label %s): was it built by storepack?", ref, layerllb.PlanLabel)
	}
	var plan layering.Plan
	if err := json.Unmarshal([]byte(label), &plan); err != nil {
		return nil, fmt.Errorf("%s: label %s: %w", ref, layerllb.PlanLabel, err)
	}
	return &plan, nil
}

// engineLabels returns the config labels of image ref for platform p in
// the local engine. When the engine does not have it, found is false and
// note says why, for an error if the registry lacks it too.
func engineLabels(ctx context.Context, engine engineAPI, ref string, p ocispecs.Platform) (labels map[string]string, found bool, note string) {
	if engine == nil {
		return nil, false, ""
	}
	ctx, cancel := context.WithTimeout(ctx, engineTimeout)
	defer cancel()
	var opts []client.ImageInspectOption
	if versions.GreaterThanOrEqualTo(engine.ClientVersion(), "1.49") {
		// An engine with the containerd image store can hold several
		// platforms of an image.
		opts = append(opts, client.ImageInspectWithPlatform(&p))
	}
	img, err := engine.ImageInspect(ctx, ref, opts...)
	switch {
	case cerrdefs.IsNotFound(err):
		return nil, false, ""
	case err != nil:
		return nil, false, oneLine(err.Error())
	}
	have := platforms.Normalize(ocispecs.Platform{OS: img.Os, Architecture: img.Architecture, Variant: img.Variant})
	if img.Os != "" && !platforms.Only(p).Match(have) {
		return nil, false, fmt.Sprintf("its image is for %s, not %s", platforms.Format(have), platforms.Format(p))
	}
	if img.Config != nil {
		labels = img.Config.Labels
	}
	return labels, true, ""
}

// registryLabels returns the config labels of image ref for platform p
// from its registry: it resolves ref, picks p's manifest from an index,
// and reads the config.
func registryLabels(ctx context.Context, ref string, p ocispecs.Platform, src previousSources) (map[string]string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, fmt.Errorf("%s: not in the local engine, and not an image reference: %w", ref, err)
	}
	named = reference.TagNameOnly(named)
	host := reference.Domain(named)
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: registryHosts(ctx, src)})
	name, desc, err := resolver.Resolve(ctx, named.String())
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("%s: no such image, neither in the local engine nor in the registry %s", ref, host)
		}
		return nil, fmt.Errorf("%s: not in the local engine, and the registry %s: %w", ref, host, err)
	}
	fetcher, err := resolver.Fetcher(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%s: registry %s: %w", ref, host, err)
	}
	desc, err = platformManifest(ctx, fetcher, desc, p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	var m ocispecs.Manifest
	if err := fetchJSON(ctx, fetcher, desc, &m); err != nil {
		return nil, fmt.Errorf("%s: manifest %s: %w", ref, desc.Digest, err)
	}
	if !images.IsConfigType(m.Config.MediaType) {
		return nil, fmt.Errorf("%s: manifest %s: its config is a %q, not an image config", ref, desc.Digest, m.Config.MediaType)
	}
	var img dockerspec.DockerOCIImage
	if err := fetchJSON(ctx, fetcher, m.Config, &img); err != nil {
		return nil, fmt.Errorf("%s: image config %s: %w", ref, m.Config.Digest, err)
	}
	return img.Config.Labels, nil
}

// maxIndexDepth bounds nested indexes.
const maxIndexDepth = 4

// platformManifest returns the manifest of platform p that desc stands
// for: desc itself when it is a manifest, else the index's manifest that
// matches p best (containerd's platforms.Only). A manifest is taken
// whatever its platform, as BuildKit does.
func platformManifest(ctx context.Context, fetcher remotes.Fetcher, desc ocispecs.Descriptor, p ocispecs.Platform) (ocispecs.Descriptor, error) {
	match := platforms.Only(p)
	for depth := 0; ; depth++ {
		switch {
		case images.IsManifestType(desc.MediaType):
			return desc, nil
		case !images.IsIndexType(desc.MediaType):
			return ocispecs.Descriptor{}, fmt.Errorf("%s is a %q, not an image manifest or index", desc.Digest, desc.MediaType)
		case depth == maxIndexDepth:
			return ocispecs.Descriptor{}, fmt.Errorf("index %s: more than %d nested indexes", desc.Digest, maxIndexDepth)
		}
		var index ocispecs.Index
		if err := fetchJSON(ctx, fetcher, desc, &index); err != nil {
			return ocispecs.Descriptor{}, fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		var (
			best  *ocispecs.Descriptor
			names []string // the platforms the index has, for the error
		)
		for i, m := range index.Manifests {
			if m.Platform == nil {
				continue
			}
			if name := platforms.Format(platforms.Normalize(*m.Platform)); name != "unknown/unknown" && !slices.Contains(names, name) {
				names = append(names, name) // unknown/unknown: attestations
			}
			if !match.Match(*m.Platform) {
				continue
			}
			if best == nil || match.Less(*m.Platform, *best.Platform) {
				best = &index.Manifests[i]
			}
		}
		if best == nil {
			has := "no platform"
			if len(names) > 0 {
				slices.Sort(names)
				has = strings.Join(names, ", ")
			}
			return ocispecs.Descriptor{}, fmt.Errorf("no image for %s (the index has %s)", platforms.Format(p), has)
		}
		desc = *best
	}
}

// maxJSONSize bounds a manifest, an index or a config read from a
// registry.
const maxJSONSize = 8 << 20

// fetchJSON fetches desc and decodes it into v, checking its size and
// digest.
func fetchJSON(ctx context.Context, fetcher remotes.Fetcher, desc ocispecs.Descriptor, v any) error {
	if desc.Size > maxJSONSize {
		return fmt.Errorf("%d bytes: too large", desc.Size)
	}
	rc, err := fetcher.Fetch(ctx, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxJSONSize+1))
	if err != nil {
		return err
	}
	if int64(len(data)) != desc.Size && desc.Size > 0 {
		return fmt.Errorf("got %d bytes, want %d", len(data), desc.Size)
	}
	if err := desc.Digest.Validate(); err != nil {
		return err
	}
	if got := desc.Digest.Algorithm().FromBytes(data); got != desc.Digest {
		return fmt.Errorf("content has digest %s", got)
	}
	return json.Unmarshal(data, v)
}

// registryHosts configures the registries for containerd's resolver:
// HTTPS with docker's credentials and the registry's certificates (see the
// top of this file); for an insecure registry, HTTPS without verifying the
// certificate, and plain HTTP when the server answers HTTPS in plain HTTP.
func registryHosts(ctx context.Context, src previousSources) docker.RegistryHosts {
	creds := dockerCredentials(src.auth)
	certsDir := cmp.Or(src.certsDir, dockerCertsDir)
	secure := config.ConfigureHosts(ctx, config.HostOptions{HostDir: config.HostDirFromRoot(certsDir), Credentials: creds})
	client := &http.Client{Transport: docker.NewHTTPFallback(
		docker.DefaultHTTPTransport(&tls.Config{InsecureSkipVerify: true}), //nolint:gosec // an insecure registry, as docker treats it
	)}
	insecure := docker.ConfigureDefaultRegistries(
		docker.WithClient(client),
		docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthClient(client), docker.WithAuthCreds(creds))),
	)
	isInsecure := src.insecure
	if isInsecure == nil {
		isInsecure = insecureRegistries(ctx, src.engine)
	}
	return func(host string) ([]docker.RegistryHost, error) {
		if isInsecure(host) {
			return insecure(host)
		}
		return secure(host)
	}
}

// insecureRegistries returns whether a registry host is insecure: a
// loopback address or localhost, or a registry the local engine lists as
// insecure (a name in its IndexConfigs with Secure false, or an IP address
// in its InsecureRegistryCIDRs; names are not resolved). The engine is
// asked once, when a host that is not loopback needs it.
func insecureRegistries(ctx context.Context, engine engineAPI) func(string) bool {
	var (
		once sync.Once
		cfg  struct {
			names map[string]bool
			cidrs []netip.Prefix
		}
	)
	load := func() {
		if engine == nil {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, engineTimeout)
		defer cancel()
		info, err := engine.Info(ctx, client.InfoOptions{})
		if err != nil || info.Info.RegistryConfig == nil {
			return
		}
		cfg.names = map[string]bool{}
		for name, index := range info.Info.RegistryConfig.IndexConfigs {
			if index != nil && !index.Secure {
				cfg.names[name] = true
			}
		}
		cfg.cidrs = info.Info.RegistryConfig.InsecureRegistryCIDRs
	}
	return func(host string) bool {
		if docker.IsLocalhost(host) {
			return true
		}
		if host == "docker.io" {
			return false
		}
		once.Do(load)
		if cfg.names[host] {
			return true
		}
		h := host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			h = hh
		}
		if addr, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
			for _, cidr := range cfg.cidrs {
				if cidr.Contains(addr.Unmap()) {
					return true
				}
			}
		}
		return false
	}
}

// dockerCredentials returns the credentials that `docker login` stored
// for a registry host (Docker Hub's under its index address), for
// containerd's authorizer, which asks only when a registry wants them.
func dockerCredentials(cfg *configfile.ConfigFile) func(host string) (string, string, error) {
	return func(host string) (string, string, error) {
		if cfg == nil {
			return "", "", nil
		}
		key := host
		switch host {
		case "docker.io", "index.docker.io", "registry-1.docker.io":
			key = dockerHubAuthKey
		}
		ac, err := cfg.GetAuthConfig(key)
		if err != nil {
			return "", "", fmt.Errorf("credentials for %s: %w", host, err)
		}
		if ac.IdentityToken != "" {
			return "", ac.IdentityToken, nil
		}
		return ac.Username, ac.Password, nil
	}
}
