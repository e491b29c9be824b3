package imagelookup

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

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/moby/buildkit/util/contentutil"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// dockerCertsDir holds a directory per registry host ("host:port") with
// the certificates docker uses for it.
const dockerCertsDir = "/etc/docker/certs.d"

// dockerHubAuthKey is the key of Docker Hub's credentials in docker's
// config file.
const dockerHubAuthKey = "https://index.docker.io/v1/"

// registryImage returns image ref for platform p from its registry:
// containerd's resolver finds ref's manifest or index, and containerd's
// images.Manifest picks p's manifest as BuildKit does (the best match of
// platforms.Only; a lone manifest whatever its platform).
func registryImage(ctx context.Context, ref string, p ocispecs.Platform, src Sources) (*Image, error) {
	r, err := resolve(ctx, ref, src, "not in the local engine, and ")
	if err != nil {
		return nil, err
	}
	root, blobs := r.root, r.blobs
	m, err := images.Manifest(ctx, blobs, root, platforms.Only(p))
	if err != nil {
		if cerrdefs.IsNotFound(err) && images.IsIndexType(root.MediaType) {
			if missing := missingPlatform(ctx, blobs, root, p); missing != nil {
				err = missing
			}
		}
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if !images.IsConfigType(m.Config.MediaType) {
		return nil, fmt.Errorf("%s: its manifest's config is a %q, not an image config", ref, m.Config.MediaType)
	}
	data, err := content.ReadBlob(ctx, blobs, m.Config)
	if err != nil {
		return nil, fmt.Errorf("%s: image config: %w", ref, err)
	}
	var img dockerspec.DockerOCIImage
	if err := json.Unmarshal(data, &img); err != nil {
		return nil, fmt.Errorf("%s: image config %s: %w", ref, m.Config.Digest, err)
	}
	return &Image{Config: &img, Origin: InRegistry, Manifest: &m, Blobs: r.fetched, Digest: root.Digest}, nil
}

// resolved is an image reference found in its registry.
type resolved struct {
	root ocispecs.Descriptor // its manifest or index
	// blobs reads manifests, indexes and configs: each fetched once, into
	// memory, and checked against its descriptor's size and digest before
	// it is read; fetched reads any blob, fetched when read.
	blobs, fetched content.Provider
}

// resolve finds image ref's manifest or index in its registry. Errors
// start with ref; tried says what was tried before the registry, as
// "not in the local engine, and " ("": nothing).
func resolve(ctx context.Context, ref string, src Sources, tried string) (resolved, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return resolved{}, fmt.Errorf("%s: %snot an image reference: %w", ref, tried, err)
	}
	named = reference.TagNameOnly(named)
	host := reference.Domain(named)
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: registryHosts(ctx, src)})
	name, root, err := resolver.Resolve(ctx, named.String())
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			where := "in the registry " + host
			if tried != "" {
				where = "neither in the local engine nor " + where
			}
			return resolved{}, cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("%s: no such image, %s", ref, where))
		}
		return resolved{}, fmt.Errorf("%s: %sthe registry %s: %w", ref, tried, host, err)
	}
	if !images.IsManifestType(root.MediaType) && !images.IsIndexType(root.MediaType) {
		return resolved{}, fmt.Errorf("%s: %s is a %q, not an image manifest or index", ref, root.Digest, root.MediaType)
	}
	fetcher, err := resolver.Fetcher(ctx, name)
	if err != nil {
		return resolved{}, fmt.Errorf("%s: registry %s: %w", ref, host, err)
	}
	return resolved{
		root:    root,
		blobs:   smallBlobs{contentutil.ReferrersProviderWithBuffer(contentutil.FromFetcher(fetcher), contentutil.NewBuffer(), name)},
		fetched: contentutil.FromFetcher(fetcher),
	}, nil
}

// maxBlobSize bounds a manifest, an index or a config read from a
// registry: their sizes come from the registry, and they are held in
// memory.
const maxBlobSize = 8 << 20

// smallBlobs refuses blobs larger than maxBlobSize.
type smallBlobs struct{ content.Provider }

var _ content.Provider = smallBlobs{}

func (b smallBlobs) ReaderAt(ctx context.Context, desc ocispecs.Descriptor) (content.ReaderAt, error) {
	if desc.Size > maxBlobSize {
		return nil, fmt.Errorf("%s is %d bytes: too large for a manifest or a config", desc.Digest, desc.Size)
	}
	return b.Provider.ReaderAt(ctx, desc)
}

// missingPlatform returns the error for an index that has no manifest
// for p, naming the platforms it has (images.Manifest's error names
// neither), or nil when the index has a manifest for p, so that the
// failure lies deeper.
func missingPlatform(ctx context.Context, blobs content.Provider, index ocispecs.Descriptor, p ocispecs.Platform) error {
	data, err := content.ReadBlob(ctx, blobs, index)
	if err != nil {
		return nil
	}
	var idx ocispecs.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil
	}
	match := platforms.Only(p)
	var names []string
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			continue
		}
		if match.Match(*m.Platform) {
			return nil
		}
		// unknown/unknown: BuildKit's attestation manifests.
		if name := platforms.Format(platforms.Normalize(*m.Platform)); name != "unknown/unknown" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	has := "no platform"
	if len(names) > 0 {
		slices.Sort(names)
		has = strings.Join(names, ", ")
	}
	return cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("no image for %s (the index has %s)", platforms.Format(p), has))
}

// registryHosts configures the registries for containerd's resolver:
// HTTPS with docker's credentials and the registry's certificates (see the
// top of this file); for an insecure registry, HTTPS without verifying the
// certificate, and plain HTTP when the server answers HTTPS in plain HTTP.
func registryHosts(ctx context.Context, src Sources) docker.RegistryHosts {
	creds := dockerCredentials(src.Auth)
	certsDir := cmp.Or(src.certsDir, dockerCertsDir)
	secure := config.ConfigureHosts(ctx, config.HostOptions{HostDir: config.HostDirFromRoot(certsDir), Credentials: creds, UpdateClient: func(c *http.Client) error {
		c.Transport = idleTransport{next: c.Transport, idle: RegistryIdleTimeout}
		return nil
	}})
	client := &http.Client{Transport: idleTransport{next: docker.NewHTTPFallback(
		docker.DefaultHTTPTransport(&tls.Config{InsecureSkipVerify: true}), //nolint:gosec // an insecure registry, as docker treats it
	), idle: RegistryIdleTimeout}}
	insecure := docker.ConfigureDefaultRegistries(
		docker.WithClient(client),
		docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthClient(client), docker.WithAuthCreds(creds))),
	)
	isInsecure := insecureRegistries(ctx, src.Engine)
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
func insecureRegistries(ctx context.Context, engine EngineAPI) func(string) bool {
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

// CheckRegistry asks the registry of image ref for ref's manifest, as a
// push starts, and returns an error naming the registry when it cannot be
// reached or fails (a server error). Any other answer is an answer: no
// such image, or no right to read it, which is the push's to judge. The
// caller bounds the time (a registry that never answers holds the request
// forever).
func CheckRegistry(ctx context.Context, ref string, src Sources) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("%s: not an image reference: %w", ref, err)
	}
	named = reference.TagNameOnly(named)
	ctx = quietResolver(ctx)
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: registryHosts(ctx, src)})
	_, _, err = resolver.Resolve(ctx, named.String())
	var status remoteerrors.ErrUnexpectedStatus
	switch {
	case err == nil, cerrdefs.IsNotFound(err), errors.Is(err, docker.ErrInvalidAuthorization),
		errors.As(err, &status) && status.StatusCode < http.StatusInternalServerError:
		return nil
	}
	return fmt.Errorf("the registry %s: %w", reference.Domain(named), err)
}
