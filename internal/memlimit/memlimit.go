// Package memlimit gives storepack's commands the Go runtime's soft memory
// limit they run under.
package memlimit

import (
	"os"
	"runtime/debug"
)

// Soft is the runtime's soft memory limit unless GOMEMLIMIT sets one: a
// build of 100,000 store paths keeps about 90 MB live at its peak, and the
// collector's default (GOGC=100) lets the heap grow to twice the live set
// before it collects; the limit makes it collect sooner. A live set beyond
// the limit still works, the collector then capped at half the CPU.
const Soft = 150 << 20

// Apply sets Soft as the limit, unless GOMEMLIMIT gives one.
func Apply() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(Soft)
	}
}
