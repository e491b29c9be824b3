// Package inbuilder is the frontend binary's work inside the builder: what
// FileOps cannot do, done by running the binary from the frontend image in
// an ExecOp. It holds both sides of that protocol, so that they cannot
// drift apart: the LLB that runs a command (Helper) and the command itself
// (Main, called by cmd/storepack-frontend).
//
// The commands:
//   - write-stage: write LINK and DIR entries on builders without the
//     symlink FileOp, or with special mode bits;
//   - find-hashes: read every file of store paths for the hashes of other
//     store paths, to discover a closure without a GRAPH;
//   - check-store: walk store paths for what an image must not hold and
//     measure their NAR size, to check a GRAPH's closure before copying it;
//   - hash-store: the same, reading every file for the NAR hash too, for
//     the store database (STORE --with-db) or an SBOM, and listing the
//     files with their digests when asked (an SBOM that lists files);
//   - diff-tree: write what RUN changed in a file system as files, for
//     builders without DiffOp and for a layer with fixed times on all.
package inbuilder

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

// Command names a command of the frontend binary run in the builder.
type Command string

const (
	WriteStage Command = "write-stage"
	FindHashes Command = "find-hashes"
	CheckStore Command = "check-store"
	HashStore  Command = "hash-store"
	DiffTree   Command = "diff-tree"
)

// The mounts of a command's ExecOp.
const (
	beforeMount  = "/before"
	afterMount   = "/after"
	storeMount   = "/store"
	requestMount = "/in"
	outputMount  = "/out"
	resultMount  = "/result"
	requestFile  = "request.json"
	resultFile   = "result.json"
)

// ScanRequest is what find-hashes, check-store and hash-store read: the store paths to
// walk, in parts whose entries are in different directories.
type ScanRequest struct {
	Parts []ScanPart `json:"parts"`
	// Files asks hash-store for each path's regular files with their
	// digests too (store.NarHashFiles), read in the same pass.
	Files bool `json:"files,omitempty"`
}

// ScanPart is store paths whose entries are in StoreDir.
type ScanPart struct {
	StoreDir string       `json:"storeDir"`
	Paths    []store.Path `json:"paths"`
}

// ScanResult is what find-hashes, check-store and hash-store write: the scan of each
// store path, or what made one unfit for an image. An unfit path is a
// result, not a failed process, so that the frontend can name it plainly.
type ScanResult struct {
	Scans   map[string]store.HashScan `json:"scans,omitempty"`
	Problem string                    `json:"problem,omitempty"`
}

// Helper runs the frontend binary from the frontend image in the builder.
type Helper struct {
	Image  llb.State // the frontend image
	Binary string    // path of the frontend binary in Image
}

var _ layerllb.Stager = Helper{}

// Stage implements layerllb.Stager: write-stage writes the entries into
// the scratch mount it returns.
func (h Helper) Stage(c layerllb.Customisation) (llb.State, error) {
	request, err := json.Marshal(c)
	if err != nil {
		return llb.State{}, err
	}
	run := h.run(WriteStage, request, "write LINK and DIR entries")
	return run.AddMount(outputMount, llb.Scratch()), nil
}

// Scan returns the state whose file ResultFile holds the ScanResult of
// command (FindHashes, CheckStore or HashStore) on the paths of parts, each mounted
// on its own; files asks HashStore for the files too. step names the ExecOp
// in progress output.
func (h Helper) Scan(command Command, parts []layerllb.Part, files bool, step string) (llb.State, error) {
	req := ScanRequest{Files: files}
	for i, part := range parts {
		mount := path.Join(storeMount, strconv.Itoa(i))
		req.Parts = append(req.Parts, ScanPart{StoreDir: path.Join(mount, part.Dir), Paths: part.Paths})
	}
	request, err := json.Marshal(req)
	if err != nil {
		return llb.State{}, err
	}
	run := h.run(command, request, step)
	for i, part := range parts {
		run.AddMount(path.Join(storeMount, strconv.Itoa(i)), part.State, llb.Readonly)
	}
	return run.AddMount(outputMount, llb.Scratch()), nil
}

var _ layerllb.Differ = Helper{}

// Diff implements layerllb.Differ with diff-tree: the output holds the
// entries of after that before lacks or that differ, with their parents,
// and what else it found (layerllb.DiffResult).
func (h Helper) Diff(before, after llb.State, step string) (layerllb.Changes, error) {
	request, err := json.Marshal(DiffRequest{Before: beforeMount, After: afterMount, Result: path.Join(resultMount, layerllb.DiffResultFile)})
	if err != nil {
		return layerllb.Changes{}, err
	}
	run := h.run(DiffTree, request, step)
	run.AddMount(beforeMount, before, llb.Readonly)
	run.AddMount(afterMount, after, llb.Readonly)
	return layerllb.Changes{
		Entries: run.AddMount(outputMount, llb.Scratch()),
		Result:  run.AddMount(resultMount, llb.Scratch()),
	}, nil
}

// DiffRequest is what diff-tree reads: the two trees to compare, and the
// file to write the layerllb.DiffResult to.
type DiffRequest struct {
	Before string `json:"before"`
	After  string `json:"after"`
	Result string `json:"result"`
}

// ResultFile is the file of Scan's state that holds the result.
const ResultFile = resultFile

// DecodeScanResult reads the result file of a scan; a store path unfit for
// an image is an error that names where the store came from.
func DecodeScanResult(data []byte, where string) (map[string]store.HashScan, error) {
	var result ScanResult
	if err := json.Unmarshal(data, &result); err != nil {
		return nil, fmt.Errorf("the scan's result: %w", err)
	}
	if result.Problem != "" {
		return nil, fmt.Errorf("%s: %s", where, result.Problem)
	}
	return result.Scans, nil
}

// run is the ExecOp of a command, without network, with its request
// mounted; the command line is `BINARY COMMAND REQUEST OUTDIR`.
func (h Helper) run(command Command, request []byte, step string) llb.ExecState {
	in := llb.Scratch().File(llb.Mkfile("/"+requestFile, 0o444, request))
	run := h.Image.Run(
		llb.Args([]string{h.Binary, string(command), path.Join(requestMount, requestFile), outputMount}),
		llb.Network(pb.NetMode_NONE),
		llb.WithCustomName(step),
	)
	run.AddMount(requestMount, in, llb.Readonly)
	return run
}
