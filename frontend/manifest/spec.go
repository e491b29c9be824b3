package manifest

import (
	"errors"
	"fmt"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// DefaultStoreDir is the store directory when the manifest has no STORE.
const DefaultStoreDir = "/nix/store"

// DefaultMaxLayers is the layer budget when the manifest has no LAYERS --max.
const DefaultMaxLayers = 100

// Manifest is a parsed manifest: its instructions in source order, with
// build arguments and variables not yet expanded. Nothing changes it after
// Parse, so Expand may run on it from several goroutines at once.
type Manifest struct {
	escape   rune // the escape directive's token, which the lexer needs
	commands []command
}

// Spec is a manifest expanded with build arguments and root variables.
type Spec struct {
	StoreDir string
	// StoreDB is STORE --with-db: the image holds the store's database,
	// registering exactly the closure.
	StoreDB bool
	// Bases are the FROM instructions: at most one for each platform and
	// one without a platform.
	Bases    []Base
	Closures []RootSet
	Graphs   []Graph
	Layers   Layers
	Links    []Link
	Dirs     []Dir
	// Account is the ACCOUNT instruction; nil for none.
	Account *Account
	Copies  []Copy
	Runs    []Run
	// SBOM is the SBOM instruction; its zero value for none.
	SBOM SBOM
	// Image is the config set by ENTRYPOINT, CMD, ENV, WORKDIR, USER, LABEL,
	// EXPOSE and STOPSIGNAL, as in a Dockerfile.
	Image dockerspec.DockerOCIImageConfig
}

// Location is the manifest lines an instruction came from.
type Location []parser.Range

// RootSet is one CLOSURE instruction: roots given as store paths or as
// context paths of symlinks into the store (such as ./result).
type RootSet struct {
	Platform string // empty: every target platform its binaries run on
	Name     string // --name: ${Name} is the first root's store path
	Roots    []string
	Location Location
}

// RootVariable is the variable holding the store path of the first root of
// the platform being built.
const RootVariable = "ROOT"

// Options are the inputs of Expand besides the manifest.
type Options struct {
	// BuildArgs are the --build-arg values; only those declared with ARG
	// are visible, as in a Dockerfile.
	BuildArgs map[string]string
	// Roots are the store paths of the root variables for one platform:
	// RootVariable and every CLOSURE --name. A manifest is expanded once
	// without them, to find its roots, and then once per platform with
	// them; without them a reference stays as written.
	Roots map[string]string
}

// Base is one FROM instruction: an image whose layers come first and whose
// config the manifest's config starts from.
type Base struct {
	Platform string // empty: every platform without a base of its own
	Image    string
	Location Location
}

// BaseFor returns the FROM for platform p (as formatted by
// containerd/platforms), else the FROM without a platform, else nil.
func (s *Spec) BaseFor(p string) *Base {
	var fallback *Base
	for i, b := range s.Bases {
		switch b.Platform {
		case p:
			return &s.Bases[i]
		case "":
			fallback = &s.Bases[i]
		}
	}
	return fallback
}

// Graph is one GRAPH instruction: a reference graph file in the context.
type Graph struct {
	Platform string
	File     string
	Location Location
}

// Layers is the LAYERS instruction.
type Layers struct {
	Max      int    // budget counting every layer of the image
	Strategy string // empty: the default strategy
	// Previous names an image whose recorded layer plan the new plan keeps
	// where that ships fewer bytes; empty: none.
	Previous string
	Location Location
}

// SBOM is the SBOM instruction.
type SBOM struct {
	// Metadata is a JSON file in the build context of what the store
	// does not say of its packages (licence, homepage, description),
	// merged into an SBOM asked for (frontend/sbommodel reads it).
	Metadata string
	Location Location
}

// Link is a symlink in the customisation layer. A relative Target resolves
// inside the first root, like `guix pack -S /bin=bin`.
type Link struct {
	Path     string
	Target   string
	Location Location
}

// Dir is an extra directory in the customisation layer.
type Dir struct {
	Path     string
	Mode     uint32
	Owner    *Owner // nil: 0:0
	Location Location
}

// Copy is a COPY instruction: files of the build context put into the
// customisation layer.
type Copy struct {
	Sources  []string // slash-separated, relative to the context's root
	Dest     string   // absolute; ends with "/" for a directory
	Mode     *uint32  // --chmod
	Chown    *Chown   // nil: 0:0
	Location Location
}

// Chown is COPY's --chown=USER[:GROUP]: each a number or a name, which
// the conversion looks up in the image's /etc/passwd and /etc/group.
// Group "": the user's group (its own number, for a number).
type Chown struct{ User, Group string }

// Named reports whether the user or the group is a name, to look up.
func (c Chown) Named() bool {
	_, uerr := parseID(c.User)
	_, gerr := parseID(c.Group)
	return uerr != nil || c.Group != "" && gerr != nil
}

// Run is a RUN instruction: a command run as root in the builder over the
// image's file system, whose changes go into the customisation layer.
type Run struct {
	Args     []string // with the shell for the shell form
	Location Location
}

// Owner is a numeric user and group.
type Owner struct{ UID, GID int }

// Account is the ACCOUNT instruction: a user of its own group, written to
// /etc/passwd, /etc/group and /etc/shadow (its password locked), with a
// home directory it owns.
type Account struct {
	Name     string
	Owner    Owner
	Home     string
	Shell    string
	Location Location
}

// The defaults of ACCOUNT, as useradd's.
const (
	DefaultAccountID    = 1000
	DefaultAccountShell = "/bin/sh"
)

// CustomisationInstructions are the instructions that make the
// customisation layer, for messages.
const CustomisationInstructions = "LINK, DIR, COPY, RUN, ACCOUNT, STORE --with-db"

// HasCustomisation reports whether the image has a customisation layer.
func (s *Spec) HasCustomisation() bool {
	return len(s.Links) > 0 || len(s.Dirs) > 0 || s.Account != nil || s.StoreDB || len(s.Copies) > 0 || len(s.Runs) > 0
}

// StoreLayerBudget is how many layers the store paths may use: the budget
// of LAYERS --max counts every layer of the image, and the customisation
// layer (any LINK or DIR) takes one. It is an error, located at LAYERS,
// when none is left.
func (s *Spec) StoreLayerBudget() (int, error) {
	budget := s.Layers.Max
	if s.HasCustomisation() {
		budget--
	}
	if budget < 1 {
		return 0, parser.WithLocation(fmt.Errorf("LAYERS --max=%d leaves no layer for the store paths after the customisation layer (%s)", s.Layers.Max, CustomisationInstructions), s.Layers.Location)
	}
	return budget, nil
}

// WithFileLine prefixes a located error with the manifest file and its
// first line, as compilers do: "app.storepack:3: unknown instruction".
func WithFileLine(file string, err error) error {
	var le *parser.LocationError
	if err == nil || !errors.As(err, &le) || len(le.Locations) == 0 || len(le.Locations[0]) == 0 {
		return err
	}
	return fmt.Errorf("%s:%d: %w", file, le.Locations[0][0].Start.Line, err)
}

// NeedsBuilder reports whether m has an instruction that only a builder
// carries out, whatever the build arguments: FROM (an image's layers),
// COPY (files of the build context, as the builder copies them) or RUN.
func (m *Manifest) NeedsBuilder() bool {
	for _, cmd := range m.commands {
		switch cmd.(type) {
		case fromCommand, copyCommand, runCommand:
			return true
		}
	}
	return false
}
