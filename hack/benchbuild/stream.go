package main

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"
)

// The nixpkgs baseline: what dockerTools.streamLayeredImage's script does,
// written here from its published description (it streams an uncompressed
// docker archive to stdout for `docker load`, making two passes over each
// layer: one that tars it to compute its digest, one that tars it again
// into the stream), with the layer plan the other tools get. It runs as
// its own process (this binary with -stream-image), piped into docker load.

// streamConf is what the streaming process needs.
type streamConf struct {
	StoreOnDisk string            `json:"storeOnDisk"` // where the store paths are
	StoreDir    string            `json:"storeDir"`    // /nix/store
	Layers      [][]string        `json:"layers"`      // store path base names, bottom layer first
	Links       map[string]string `json:"links"`       // the customisation layer: symlink → target
	Tag         string            `json:"tag"`
	Entrypoint  []string          `json:"entrypoint"`
	Env         []string          `json:"env"`
}

// streamImage writes the docker archive of conf to stdout and reports the
// bytes written on stderr.
func streamImage(confFile string) error {
	data, err := os.ReadFile(confFile)
	if err != nil {
		return err
	}
	var conf streamConf
	if err := json.Unmarshal(data, &conf); err != nil {
		return fmt.Errorf("%s: %w", confFile, err)
	}
	counter := &countingWriter{w: os.Stdout}
	buffered := bufio.NewWriterSize(counter, 1<<20)
	out := tar.NewWriter(buffered)
	var layerFiles, diffIDs []string
	layers := make([]func(io.Writer) error, 0, len(conf.Layers)+1)
	for _, bases := range conf.Layers {
		layers = append(layers, func(w io.Writer) error { return writeStoreLayer(w, conf, bases) })
	}
	layers = append(layers, func(w io.Writer) error { return writeLinkLayer(w, conf.Links) })
	for _, write := range layers {
		// First pass: the digest and size, which the tar header and the
		// config need before the bytes.
		h := sha256.New()
		size := &countingWriter{w: h}
		if err := write(size); err != nil {
			return err
		}
		digest := hex.EncodeToString(h.Sum(nil))
		name := digest + "/layer.tar"
		if err := out.WriteHeader(&tar.Header{Name: name, Mode: 0o444, Size: size.n, ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		// Second pass: the layer into the stream.
		if err := write(out); err != nil {
			return err
		}
		layerFiles = append(layerFiles, name)
		diffIDs = append(diffIDs, "sha256:"+digest)
	}
	history := make([]map[string]string, len(diffIDs))
	for i := range history {
		history[i] = map[string]string{"created": epoch.UTC().Format(time.RFC3339)}
	}
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      epoch.UTC().Format(time.RFC3339),
		"config":       map[string]any{"Entrypoint": conf.Entrypoint, "Env": conf.Env},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
		"history":      history,
	})
	if err != nil {
		return err
	}
	sum := sha256.Sum256(config)
	configName := hex.EncodeToString(sum[:]) + ".json"
	manifest, err := json.Marshal([]map[string]any{{"Config": configName, "RepoTags": []string{conf.Tag}, "Layers": layerFiles}})
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{configName, config}, {"manifest.json", manifest}} {
		if err := out.WriteHeader(&tar.Header{Name: f.name, Mode: 0o444, Size: int64(len(f.data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := out.Write(f.data); err != nil {
			return err
		}
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := buffered.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "streamed %d bytes\n", counter.n)
	return nil
}

// writeStoreLayer tars whole store paths below the store directory's
// parents, owned by 0:0, with the store's modes and mtimes.
func writeStoreLayer(w io.Writer, conf streamConf, bases []string) error {
	tw := tar.NewWriter(w)
	rel := conf.StoreDir[1:]
	for _, dir := range parentsOf(rel) {
		if err := tw.WriteHeader(&tar.Header{Name: dir + "/", Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
	}
	for _, base := range slices.Sorted(slices.Values(bases)) {
		root := filepath.Join(conf.StoreOnDisk, base)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			name := path.Join(rel, base, filepath.ToSlash(p[len(root):]))
			h := &tar.Header{Name: name, Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime()}
			switch {
			case fi.IsDir():
				h.Typeflag, h.Name = tar.TypeDir, name+"/"
			case fi.Mode()&fs.ModeSymlink != 0:
				h.Typeflag = tar.TypeSymlink
				if h.Linkname, err = os.Readlink(p); err != nil {
					return err
				}
			case fi.Mode().IsRegular():
				h.Typeflag, h.Size = tar.TypeReg, fi.Size()
			default:
				return fmt.Errorf("%s: not a file, directory or symlink", p)
			}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if h.Typeflag != tar.TypeReg {
				return nil
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		})
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// writeLinkLayer tars the customisation layer's symlinks.
func writeLinkLayer(w io.Writer, links map[string]string) error {
	tw := tar.NewWriter(w)
	for _, name := range slices.Sorted(maps.Keys(links)) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Linkname: links[name], Mode: 0o777, ModTime: epoch, Typeflag: tar.TypeSymlink}); err != nil {
			return err
		}
	}
	return tw.Close()
}

// parentsOf lists "nix", "nix/store" for "nix/store".
func parentsOf(rel string) []string {
	var dirs []string
	for d := rel; d != "." && d != ""; d = path.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	return dirs
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
