package cliplugin

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// hostKernel is the release of the kernel this process runs on, as
// uname(2) and the engine's info report it.
func hostKernel() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// binfmtEntries are the binfmt_misc entries of this kernel, each as its
// file reads.
func binfmtEntries() []string {
	const dir = "/proc/sys/fs/binfmt_misc"
	names, _ := os.ReadDir(dir)
	var entries []string
	for _, n := range names {
		if n.Name() == "register" || n.Name() == "status" {
			continue
		}
		if data, err := os.ReadFile(filepath.Join(dir, n.Name())); err == nil {
			entries = append(entries, string(data))
		}
	}
	return entries
}
