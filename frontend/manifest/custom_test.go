package manifest

import (
	"reflect"
	"testing"
)

// TestAccount: ACCOUNT's defaults are useradd's, its flags override them,
// and it names the config's user unless USER does.
func TestAccount(t *testing.T) {
	m := expand(t, "CLOSURE ./r\nACCOUNT app\nDIR --owner=1000:100 /data\n", Options{})
	want := &Account{Name: "app", Owner: Owner{1000, 1000}, Home: "/home/app", Shell: "/bin/sh", Location: m.Account.Location}
	if !reflect.DeepEqual(m.Account, want) || m.Image.User != "app" {
		t.Errorf("account %+v, user %q; want %+v, user app", m.Account, m.Image.User, want)
	}
	if o := m.Dirs[0].Owner; o == nil || *o != (Owner{1000, 100}) {
		t.Errorf("DIR --owner: %+v", o)
	}
	m = expand(t, "ARG ID=2000\nCLOSURE ./r\nACCOUNT --uid=$ID --home=/srv --shell=/bin/bash web\nUSER 0\n", Options{})
	want = &Account{Name: "web", Owner: Owner{2000, 2000}, Home: "/srv", Shell: "/bin/bash", Location: m.Account.Location}
	if !reflect.DeepEqual(m.Account, want) || m.Image.User != "0" {
		t.Errorf("account %+v, user %q; want %+v, user 0", m.Account, m.Image.User, want)
	}
	if budget, _ := m.StoreLayerBudget(); budget != DefaultMaxLayers-1 {
		t.Errorf("budget %d with an ACCOUNT, want %d", budget, DefaultMaxLayers-1)
	}
}

// TestCopy: COPY's sources are context paths, its flags a mode and an
// owner, and it takes the customisation layer.
func TestCopy(t *testing.T) {
	m := expand(t, "ARG DIR=conf\nCLOSURE ./r\nCOPY --chmod=0640 --chown=1000:100 ./$DIR/app.conf /${DIR}x/ /etc/app/\nCOPY . /srv\n", Options{})
	mode := uint32(0o640)
	want := []Copy{
		{Sources: []string{"conf/app.conf", "confx"}, Dest: "/etc/app/", Mode: &mode, Chown: &Chown{"1000", "100"}, Location: m.Copies[0].Location},
		{Sources: []string{"."}, Dest: "/srv", Location: m.Copies[1].Location},
	}
	if !reflect.DeepEqual(m.Copies, want) || !m.HasCustomisation() {
		t.Errorf("copies %+v, want %+v", m.Copies, want)
	}
}

// TestRun: RUN's shell form runs in /bin/sh or --shell (root references
// expanded there and in the command, nothing else), the exec form as is.
func TestRun(t *testing.T) {
	m := expand(t, "CLOSURE --name=BASH ./bash\nRUN chown -R 1000 /data && echo $HOME\nRUN --shell=${BASH}/bin/bash ls ${BASH}\nRUN [\"/bin/touch\", \"/marker\"]\n", Options{Roots: map[string]string{"BASH": "/nix/store/x-bash", "ROOT": "/nix/store/x-bash"}})
	want := [][]string{
		{"/bin/sh", "-c", "chown -R 1000 /data && echo $HOME"},
		{"/nix/store/x-bash/bin/bash", "-c", "ls /nix/store/x-bash"},
		{"/bin/touch", "/marker"},
	}
	var got [][]string
	for _, r := range m.Runs {
		got = append(got, r.Args)
	}
	if !reflect.DeepEqual(got, want) || !m.HasCustomisation() {
		t.Errorf("runs %q, want %q", got, want)
	}
}
