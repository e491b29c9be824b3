package inbuilder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
	"golang.org/x/sync/errgroup"
)

// Main runs the command that args (os.Args[1:]) name, as the ExecOps of
// Helper invoke it: `COMMAND REQUEST OUTDIR`. ok is false when args name no
// command, and the binary is then the gateway frontend.
func Main(ctx context.Context, args []string) (ok bool, err error) {
	if len(args) == 0 {
		return false, nil
	}
	command := Command(args[0])
	if !slices.Contains([]Command{WriteStage, FindHashes, CheckStore, HashStore, DiffTree}, command) {
		return false, nil
	}
	if len(args) != 3 {
		return true, fmt.Errorf("%s: want REQUEST OUTDIR, have %q", command, args[1:])
	}
	request, err := os.ReadFile(args[1])
	if err != nil {
		return true, err
	}
	outDir := args[2]
	if command == WriteStage {
		var c layerllb.Customisation
		if err := json.Unmarshal(request, &c); err != nil {
			return true, fmt.Errorf("%s: %w", command, err)
		}
		return true, c.WriteTo(outDir)
	}
	if command == DiffTree {
		var req DiffRequest
		if err := json.Unmarshal(request, &req); err != nil {
			return true, fmt.Errorf("%s: %w", command, err)
		}
		var result layerllb.DiffResult
		var unfit *unfitError
		result.Removed, err = diffTrees(req.Before, req.After, outDir)
		switch {
		case errors.As(err, &unfit):
			result = layerllb.DiffResult{Problem: unfit.Error()}
		case err != nil:
			return true, err
		}
		data, err := json.Marshal(result)
		if err != nil {
			return true, err
		}
		return true, os.WriteFile(req.Result, data, 0o644)
	}
	var req ScanRequest
	if err := json.Unmarshal(request, &req); err != nil {
		return true, fmt.Errorf("%s: %w", command, err)
	}
	return true, scanStore(ctx, command, req, filepath.Join(outDir, resultFile))
}

// scanStore walks the requested store paths as command says, in parallel,
// and writes the ScanResult to out.
func scanStore(ctx context.Context, command Command, req ScanRequest, out string) error {
	scan := store.FindHashes
	switch command {
	case CheckStore:
		scan = func(_ context.Context, fsys fs.FS, p store.Path) (store.HashScan, error) {
			size, err := store.NarSize(fsys, p)
			return store.HashScan{NarSize: size}, err
		}
	case HashStore:
		scan = func(ctx context.Context, fsys fs.FS, p store.Path) (store.HashScan, error) {
			if req.Files {
				return store.NarHashFiles(ctx, fsys, p)
			}
			hash, size, err := store.NarHash(ctx, fsys, p)
			return store.HashScan{NarSize: size, NarHash: hash}, err
		}
	}
	type job struct {
		root *os.Root
		path store.Path
	}
	var jobs []job
	for _, part := range req.Parts {
		root, err := os.OpenRoot(part.StoreDir)
		if err != nil {
			return err
		}
		defer root.Close()
		for _, p := range part.Paths {
			jobs = append(jobs, job{root, p})
		}
	}
	found := make([]store.HashScan, len(jobs))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, j := range jobs {
		g.Go(func() (err error) {
			found[i], err = scan(ctx, j.root.FS(), j.path)
			return err
		})
	}
	var result ScanResult
	if err := g.Wait(); err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		result.Problem = err.Error()
	} else {
		result.Scans = make(map[string]store.HashScan, len(jobs))
		for i, j := range jobs {
			result.Scans[j.path.String()] = found[i]
		}
	}
	data, err := json.Marshal(result)
	if err != nil {
		return err
	}
	return os.WriteFile(out, data, 0o644)
}
