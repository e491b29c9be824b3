package manifest2llb

import (
	"strconv"
	"testing"

	"github.com/storepack/storepack/frontend/manifest"
)

// FuzzAccounts: any /etc/passwd and /etc/group a base image holds are read
// without a panic; a name resolves only to the id its own line gives, and
// ACCOUNT's check refuses a base that has the account's name.
func FuzzAccounts(f *testing.F) {
	f.Add([]byte("root:x:0:0::/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\n"), []byte("root:x:0:\nwww-data:x:34:\n"), "www", "www-data")
	f.Add([]byte("www"), []byte(":::\n::"), "www", "")
	f.Add([]byte("app:x:-1:x\n"), []byte("app:x:99999999999999999999:\n"), "app", "app")
	f.Fuzz(func(t *testing.T, passwd, group []byte, user, grp string) {
		ch := &manifest.Chown{User: user, Group: grp}
		o, err := accounts{passwd: passwd, group: group}.owner(ch)
		if err != nil || o == nil {
			return
		}
		if fields := lookup(passwd, user); fields != nil && ch.Named() && grp == "" {
			if uid, err := strconv.Atoi(fields[2]); err != nil || uid != o.UID {
				t.Errorf("user %q resolved to uid %d, its line %q", user, o.UID, fields)
			}
		}
		a := &manifest.Account{Name: user}
		if err := nssDBs[0].free(passwd, a); err == nil && lookup(passwd, user) != nil {
			t.Errorf("a base with a line for %q passed the check", user)
		}
	})
}
