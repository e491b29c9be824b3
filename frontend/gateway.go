// Package frontend is storepack's BuildKit gateway frontend, the glue
// between the gateway API and the conversion (frontend/manifest2llb): it
// reads the manifest and the build options from the gateway, hands the
// conversion a Source that reads the build contexts through the gateway,
// and solves what the conversion returns for every target platform.
//
// The CLI plugin runs the same glue in its own process (Solve), with a
// Source that reads the host.
package frontend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/containerd/platforms"
	intoto "github.com/in-toto/in-toto-golang/in_toto"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/frontend/gateway/client"
	gwpb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/solver/result"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/frontend/spdxsbom"
)

// Language names manifests in source maps, as "Dockerfile" does for
// Dockerfiles.
const Language = "storepack"

// Build is the frontend's gateway entry point: the build options come from
// the gateway (dockerui), the files through it.
func Build(ctx context.Context, c client.Client) (_ *client.Result, err error) {
	bc, err := dockerui.NewClient(c)
	if err != nil {
		return nil, err
	}
	src, err := bc.ReadEntrypoint(ctx, Language)
	if err != nil {
		return nil, err
	}
	defer func() { err = withSource(err, src.SourceMap) }()
	gs := &gatewaySource{c: c, bc: bc}
	in, err := manifest2llb.ReadInput(ctx, src.Data, bc.BuildArgs, gs)
	if err != nil {
		return nil, err
	}
	opt := manifest2llb.ConvertOpt{
		Labels:          bc.Labels,
		TargetPlatforms: bc.TargetPlatforms,
		ReadPrevious:    gs.previousPlan,
		SourceMap:       src.SourceMap,
		NoCache:         bc.IsNoCache(""),
	}
	if h := gs.helper(); h != nil {
		opt.Stager, opt.Differ = *h, *h
	}
	return Solve(ctx, c, bc, in, opt)
}

// Solve converts in with opt, completed with what the builder says (its
// platform and LLB caps, FROM images, files of states) and the SBOM bc
// asks for, and solves each target platform's image, with its SBOM as an
// attestation; bc assembles the result for opt's platforms.
// The frontend and the CLI plugin, which converts in its own process, both
// end here.
func Solve(ctx context.Context, c client.Client, bc *dockerui.Client, in *manifest2llb.Input, opt manifest2llb.ConvertOpt) (*client.Result, error) {
	caps := bc.BuildOpts().LLBCaps
	opt.BuildPlatform = bc.BuildPlatforms[0]
	opt.LLBCaps = &caps
	opt.ResolveImage = resolveImage(c, bc)
	opt.ReadFile = StateReader(c, bc)
	// An SBOM asked for (attest:sbom) is this conversion's own document,
	// which stops BuildKit from running a scanner.
	opt.SBOM = bc.SBOM != nil
	if opt.SBOM {
		gwcaps := bc.BuildOpts().Caps
		if err := gwcaps.Supports(gwpb.CapAttestations); err != nil {
			return nil, fmt.Errorf("an SBOM was asked for, but this builder cannot attach attestations to an image: %w", err)
		}
		var err error
		if opt.SBOMFiles, err = sbomFiles(bc.SBOM.Parameters); err != nil {
			return nil, err
		}
	}
	res, err := manifest2llb.Convert(ctx, in, opt)
	if err != nil {
		return nil, err
	}
	bc.TargetPlatforms = opt.TargetPlatforms
	bc.MultiPlatformRequested = bc.MultiPlatformRequested || len(opt.TargetPlatforms) > 1
	sboms := make([]*client.Attestation, len(res.Images))
	ids := make([]string, len(res.Images))
	rb, err := bc.Build(ctx, func(ctx context.Context, target *ocispecs.Platform, i int) (*dockerui.BuildResult, error) {
		img := res.Images[i]
		co := []llb.ConstraintsOpt{llb.WithCaps(caps), llb.Platform(img.Platform)}
		if opt.NoCache {
			co = append(co, llb.IgnoreCache)
		}
		def, err := img.State.Marshal(ctx, co...)
		if err != nil {
			return nil, fmt.Errorf("marshal LLB: %w", err)
		}
		pbDef := def.ToPB()
		if err := addSources(pbDef, opt.SourceMap, img.Sources); err != nil {
			return nil, err
		}
		r, err := c.Solve(ctx, client.SolveRequest{Definition: pbDef, CacheImports: bc.CacheImports})
		if err != nil {
			return nil, err
		}
		ref, err := r.SingleRef()
		if err != nil {
			return nil, err
		}
		if img.SBOM != nil {
			// The platform's key in the result, as dockerui makes it.
			p := platforms.DefaultSpec()
			if target != nil {
				p = *target
			}
			ids[i] = platforms.FormatAll(platforms.Normalize(p))
			if sboms[i], err = sbomAttestation(ctx, c, bc, img); err != nil {
				return nil, err
			}
		}
		return &dockerui.BuildResult{Reference: ref, Image: img.Config, Epoch: &img.Epoch}, nil
	})
	if err != nil {
		return nil, err
	}
	for i, att := range sboms {
		if att != nil {
			rb.AddAttestation(ids[i], *att)
		}
	}
	return rb.Finalize()
}

// SourcesFile names the document of an image's sources (its roots' store
// paths, its GRAPH files' digests) among the source files of its LLB, which
// a provenance attestation of mode=max holds (with the manifest).
const SourcesFile = "storepack-sources.json"

// addSources attaches the manifest (from sm; nil: none) and a document
// of sources to the image's top step in def as source files, as a
// Dockerfile frontend's source map is: BuildKit records a build's source
// files in its provenance (mode=max), and takes its materials and
// parameters from the request and the LLB alone. The steps themselves,
// and so the image and its cache, do not change.
func addSources(def *pb.Definition, sm *llb.SourceMap, sources manifest2llb.Sources) error {
	if len(def.Def) == 0 {
		return nil
	}
	var terminal pb.Op
	if err := terminal.UnmarshalVT(def.Def[len(def.Def)-1]); err != nil {
		return err
	}
	if len(terminal.Inputs) != 1 {
		return nil
	}
	top := terminal.Inputs[0].Digest
	data, err := json.MarshalIndent(sources, "", "  ")
	if err != nil {
		return err
	}
	files := []*pb.SourceInfo{{Filename: SourcesFile, Language: "json", Data: data}}
	if sm != nil {
		files = append(files, &pb.SourceInfo{Filename: sm.Filename, Language: sm.Language, Data: sm.Data})
	}
	if def.Source == nil {
		def.Source = &pb.Source{}
	}
	if def.Source.Locations == nil {
		def.Source.Locations = map[string]*pb.Locations{}
	}
	locs := def.Source.Locations[top]
	if locs == nil {
		locs = &pb.Locations{}
		def.Source.Locations[top] = locs
	}
	for _, f := range files {
		index := slices.IndexFunc(def.Source.Infos, func(i *pb.SourceInfo) bool {
			return i.Filename == f.Filename && bytes.Equal(i.Data, f.Data)
		})
		if index < 0 {
			index = len(def.Source.Infos)
			def.Source.Infos = append(def.Source.Infos, f)
		}
		// The whole file.
		end := int32(1 + bytes.Count(bytes.TrimSuffix(f.Data, []byte("\n")), []byte("\n")))
		locs.Locations = append(locs.Locations, &pb.Location{
			SourceIndex: int32(index),
			Ranges:      []*pb.Range{{Start: &pb.Position{Line: 1}, End: &pb.Position{Line: end}}},
		})
	}
	return nil
}

// SBOMFilesParameter is the SBOM request's parameter that asks for the
// files of the store paths, as BuildKit passes an SBOM request's
// parameters: `docker buildx build --sbom=files=true`, or the frontend
// attribute attest:sbom=files=true.
const SBOMFilesParameter = "files"

// sbomFiles reads SBOMFilesParameter of an SBOM request's parameters;
// others are the scanner's, which this conversion replaces.
func sbomFiles(params map[string]string) (bool, error) {
	v, ok := params[SBOMFilesParameter]
	if !ok {
		return false, nil
	}
	files, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("the SBOM's %s=%s: want true or false", SBOMFilesParameter, v)
	}
	return files, nil
}

// sbomFile is the file of an SBOM attestation's state that holds the
// document.
const sbomFile = "/sbom.spdx.json"

// sbomAttestation is img's SBOM, an SPDX document, as an in-toto attestation of the
// image, with the predicate type BuildKit's own SBOMs have. It carries no
// "sbom-core" metadata, so that BuildKit's exporter attaches the document
// as it is rather than decoding and writing it again.
func sbomAttestation(ctx context.Context, c client.Client, bc *dockerui.Client, img manifest2llb.Image) (*client.Attestation, error) {
	doc, err := spdxsbom.JSON(img.SBOM)
	if err != nil {
		return nil, fmt.Errorf("SBOM: %w", err)
	}
	st := llb.Scratch().File(llb.Mkfile(sbomFile, 0o444, doc, llb.WithCreatedTime(img.Epoch)), llb.WithCustomName("[storepack] SBOM of the store closure"))
	ref, err := solve(ctx, c, bc, st, llb.Platform(img.Platform))
	if err != nil {
		return nil, err
	}
	return &client.Attestation{
		Kind:     gwpb.AttestationKind_InToto,
		Metadata: map[string][]byte{result.AttestationReasonKey: []byte(result.AttestationReasonSBOM)},
		Ref:      ref,
		Path:     sbomFile,
		InToto:   result.InTotoAttestation{PredicateType: intoto.PredicateSPDX},
	}, nil
}

// AttachedSBOM is an SBOM document as an attestation BuildKit attaches
// holds it: the predicate of a statement that BuildKit's exporter writes
// with encoding/json, which compacts the document and escapes HTML's
// characters. `docker storepack sbom` prints the bytes a build attaches.
func AttachedSBOM(doc []byte) ([]byte, error) {
	return json.Marshal(json.RawMessage(doc))
}

// withSource names the manifest file and line of a located error in its
// message, and attaches the lines so that `docker build` prints them under
// the error.
func withSource(err error, sm *llb.SourceMap) error {
	var le *parser.LocationError
	if sm == nil || !errors.As(err, &le) {
		return err
	}
	locations := le.Locations
	err = manifest.WithFileLine(sm.Filename, err)
	for _, loc := range locations {
		s := &errdefs.Source{
			Info: &pb.SourceInfo{
				Data:       sm.Data,
				Filename:   sm.Filename,
				Language:   sm.Language,
				Definition: sm.Definition.ToPB(),
			},
		}
		s.Ranges = manifest2llb.Ranges(manifest.Location(loc))
		err = errdefs.WithSource(err, s)
	}
	return err
}
