// Package rosetta stands in for github.com/tonistiigi/go-rosetta, which the
// Go module proxy storepack builds from does not serve. docker/cli's
// `docker version` asks it whether macOS translates the binary with
// Rosetta; the plugin imports docker/cli's commands only for `docker run`,
// and runs on Linux, where the answer is always no.
package rosetta

// Enabled reports whether the process runs under Rosetta translation.
func Enabled() bool { return false }
