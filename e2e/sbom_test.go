//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/storepack/storepack/llb/layerllb"
)

// sbomPredicateType is what BuildKit's SBOM attestations are.
const sbomPredicateType = "https://spdx.dev/Document"

// TestSBOM builds the four-platform manifest with an SBOM asked for, with
// `docker buildx build --sbom=true` (the frontend image) and with `docker
// storepack build --sbom` (the plugin), to a registry and to an OCI
// archive. Every platform's image has exactly one SBOM attestation, no
// scanner ran or was asked for, and each document lists exactly the
// platform's closure as Nix has it: names and versions as Nix's
// parseDrvName splits them, NAR hashes and sizes, references, the store
// layer of each path as the image's plan records it. Two builds with the
// builder's cache pruned give byte-identical documents, and the plugin's
// are the frontend's. `docker storepack sbom` prints them without
// building, and reads them back from the registry.
func TestSBOM(t *testing.T) {
	installPlugin(t)
	dir := multiarchClosures(t, "1")
	notesPath := addNotes(t, dir)
	want := map[string]nixClosureInfo{}
	for _, s := range systems {
		graph, err := os.ReadFile(filepath.Join(dir, "graph-"+s.system+".json"))
		if err != nil {
			t.Fatal(err)
		}
		roots := []string{filepath.Join(dir, "result-"+s.system), notesPath}
		want[s.platform] = readNixClosure(t, string(graph), strings.Fields(stdoutOf(t, "nix-store", append([]string{"-qR"}, roots...)...)))
	}
	// What the store cannot say, with HTML's characters, which the
	// attestation escapes.
	writeFile(t, dir, "meta.json", `{"sbom-notes": {"license": "CC-BY-4.0", "homepage": "https://notes.example/", "description": "<what> the image & its notes"}}`)
	df := multiarchManifest(t, dir, "CLOSURE ./result-notes", "LINK /bin -> bin", `ENTRYPOINT ["/bin/hello"]`, "SBOM --metadata=meta.json")
	platformList := strings.Join(systemPlatforms(), ",")
	repo := bed.registry + "/storepack-e2e/sbom"
	offset := registryLogSize(t)

	buildx := func(tag string, extra ...string) map[string]json.RawMessage {
		t.Helper()
		r := buildxBuild(t, append([]string{"-f", df, "--build-context", "store=/nix/store", "--platform", platformList, "--sbom=true", "-t", repo + ":" + tag, "--push", dir}, extra...)...)
		if r.err != nil {
			t.Fatalf("build failed:\n%s", r)
		}
		checkNoScanner(t, r.out)
		return registrySBOMs(t, repo, tag)
	}
	first := buildx("1", "--provenance=mode=max")
	images := map[string]platformImage{}
	for _, img := range checkIndex(t, repo, "1") {
		images[platforms.Format(img.platform)] = img
	}
	for platform, doc := range first {
		t.Run(platform, func(t *testing.T) {
			checkSBOM(t, doc, want[platform], images[platform], []string{filepath.Base(notesPath), readLink(t, filepath.Join(dir, "result-"+systemOf(t, platform)))})
			checkSBOMMetadata(t, doc)
		})
	}

	// The provenance holds the manifest and each platform's sources: its
	// roots' store paths, its GRAPH file's digest.
	manifest, err := os.ReadFile(df)
	if err != nil {
		t.Fatal(err)
	}
	for platform, pred := range registryAttestations(t, repo, "1", provenancePredicateType, systemPlatforms()) {
		system := systemOf(t, platform)
		graph, err := os.ReadFile(filepath.Join(dir, "graph-"+system+".json"))
		if err != nil {
			t.Fatal(err)
		}
		root, err := os.Readlink(filepath.Join(dir, "result-"+system))
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`{"roots":[%q,%q],"graphs":[{"file":%q,"digest":%q}]}`, root, notesPath, "graph-"+system+".json", digest.FromBytes(graph))
		checkProvenanceSources(t, platform, pred, filepath.Base(df), manifest, want)
	}

	// The same documents from scratch.
	must(t, nil, "docker", "buildx", "prune", "--builder", os.Getenv("BUILDX_BUILDER"), "--all", "--force")
	again := buildx("2")
	for platform, doc := range first {
		if !bytes.Equal(again[platform], doc) {
			t.Errorf("%s: after the cache was pruned, the document is\n%s\nwas\n%s", platform, again[platform], doc)
		}
	}

	// The plugin, to the registry and to an OCI archive, makes the same
	// documents.
	stdout, stderr := mustPluginEnv(t, buildkitEnv, "build", "--progress=plain", "--sbom", "-f", df, "--platform", platformList, "-t", repo+":plugin", "--push", dir)
	checkNoScanner(t, stdout+stderr)
	oci := filepath.Join(t.TempDir(), "image.tar")
	stdout, stderr = mustPluginEnv(t, buildkitEnv, "build", "--progress=plain", "--sbom", "-f", df, "--platform", platformList, "-o", "type=oci,dest="+oci, dir)
	checkNoScanner(t, stdout+stderr)
	for name, got := range map[string]map[string]json.RawMessage{"--push": registrySBOMs(t, repo, "plugin"), "-o type=oci": archiveSBOMs(t, oci, systemPlatforms())} {
		if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(first))) {
			t.Errorf("plugin %s: SBOMs for %v, want %v", name, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(first)))
		}
		for platform, doc := range got {
			if !bytes.Equal(doc, first[platform]) {
				t.Errorf("plugin %s: %s: the document differs from the frontend's:\n%s\n%s", name, platform, doc, first[platform])
			}
		}
	}

	// `docker storepack sbom` prints each platform's document without
	// building, from the manifest, and reads it back from the registry.
	for platform, doc := range first {
		for _, arg := range []string{df, repo + ":1", repo + ":plugin"} {
			if got := mustPlugin(t, "sbom", "--platform", platform, arg); got != string(doc)+"\n" {
				t.Errorf("sbom --platform %s %s printed:\n%s\nthe build attached:\n%s", platform, arg, got, doc)
			}
		}
		checkCycloneDX(t, mustPlugin(t, "sbom", "--format", "cyclonedx-json", "--platform", platform, df), want[platform])
	}

	// Files are listed only when asked for: none above; with
	// --sbom=files=true, each store path's files, read in the builder, as
	// `sbom --sbom-files` reads them on the host: the notes hold NOTES,
	// with the digests sha1sum and sha256sum give.
	for platform, doc := range first {
		if files := sbomFiles(t, doc, notesPath); files != nil {
			t.Errorf("%s: files not asked for, but the notes list %q", platform, files)
		}
	}
	if r := buildxBuild(t, "-f", df, "--build-context", "store=/nix/store", "--platform", platformList, "--sbom=files=true", "-t", repo+":files", "--push", dir); r.err != nil {
		t.Fatalf("build with the files failed:\n%s", r)
	}
	notesFile := notesPath + "/NOTES"
	sha1, _, _ := strings.Cut(stdoutOf(t, "sha1sum", notesFile), " ")
	sha256, _, _ := strings.Cut(stdoutOf(t, "sha256sum", notesFile), " ")
	wantFiles := []string{notesFile + " SHA1:" + sha1 + " SHA256:" + sha256}
	// The plugin's --sbom-files (which implies --sbom) attaches the same.
	withFiles := filepath.Join(t.TempDir(), "files.tar")
	mustPluginEnv(t, buildkitEnv, "build", "--progress=plain", "--sbom-files", "-f", df, "--platform", platformList, "-o", "type=oci,dest="+withFiles, dir)
	pluginDocs := archiveSBOMs(t, withFiles, systemPlatforms())
	for platform, doc := range registrySBOMs(t, repo, "files") {
		if files := sbomFiles(t, doc, notesPath); !slices.Equal(files, wantFiles) {
			t.Errorf("%s: the notes list the files %q, want %q", platform, files, wantFiles)
		}
		if got := mustPlugin(t, "sbom", "--sbom-files", "--platform", platform, df); got != string(doc)+"\n" {
			t.Errorf("sbom --sbom-files --platform %s printed:\n%s\nthe build attached:\n%s", platform, got, doc)
		}
		if !bytes.Equal(pluginDocs[platform], doc) {
			t.Errorf("build --sbom-files: %s: the document differs from the frontend's:\n%s\n%s", platform, pluginDocs[platform], doc)
		}
	}

	// A metadata file that does not parse fails the build, naming its
	// line, before anything is pushed; `sbom` says the same.
	writeFile(t, dir, "bad-meta.json", "{\n  \"sbom-notes\": {\"licence\": \"MIT\"}\n}\n")
	bad := writeFile(t, dir, "bad.storepack", strings.Replace(string(manifest), "meta.json", "bad-meta.json", 1))
	wantErr := `bad-meta.json:2: sbom-notes: unknown field "licence"`
	before := registryLogSize(t)
	if r := buildxBuild(t, "-f", bad, "--build-context", "store=/nix/store", "--platform", platformList, "--sbom=true", "-t", repo+":bad", "--push", dir); r.err == nil || !strings.Contains(r.out, wantErr) {
		t.Errorf("a bad metadata file: want a failure that says %q:\n%s", wantErr, r)
	}
	if up := registryUploads(t, before); len(up) > 0 {
		t.Errorf("a failed build pushed %v", up)
	}
	if _, stderr, err := runPlugin("sbom", bad); err == nil || !strings.Contains(stderr, wantErr) {
		t.Errorf("sbom of a bad metadata file: err %v, stderr %s; want %q", err, stderr, wantErr)
	}

	if asked := registryRequests(t, offset, "buildkit-syft-scanner"); len(asked) > 0 {
		t.Errorf("the registry was asked for a scanner image:\n%s", strings.Join(asked, "\n"))
	}
}

// addNotes adds a store path with a version, sbom-notes-1.2.3, to the
// store and links it as dir/result-notes, a directory of
// multiarchClosures: a second root, for every platform's closure, whose
// name splits into a name and a version (the multi-arch closures' paths
// have none). Each system's graph-S.json is rewritten with it.
func addNotes(t *testing.T, dir string) string {
	t.Helper()
	notes := filepath.Join(t.TempDir(), "sbom-notes-1.2.3")
	if err := os.MkdirAll(notes, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, notes, "NOTES", "what the image holds\n")
	notesPath := strings.TrimSpace(stdoutOf(t, "nix-store", "--add", notes))
	if err := os.Symlink(notesPath, filepath.Join(dir, "result-notes")); err != nil {
		t.Fatal(err)
	}
	for _, s := range systems {
		roots := []string{filepath.Join(dir, "result-"+s.system), notesPath}
		graph := stdoutOf(t, "nix", append([]string{"--extra-experimental-features", "nix-command", "path-info", "--json", "-r"}, roots...)...)
		writeFile(t, dir, "graph-"+s.system+".json", graph)
	}
	return notesPath
}

// nixClosureInfo is a closure as Nix describes it, by store path.
type nixClosureInfo map[string]nixPathInfo

func (c nixClosureInfo) equal(o nixClosureInfo) bool {
	return maps.EqualFunc(c, o, func(x, y nixPathInfo) bool {
		return x.name == y.name && x.version == y.version && x.narHash == y.narHash && x.narSize == y.narSize && slices.Equal(x.references, y.references)
	})
}

type nixPathInfo struct {
	name, version string
	narHash       string // hexadecimal
	narSize       uint64
	references    []string // without the path itself, sorted
}

// readNixClosure reads `nix path-info --json` output for the paths of
// `nix-store -qR`, with parseDrvName's names and versions and the NAR
// hashes in hexadecimal, as Nix gives them.
func readNixClosure(t *testing.T, pathInfo string, paths []string) nixClosureInfo {
	t.Helper()
	var infos []struct {
		Path       string
		NarHash    string
		NarSize    uint64
		References []string
	}
	if err := json.Unmarshal([]byte(pathInfo), &infos); err != nil {
		t.Fatalf("nix path-info: %v\n%s", err, pathInfo)
	}
	var names, hashes []string
	for _, info := range infos {
		_, name, _ := strings.Cut(filepath.Base(info.Path), "-")
		names = append(names, name)
		hashes = append(hashes, info.NarHash)
	}
	namesJSON, err := json.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	var split []struct{ Name, Version string }
	out := stdoutOf(t, "nix-instantiate", "--eval", "--json", "--strict", "--argstr", "names", string(namesJSON), "-E", "{ names }: map builtins.parseDrvName (builtins.fromJSON names)")
	if err := json.Unmarshal([]byte(out), &split); err != nil {
		t.Fatalf("parseDrvName: %v\n%s", err, out)
	}
	hex := strings.Fields(stdoutOf(t, "nix", append([]string{"--extra-experimental-features", "nix-command", "hash", "to-base16"}, hashes...)...))
	if len(split) != len(infos) || len(hex) != len(infos) {
		t.Fatalf("%d paths, %d names, %d hashes", len(infos), len(split), len(hex))
	}
	c := nixClosureInfo{}
	for i, info := range infos {
		refs := slices.DeleteFunc(slices.Clone(info.References), func(r string) bool { return r == info.Path })
		slices.Sort(refs)
		c[info.Path] = nixPathInfo{name: split[i].Name, version: split[i].Version, narHash: hex[i], narSize: info.NarSize, references: refs}
	}
	if got, want := slices.Sorted(maps.Keys(c)), sortedCopy(paths); !slices.Equal(got, want) {
		t.Fatalf("nix path-info lists %v, nix-store -qR %v", got, want)
	}
	return c
}

// checkSBOM checks one platform's document against its closure as Nix
// describes it, the image's recorded plan and its roots.
func checkSBOM(t *testing.T, data json.RawMessage, want nixClosureInfo, img platformImage, roots []string) {
	t.Helper()
	doc, err := spdxjson.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the SPDX library cannot read the document: %v\n%s", err, data)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Errorf("the SPDX library finds the document invalid: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.CreationInfo.Created != "1970-01-01T00:00:01Z" || !strings.HasPrefix(doc.DocumentNamespace, "https://storepack.dev/spdx/") {
		t.Errorf("document %s, created %s, namespace %s", doc.SPDXVersion, doc.CreationInfo.Created, doc.DocumentNamespace)
	}

	// Where the image's plan puts each store path, counted as the image's
	// layers are.
	layerOf := map[string]string{}
	total := len(img.manifest.Layers)
	for i, l := range img.plan.Layers {
		for _, p := range l.Paths {
			layerOf[p.String()] = fmt.Sprintf("store layer %d of %d (%s): the image's layer %d of %d", i+1, len(img.plan.Layers), l.Key, i+1, total)
		}
		if got := img.config.History[i].CreatedBy; got != layerllb.StoreLayerCreatedBy(img.plan, i) {
			t.Errorf("history %d is %q, not store layer %d", i, got, i+1)
		}
	}

	ids := map[string]string{} // SPDX identifier → store path, or the other content's name
	got := nixClosureInfo{}
	for _, p := range doc.Packages {
		id := string(p.PackageSPDXIdentifier)
		if p.PackageFileName == "" {
			ids[id] = p.PackageName
			if p.PackageName != "customisation layer" || len(p.Annotations) != 1 || p.Annotations[0].AnnotationComment != fmt.Sprintf("the customisation layer: the image's layer %d of %d", total, total) {
				t.Errorf("package %s: %+v, want the customisation layer, last", id, p)
			}
			continue
		}
		ids[id] = p.PackageFileName
		info := nixPathInfo{name: p.PackageName, version: p.PackageVersion}
		if len(p.PackageChecksums) == 1 && p.PackageChecksums[0].Algorithm == "SHA256" {
			info.narHash = p.PackageChecksums[0].Value
		}
		if _, err := fmt.Sscanf(p.PackageComment, "NAR size %d bytes", &info.narSize); err != nil {
			t.Errorf("%s: comment %q", p.PackageFileName, p.PackageComment)
		}
		hash, _, _ := strings.Cut(filepath.Base(p.PackageFileName), "-")
		purl := "pkg:nix/" + info.name
		if info.version != "" {
			purl += "@" + info.version
		}
		if len(p.PackageExternalReferences) != 1 || p.PackageExternalReferences[0].Locator != purl+"?outputhash="+hash {
			t.Errorf("%s: package URLs %+v, want %s?outputhash=%s", p.PackageFileName, p.PackageExternalReferences, purl, hash)
		}
		if len(p.Annotations) != 1 || p.Annotations[0].AnnotationComment != layerOf[p.PackageFileName] {
			t.Errorf("%s: annotations %+v, want %q", p.PackageFileName, p.Annotations, layerOf[p.PackageFileName])
		}
		got[p.PackageFileName] = info
	}
	var described []string
	for _, r := range doc.Relationships {
		from, to := ids[string(r.RefA.ElementRefID)], ids[string(r.RefB.ElementRefID)]
		switch {
		case r.Relationship == "DESCRIBES" && r.RefA.ElementRefID == "DOCUMENT":
			described = append(described, filepath.Base(to))
		case r.Relationship == "DEPENDS_ON" && got[from].name != "" && got[to].name != "":
			info := got[from]
			info.references = append(info.references, to)
			got[from] = info
		default:
			t.Errorf("relationship %s %s %s", r.RefA.ElementRefID, r.Relationship, r.RefB.ElementRefID)
		}
	}
	for p, info := range got {
		slices.Sort(info.references)
		got[p] = info
	}
	if !got.equal(want) {
		t.Errorf("the document lists:\n%v\nNix:\n%v", got, want)
	}
	if w := append(slices.Clone(roots), "customisation layer"); !slices.Equal(sortedCopy(described), sortedCopy(w)) {
		t.Errorf("the document describes %v, want %v", described, w)
	}
}

// sbomFiles are the files that an SPDX document's package of store path
// p CONTAINS, as "NAME SHA1:… SHA256:…", sorted; nil for none. The
// document must be valid, and a package with files analysed.
func sbomFiles(t *testing.T, data json.RawMessage, p string) []string {
	t.Helper()
	doc, err := spdxjson.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Errorf("the SPDX library finds the document invalid: %v", err)
	}
	files := map[string]string{}
	for _, f := range doc.Files {
		line := f.FileName
		for _, c := range f.Checksums {
			line += " " + string(c.Algorithm) + ":" + c.Value
		}
		files[string(f.FileSPDXIdentifier)] = line
	}
	var pkg string
	for _, pk := range doc.Packages {
		if pk.PackageFileName == p {
			pkg = string(pk.PackageSPDXIdentifier)
			if pk.FilesAnalyzed != (len(doc.Files) > 0) || pk.FilesAnalyzed != (pk.PackageVerificationCode != nil) {
				t.Errorf("%s: files analysed %t, verification code %+v, with %d files in the document", p, pk.FilesAnalyzed, pk.PackageVerificationCode, len(doc.Files))
			}
		}
	}
	var got []string
	for _, r := range doc.Relationships {
		if r.Relationship == "CONTAINS" && string(r.RefA.ElementRefID) == pkg {
			got = append(got, files[string(r.RefB.ElementRefID)])
		}
	}
	slices.Sort(got)
	return got
}

// provenancePredicateType starts the predicate types of BuildKit's
// provenance attestations (SLSA 0.2 or 1).
const provenancePredicateType = "https://slsa.dev/provenance/"

// checkProvenanceSources checks that a provenance predicate of mode=max
// records, among the build's source files, the manifest and the document
// of the image's sources (compared as JSON with want).
func checkProvenanceSources(t *testing.T, platform string, predicate json.RawMessage, manifestName string, manifest []byte, want string) {
	t.Helper()
	type sourceFiles struct {
		Source struct {
			Infos []struct {
				Filename string
				Data     []byte
			}
		}
	}
	var p struct {
		Metadata   map[string]json.RawMessage // SLSA 0.2
		RunDetails struct {                   // SLSA 1
			Metadata struct {
				BuildkitMetadata sourceFiles `json:"buildkit_metadata"`
			}
		}
	}
	if err := json.Unmarshal(predicate, &p); err != nil {
		t.Fatalf("%s: %v\n%s", platform, err, predicate)
	}
	files := p.RunDetails.Metadata.BuildkitMetadata
	if raw, ok := p.Metadata["https://mobyproject.org/buildkit@v1#metadata"]; ok {
		if err := json.Unmarshal(raw, &files); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string][]byte{}
	for _, info := range files.Source.Infos {
		got[info.Filename] = info.Data
	}
	if !bytes.Equal(got[manifestName], manifest) {
		t.Errorf("%s: the provenance's source file %s is %q, want the manifest", platform, manifestName, got[manifestName])
	}
	var sources, wantSources any
	if err := json.Unmarshal(got["storepack-sources.json"], &sources); err != nil {
		t.Errorf("%s: the provenance's sources: %v\n%s", platform, err, predicate)
	}
	if err := json.Unmarshal([]byte(want), &wantSources); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sources, wantSources) {
		t.Errorf("%s: the provenance's sources are %s, want %s", platform, got["storepack-sources.json"], want)
	}
}

// checkSBOMMetadata checks that a document has the test's metadata file's
// licence, homepage and description for the notes (all the store paths
// named sbom-notes: every platform's closure has one), and for no other
// package.
func checkSBOMMetadata(t *testing.T, data json.RawMessage) {
	t.Helper()
	doc, err := spdxjson.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	notes := 0
	for _, p := range doc.Packages {
		got := [3]string{p.PackageLicenseDeclared, p.PackageHomePage, p.PackageDescription}
		var want [3]string
		if p.PackageName == "sbom-notes" {
			notes++
			want = [3]string{"CC-BY-4.0", "https://notes.example/", "<what> the image & its notes"}
		}
		if got != want {
			t.Errorf("%s: licence, homepage, description %q, want %q", p.PackageName, got, want)
		}
	}
	if notes == 0 {
		t.Error("no package sbom-notes")
	}
}

// checkCycloneDX checks a CycloneDX document against a closure as Nix
// describes it: a component per store path with its name, version, NAR
// hash and size, and its references as its dependencies.
func checkCycloneDX(t *testing.T, data string, want nixClosureInfo) {
	t.Helper()
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(strings.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("the CycloneDX library cannot read the document: %v\n%s", err, data)
	}
	got := nixClosureInfo{}
	for _, c := range *bom.Components {
		if c.Type != cdx.ComponentTypeLibrary {
			continue
		}
		info := nixPathInfo{name: c.Name, version: c.Version}
		if c.Hashes != nil {
			for _, h := range *c.Hashes {
				info.narHash = h.Value
			}
		}
		for _, p := range *c.Properties {
			if p.Name == "storepack:nar-size" {
				if _, err := fmt.Sscan(p.Value, &info.narSize); err != nil {
					t.Errorf("%s: NAR size %q", c.BOMRef, p.Value)
				}
			}
		}
		got[c.BOMRef] = info
	}
	for _, d := range *bom.Dependencies {
		if info, ok := got[d.Ref]; ok && d.Dependencies != nil {
			info.references = slices.Sorted(slices.Values(*d.Dependencies))
			got[d.Ref] = info
		}
	}
	if !got.equal(want) {
		t.Errorf("the CycloneDX document lists:\n%v\nNix:\n%v", got, want)
	}
}

// checkNoScanner fails t when a build's progress shows a scanner.
func checkNoScanner(t *testing.T, progress string) {
	t.Helper()
	for _, s := range []string{"generating sbom", "buildkit-syft-scanner"} {
		if strings.Contains(progress, s) {
			t.Errorf("the progress shows a scanner (%q):\n%s", s, progress)
		}
	}
	if !strings.Contains(progress, "[storepack] SBOM of the store closure") {
		t.Errorf("the progress shows no SBOM written:\n%s", progress)
	}
}

// registrySBOMs reads the SBOM attestations of a tag's index in the
// registry, by platform.
func registrySBOMs(t *testing.T, repo, tag string) map[string]json.RawMessage {
	t.Helper()
	return registryAttestations(t, repo, tag, sbomPredicateType, systemPlatforms())
}

// registryAttestations reads the attestations of a type (a prefix of their
// predicate types) of a tag's index in the registry, by platform, one for
// each of platforms.
func registryAttestations(t *testing.T, repo, tag, predicateType string, platforms []string) map[string]json.RawMessage {
	t.Helper()
	index := registryGet(t, repo, tag, ocispecs.MediaTypeImageIndex)
	return attestationsOf(t, index, func(d ocispecs.Descriptor) []byte {
		if d.MediaType == ocispecs.MediaTypeImageManifest || d.MediaType == ocispecs.MediaTypeImageIndex {
			return registryGet(t, repo, d.Digest.String(), d.MediaType)
		}
		return registryGet(t, repo, "blob:"+d.Digest.String())
	}, true, predicateType, platforms)
}

// archiveSBOMs reads the SBOM attestations of an OCI archive's index (the
// one index.json names), by platform, one for each of platforms.
func archiveSBOMs(t *testing.T, file string, platforms []string) map[string]json.RawMessage {
	t.Helper()
	blobs := readTar(t, file)
	get := func(d ocispecs.Descriptor) []byte { return blobs[blobPath(d.Digest.String())] }
	var top ocispecs.Index
	if err := json.Unmarshal(blobs["index.json"], &top); err != nil {
		t.Fatal(err)
	}
	if len(top.Manifests) != 1 || top.Manifests[0].MediaType != ocispecs.MediaTypeImageIndex {
		t.Fatalf("index.json names %+v, want one index", top.Manifests)
	}
	return attestationsOf(t, get(top.Manifests[0]), get, false, sbomPredicateType, platforms)
}

// attestationsOf reads the attestations of a type (a prefix of their
// predicate types) of index through get: per image manifest (by its
// platform), the predicate of the one layer of that type of the
// attestation manifest that refers to it; named says that the image was
// built with a name, which its statements are about; there must be one
// for each of platforms.
func attestationsOf(t *testing.T, index []byte, get func(ocispecs.Descriptor) []byte, named bool, predicateType string, want []string) map[string]json.RawMessage {
	t.Helper()
	var idx ocispecs.Index
	if err := json.Unmarshal(index, &idx); err != nil {
		t.Fatal(err)
	}
	platformOf := map[digest.Digest]string{}
	for _, d := range idx.Manifests {
		if d.Platform != nil && d.Platform.OS != "unknown" {
			platformOf[d.Digest] = platforms.Format(*d.Platform)
		}
	}
	found := map[string]json.RawMessage{}
	for _, d := range idx.Manifests {
		if d.Annotations["vnd.docker.reference.type"] != "attestation-manifest" {
			continue
		}
		image := digest.Digest(d.Annotations["vnd.docker.reference.digest"])
		platform, ok := platformOf[image]
		if !ok {
			t.Errorf("attestation manifest %s refers to %s, which is no image of the index", d.Digest, image)
			continue
		}
		var m ocispecs.Manifest
		if err := json.Unmarshal(get(d), &m); err != nil {
			t.Fatal(err)
		}
		for _, l := range m.Layers {
			if !strings.HasPrefix(l.Annotations["in-toto.io/predicate-type"], predicateType) {
				continue
			}
			if _, dup := found[platform]; dup {
				t.Errorf("%s: more than one attestation of %s", platform, predicateType)
			}
			var statement struct {
				PredicateType string
				Subject       []struct{ Digest map[string]string }
				Predicate     json.RawMessage
			}
			if err := json.Unmarshal(get(l), &statement); err != nil {
				t.Fatal(err)
			}
			// The subjects are the image's names (none for an archive
			// built without one), each with the image's digest.
			if !strings.HasPrefix(statement.PredicateType, predicateType) || named && len(statement.Subject) == 0 {
				t.Errorf("%s: statement of %s about %+v", platform, statement.PredicateType, statement.Subject)
			}
			for _, sub := range statement.Subject {
				if d := digest.NewDigestFromEncoded(digest.SHA256, sub.Digest["sha256"]); d != image {
					t.Errorf("%s: the statement is about %s, the attestation manifest refers to %s", platform, d, image)
				}
			}
			found[platform] = statement.Predicate
		}
	}
	if got, want := slices.Sorted(maps.Keys(found)), sortedCopy(want); !slices.Equal(got, want) {
		t.Errorf("attestations of %s for %v, want one for each of %v", predicateType, got, want)
	}
	return found
}

// systemOf is the Nix system of an OCI platform of systems.
func systemOf(t *testing.T, platform string) string {
	t.Helper()
	for _, s := range systems {
		if s.platform == platform {
			return s.system
		}
	}
	t.Fatalf("no system for %s", platform)
	return ""
}

// readLink returns the base name of a symlink's target.
func readLink(t *testing.T, name string) string {
	t.Helper()
	target, err := os.Readlink(name)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Base(target)
}

// TestSBOMGuix: the SBOM of a Guix closure found by scanning (no GRAPH),
// from the frontend image on buildkitd, has pkg:guix packages with their
// references as the scan found them and the NAR hashes nix-hash gives, and
// the files asked for at their /gnu/store paths with the digests sha1sum
// and sha256sum give; `docker storepack sbom` prints it without building.
func TestSBOMGuix(t *testing.T) {
	installPlugin(t)
	g := guixClosure(t)
	df := writeFile(t, t.TempDir(), "guix.storepack", "# syntax=storepack\nCLOSURE ./result\nSTORE /gnu/store\nLINK /bin -> bin\n")
	oci := filepath.Join(t.TempDir(), "image.tar")
	if r := buildxBuild(t, "-f", df, "--build-context", "store="+filepath.Join(g.root, "gnu/store"), "--sbom=files=true", "-o", "type=oci,dest="+oci, g.root); r.err != nil {
		t.Fatalf("docker buildx build failed:\n%s", r)
	}
	platform := platforms.Format(platforms.Normalize(platforms.DefaultSpec()))
	attached := archiveSBOMs(t, oci, []string{platform})[platform]
	doc, err := spdxjson.Read(bytes.NewReader(attached))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, p := range []string{g.busybox, g.data, g.app} {
		sum := strings.TrimSpace(stdoutOf(t, "nix-hash", "--type", "sha256", filepath.Join(g.root, p)))
		hash, nameVersion, _ := strings.Cut(filepath.Base(p), "-")
		name, version, _ := strings.Cut(nameVersion, "-")
		want[p] = fmt.Sprintf("pkg:guix/%s@%s?outputhash=%s %s", name, version, hash, sum)
	}
	got := map[string]string{}
	ids := map[string]string{}
	for _, p := range doc.Packages {
		if p.PackageFileName == "" {
			continue
		}
		ids[string(p.PackageSPDXIdentifier)] = p.PackageFileName
		sum := ""
		for _, c := range p.PackageChecksums {
			sum = c.Value
		}
		got[p.PackageFileName] = p.PackageExternalReferences[0].Locator + " " + sum
	}
	if !maps.Equal(got, want) {
		t.Errorf("packages %v, want %v", got, want)
	}
	var refs []string
	for _, r := range doc.Relationships {
		if r.Relationship == "DEPENDS_ON" {
			refs = append(refs, ids[string(r.RefA.ElementRefID)]+" -> "+ids[string(r.RefB.ElementRefID)])
		}
	}
	if w := []string{g.app + " -> " + g.busybox, g.app + " -> " + g.data}; !slices.Equal(sortedCopy(refs), sortedCopy(w)) {
		t.Errorf("references %v, want %v", refs, w)
	}
	greeting := filepath.Join(g.root, g.data, "share/greeting.txt")
	sha1, _, _ := strings.Cut(stdoutOf(t, "sha1sum", greeting), " ")
	sha256, _, _ := strings.Cut(stdoutOf(t, "sha256sum", greeting), " ")
	if files, want := sbomFiles(t, attached, g.data), []string{g.data + "/share/greeting.txt SHA1:" + sha1 + " SHA256:" + sha256}; !slices.Equal(files, want) {
		t.Errorf("the files of %s: %q, want %q", g.data, files, want)
	}
	if out := mustPlugin(t, "sbom", "--sbom-files", "--store-root", g.root, "--context", g.root, df); out != string(attached)+"\n" {
		t.Errorf("sbom printed:\n%s\nthe build attached:\n%s", out, attached)
	}
}

// TestSBOMNeedsAttestations: Docker 20.10's builder keeps no attestations,
// so `docker storepack build --sbom` on it fails, saying so, and tags
// nothing.
func TestSBOMNeedsAttestations(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	tag := "storepack-e2e/sbom-engine:1"
	_, stderr, err := runPluginEnv(engineEnv, "build", "--sbom", "-t", tag, filepath.Join(c.dir, "result"))
	if want := "an SBOM was asked for, but this builder cannot attach attestations to an image"; err == nil || !strings.Contains(stderr, want) {
		t.Errorf("err %v, stderr:\n%s\nwant a failure that says %q", err, stderr, want)
	}
	checkNotTagged(t, tag)
}
