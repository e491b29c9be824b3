//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestAccount builds a Nix closure with ACCOUNT and DIR --mode=1777 /tmp
// through `docker build` on Docker 20.10 (Chain; LINK and the account's
// files staged by the frontend binary in the builder) and through the
// plugin on buildkitd (Merge, FileOps): the image runs as the account,
// which can write to its home and to /tmp, and the customisation layer has
// the fixed time on every entry, root's files and the home the account's.
func TestAccount(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	extra := []string{"ACCOUNT --uid=1001 app", "DIR --mode=1777 /tmp", "DIR --owner=1001:1001 /var/lib/app"}
	for _, b := range bothBuilders(t) {
		t.Run(b.name, func(t *testing.T) {
			b.use(t)
			result, graph := b.paths(c)
			tag := b.build(t, c, "account", manifest(result, graph, extra...))
			busybox := pathNamed(t, c, "busybox") + "/bin/busybox"
			run := func(args ...string) string {
				return strings.TrimSpace(dockerRun(t, append([]string{"--rm", "--entrypoint", busybox, tag}, args...)...))
			}
			if out := run("id"); !strings.HasPrefix(out, "uid=1001(app) gid=1001(app)") {
				t.Errorf("id printed %q, want uid=1001(app) gid=1001(app)", out)
			}
			if out := run("sh", "-c", "touch /home/app/f /var/lib/app/f /tmp/f && stat -c %a /tmp"); out != "1777" {
				t.Errorf("writing as app to its home, its DIR and /tmp, then stat /tmp: %q, want 1777", out)
			}
			img := savedImage(t, tag)
			last := img.layers[len(img.layers)-1]
			owners := map[string]int{}
			for _, h := range last.entries {
				if !h.ModTime.Equal(time.Unix(1, 0)) {
					t.Errorf("%s has mtime %v, want the fixed time", h.Name, h.ModTime)
				}
				owners[strings.TrimSuffix(h.Name, "/")] = h.Uid
				if h.Name == "etc/shadow" && h.Mode&0o777 != 0o600 {
					t.Errorf("/etc/shadow has mode %o, want 600", h.Mode)
				}
			}
			for name, uid := range map[string]int{"etc/passwd": 0, "etc/shadow": 0, "home": 0, "home/app": 1001, "var/lib": 0, "var/lib/app": 1001, "tmp": 0} {
				if got, ok := owners[name]; !ok || got != uid {
					t.Errorf("customisation layer: %s owned by %d (present: %v), want %d", name, got, ok, uid)
				}
			}
		})
	}
}

// TestAccountOnBase: on a FROM image (busybox, whose /etc/passwd has root
// at home in / and which has no /etc/shadow), ACCOUNT adds the account to
// the base's files, on both builders, and COPY --chown takes its name.
func TestAccountOnBase(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	for _, b := range bothBuilders(t) {
		t.Run(b.name, func(t *testing.T) {
			b.use(t)
			result, graph := b.paths(c)
			copyGraph := "COPY --chown=app:root " + strings.TrimPrefix(graph, "/") + " /srv/"
			tag := b.build(t, c, "account-base", fromManifest(b.busybox(), result, graph, "ACCOUNT --uid=1001 app", copyGraph))
			out := dockerRun(t, "--rm", "--user", "0", "--entrypoint", "/bin/sh", tag, "-c",
				"cat /etc/passwd /etc/group /etc/shadow; su app -c id; stat -c %u:%g /srv/path-info.json")
			want := "root:x:0:0:root:/:/bin/sh\napp:x:1001:1001::/home/app:/bin/sh\n" +
				"root:x:0:\napp:x:1001:\n" +
				"root:!:1::::::\nnobody:!:1::::::\napp:!:1::::::\n" +
				"uid=1001(app) gid=1001(app) groups=1001(app)\n1001:0\n"
			if out != want {
				t.Errorf("the accounts:\n%s\nwant\n%s", out, want)
			}
		})
	}
}
