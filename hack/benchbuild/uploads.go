package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// uploadLine matches the registry's log line of a blob upload it
// completed: the PUT that ends an upload, answered 201 (as e2e's
// registryUploads reads it). Cross-repository mounts are POSTs: no bytes.
var uploadLine = regexp.MustCompile(`http\.request\.method=PUT .*http\.request\.uri="[^"]*/blobs/uploads/[^"]*[?&]digest=([^"&]+)[^"]*".*http\.response\.status=201`)

// completedUploads lists the digests of the blobs whose upload completed
// in a registry's log, once per upload.
func completedUploads(log string) ([]string, error) {
	var digests []string
	for _, m := range uploadLine.FindAllStringSubmatch(log, -1) {
		d, err := url.QueryUnescape(m[1])
		if err != nil {
			return nil, err
		}
		digests = append(digests, d)
	}
	return digests, nil
}

// uploadedBytes sums the sizes of the blobs uploaded, as the registry's
// filesystem storage under root holds them: an upload's bytes are its
// blob's, whichever chunks they came in.
func uploadedBytes(root string, digests []string) (int64, error) {
	var sum int64
	for _, d := range digests {
		alg, hex, ok := strings.Cut(d, ":")
		if !ok || len(hex) < 2 {
			return 0, fmt.Errorf("the registry's log names blob %q", d)
		}
		fi, err := os.Stat(filepath.Join(root, "docker", "registry", "v2", "blobs", alg, hex[:2], hex, "data"))
		if err != nil {
			return 0, err
		}
		sum += fi.Size()
	}
	return sum, nil
}

func (b *bed) registryLog() string { return filepath.Join(b.dir, "logs", "registry.log") }

// registryLogSize is where the registry's next log line will start.
func (b *bed) registryLogSize() (int64, error) {
	fi, err := os.Stat(b.registryLog())
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// uploadedSince is the blob bytes the registry received since offset of
// its log.
func (b *bed) uploadedSince(offset int64) (int64, error) {
	log, err := os.ReadFile(b.registryLog())
	if err != nil {
		return 0, err
	}
	digests, err := completedUploads(string(log[min(offset, int64(len(log))):]))
	if err != nil {
		return 0, fmt.Errorf("the registry's log: %w", err)
	}
	return uploadedBytes(filepath.Join(b.dir, "registry", "data"), digests)
}

// pushed runs a build that pushes to the test bed's registry and records
// the blob bytes the registry received during it.
func (b *bench) pushed(build func() (measurement, error)) (measurement, error) {
	offset, err := b.bed.registryLogSize()
	if err != nil {
		return measurement{}, err
	}
	m, err := build()
	if err != nil {
		return m, err
	}
	m.pushed = true
	m.uploaded, err = b.bed.uploadedSince(offset)
	return m, err
}
