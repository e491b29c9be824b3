//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCopy builds a Nix closure with COPY of a file (--chmod, --chown)
// and of a directory, through `docker build` on Docker 20.10 (Chain) and
// through the plugin on buildkitd (Merge): the files are at their
// destinations with the fixed mtime, the given mode and owner, 0:0 else.
func TestCopy(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	for name, content := range map[string]string{"conf/app.conf": "greeting=hello\n", "data/a": "a\n", "data/sub/b": "b\n"} {
		p := filepath.Join(c.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Dir(p), filepath.Base(p), content)
	}
	copies := func(prefix string) []string {
		return []string{"COPY --chmod=0640 --chown=1000:100 " + prefix + "conf/app.conf /etc/app/", "COPY " + prefix + "data /srv/data"}
	}
	for _, b := range bothBuilders(t) {
		t.Run(b.name, func(t *testing.T) {
			b.use(t)
			result, graph := b.paths(c)
			prefix := "" // COPY sources are relative to the context: the host's / for docker build
			if b.engine {
				prefix = strings.TrimPrefix(c.dir, "/") + "/"
			}
			tag := b.build(t, c, "copy", manifest(result, graph, copies(prefix)...))
			busybox := pathNamed(t, c, "busybox") + "/bin/busybox"
			if out := dockerRun(t, "--rm", "--entrypoint", busybox, tag, "cat", "/etc/app/app.conf", "/srv/data/a", "/srv/data/sub/b"); out != "greeting=hello\na\nb\n" {
				t.Errorf("the copied files hold %q", out)
			}
			img := savedImage(t, tag)
			type want struct{ mode, uid, gid int64 }
			wants := map[string]want{
				"etc/app/app.conf": {0o640, 1000, 100},
				"srv/data/a":       {0o644, 0, 0},
				"srv/data/sub/b":   {0o644, 0, 0},
				"srv/data/sub":     {0o755, 0, 0},
			}
			for _, h := range img.layers[len(img.layers)-1].entries {
				if !h.ModTime.Equal(time.Unix(1, 0)) {
					t.Errorf("%s has mtime %v, want the fixed time", h.Name, h.ModTime)
				}
				name := strings.TrimSuffix(h.Name, "/")
				if w, ok := wants[name]; ok {
					if h.Mode&0o7777 != w.mode || int64(h.Uid) != w.uid || int64(h.Gid) != w.gid {
						t.Errorf("%s: mode %o, owner %d:%d; want %o, %d:%d", name, h.Mode&0o7777, h.Uid, h.Gid, w.mode, w.uid, w.gid)
					}
					delete(wants, name)
				}
			}
			if len(wants) > 0 {
				t.Errorf("the customisation layer lacks %v", wants)
			}
		})
	}
}
