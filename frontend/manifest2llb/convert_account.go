package manifest2llb

import (
	"fmt"

	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/layerllb"
)

// accountEntries are the customisation entries of ACCOUNT: /etc/passwd,
// /etc/group and /etc/shadow with root, nobody (as nixpkgs' fakeNss has
// them) and the account, its password locked and its last change on day 1
// (no clock), and its home directory, owned by it.
func accountEntries(a *manifest.Account) ([]layerllb.File, layerllb.Dir) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\n"+
		"%[1]s:x:%[2]d:%[3]d::%[4]s:%[5]s\n"+
		"nobody:x:65534:65534:nobody:/var/empty:/bin/false\n",
		a.Name, a.Owner.UID, a.Owner.GID, a.Home, a.Shell)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\nnogroup:x:65534:\n", a.Name, a.Owner.GID)
	shadow := fmt.Sprintf("root:!:1::::::\n%s:!:1::::::\nnobody:!:1::::::\n", a.Name)
	files := []layerllb.File{
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte(passwd)},
		{Path: "/etc/group", Mode: 0o644, Data: []byte(group)},
		{Path: "/etc/shadow", Mode: 0o600, Data: []byte(shadow)},
	}
	home := layerllb.Dir{Path: a.Home, Mode: 0o755, Owner: &layerllb.Owner{UID: a.Owner.UID, GID: a.Owner.GID}}
	return files, home
}
