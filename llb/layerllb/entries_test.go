package layerllb

import (
	"fmt"
	"slices"
	"testing"
)

// TestEntries: the entries FileOps make, depth first in byte order (a
// directory's entries before a sibling whose name sorts after it with
// another character than the separator), parents made with the mode and
// owner of what needed them, owned directories on their parents.
func TestEntries(t *testing.T) {
	c := Customisation{
		Dirs:  []Dir{{Path: "/var/empty", Mode: 0o700}, {Path: "/home/app", Mode: 0o750, Owner: &Owner{UID: 1001, GID: 1001}}},
		Links: []Link{{Path: "/bin", Target: "/nix/store/x-hello/bin"}, {Path: "/usr/bin/env", Target: "/bin/env"}},
		Files: []File{{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0::/:/bin/sh\n")}, {Path: "/etc-x", Mode: 0o600}},
	}
	var got []string
	for _, e := range c.Entries() {
		got = append(got, fmt.Sprintf("%s %v %d:%d", e.Path, e.Mode, e.UID, e.GID))
	}
	want := []string{
		"/bin Lrwxrwxrwx 0:0",
		"/etc drwxr-xr-x 0:0",
		"/etc/passwd -rw-r--r-- 0:0",
		"/etc-x -rw------- 0:0",
		"/home drwxr-xr-x 0:0",
		"/home/app drwxr-x--- 1001:1001",
		"/usr drwxr-xr-x 0:0",
		"/usr/bin drwxr-xr-x 0:0",
		"/usr/bin/env Lrwxrwxrwx 0:0",
		"/var drwx------ 0:0",
		"/var/empty drwx------ 0:0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("entries:\n%q\nwant:\n%q", got, want)
	}
	if !c.HostWritable() {
		t.Error("no special bits, yet not host-writable")
	}
	if (Customisation{Dirs: []Dir{{Path: "/tmp", Mode: 0o1777}}}).HostWritable() {
		t.Error("a sticky directory is host-writable")
	}
}
