package main

import (
	"strings"
	"testing"
)

const index = `Package: app
Version: 1:2.0-1
Installed-Size: 100
Pre-Depends: libc6 (>= 2.36)
Depends: libfoo1:any (>= 1), missing | libbar2, mail-transport-agent, libc6
Description: an application
 with a continuation line

Package: libc6
Version: 2.36-9
Installed-Size: 13001
Depends: libgcc-s1

Package: libgcc-s1
Version: 12.2.0-14
Installed-Size: 140
Depends: libc6

Package: libfoo1
Version: 1.0-1
Installed-Size: 20
Depends: libc6

Package: libbar2
Version: 2.0-1
Installed-Size: 30

Package: postfix
Version: 3.7-1
Installed-Size: 4000
Provides: mail-transport-agent, default-mta

Package: exim4
Version: 4.96-1
Provides: mail-transport-agent

Package: unrelated
Version: 1
Installed-Size: 1
`

func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(strings.NewReader(index), &out, []string{"app"}); err != nil {
		t.Fatal(err)
	}
	var records []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(line, "#") {
			records = append(records, line)
		}
	}
	// libc6 ↔ libgcc-s1 is a cycle: the walk from app reaches libc6
	// first, so libgcc-s1's edge back to libc6 goes. "missing | libbar2"
	// resolves to libbar2, the virtual mail-transport-agent to exim4 (the
	// provider first by name), and libc6, listed twice, counts once.
	want := []string{
		"libgcc-s1 12.2.0-14 140",
		"libc6 2.36-9 13001 libgcc-s1",
		"libfoo1 1.0-1 20 libc6",
		"libbar2 2.0-1 30",
		"exim4 4.96-1 0",
		"app 1:2.0-1 100 libc6 libfoo1 libbar2 exim4",
	}
	if strings.Join(records, "\n") != strings.Join(want, "\n") {
		t.Errorf("fixture\n%s\nwant\n%s", strings.Join(records, "\n"), strings.Join(want, "\n"))
	}
	if err := run(strings.NewReader(index), &out, []string{"nope"}); err == nil {
		t.Errorf("an unknown root did not fail")
	}
}
