package hoststore

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/storepack/storepack/internal/storetest"
)

func TestResolveRoot(t *testing.T) {
	s := storetest.NewHostStore(t)
	// alias/r reaches result through a directory symlink, with a target
	// relative to the real directory (other), not to alias.
	other := filepath.Join(filepath.Dir(s.Work), "other")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../work/result", filepath.Join(other, "r")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../other", filepath.Join(s.Work, "alias")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(s.Work)
	for _, arg := range []string{
		"./result",
		"result-chain",
		"alias/r",
		s.App.String(),
		s.App.String() + "/bin/app",
		"./result/bin/app",
		s.App.String() + "/share/app", // a symlink inside a store path is that store path
	} {
		for _, storeDir := range []string{"", s.Dir} {
			p, err := ResolveRoot(arg, storeDir)
			if err != nil {
				t.Errorf("ResolveRoot(%q, %q): %v", arg, storeDir, err)
			} else if p != s.App {
				t.Errorf("ResolveRoot(%q, %q) = %s, want %s", arg, storeDir, p, s.App)
			}
		}
	}
}

func TestResolveRootErrors(t *testing.T) {
	s := storetest.NewHostStore(t)
	_, err := ResolveRoot("", "")
	wantError(t, err, "root: empty argument")

	missing := filepath.Join(s.Work, "missing")
	_, err = ResolveRoot(missing, "")
	wantError(t, err, "root "+missing, "no such file")

	notALink := s.WriteFile(t, "file", "hello")
	_, err = ResolveRoot(notALink, "")
	wantError(t, err, "root "+notALink, "not a store path, nor a symlink into the store")
	_, err = ResolveRoot(notALink, s.Dir)
	wantError(t, err, "not a store path, nor a symlink into "+s.Dir)

	outside := filepath.Join(s.Work, "outside")
	if err := os.Symlink(notALink, outside); err != nil {
		t.Fatal(err)
	}
	_, err = ResolveRoot(outside, "")
	wantError(t, err, "root "+outside, "it leads to "+notALink+", which is not in the store")

	loop := filepath.Join(s.Work, "loop")
	if err := os.Symlink("loop", loop); err != nil {
		t.Fatal(err)
	}
	_, err = ResolveRoot(loop, "")
	wantError(t, err, "root "+loop, "more than 40 symlinks")

	// In another store directory than the one asked for.
	otherDir := filepath.Join(t.TempDir(), "store")
	_, err = ResolveRoot(resultRoot(s).Arg, otherDir)
	wantError(t, err, "root "+resultRoot(s).Arg, "leads to "+s.App.String(), "which is not in "+otherDir)
	// In the store directory, but not in a store path.
	_, err = ResolveRoot(filepath.Join(s.Dir, "not-a-store-path"), s.Dir)
	wantError(t, err, "is in the store directory "+s.Dir+", but not in a store path")
}

func TestResolveRoots(t *testing.T) {
	s := storetest.NewHostStore(t)
	result := resultRoot(s)
	roots, storeDir, err := ResolveRoots([]string{result.Arg, s.Lib.String()}, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []Root{result, root(s.Lib)}; !slices.Equal(roots, want) || storeDir != s.Dir {
		t.Errorf("ResolveRoots = %v, %s; want %v, %s", roots, storeDir, want, s.Dir)
	}
	// Roots name the argument, and the store path when it differs.
	if got, want := roots[0].String(), result.Arg+" ("+s.App.String()+")"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := roots[1].String(); got != s.Lib.String() {
		t.Errorf("String() = %q, want %q", got, s.Lib)
	}

	// A relative store directory is made absolute.
	t.Chdir(filepath.Dir(s.Dir))
	if _, storeDir, err = ResolveRoots([]string{result.Arg}, filepath.Base(s.Dir)); err != nil || storeDir != s.Dir {
		t.Errorf("ResolveRoots with a relative store directory: %s, %v; want %s", storeDir, err, s.Dir)
	}

	_, _, err = ResolveRoots(nil, "")
	wantError(t, err, "no roots")
	_, _, err = ResolveRoots([]string{result.Arg}, "/")
	wantError(t, err, "--store-dir=/", "cannot be /")
	other := storetest.NewHostStore(t)
	_, _, err = ResolveRoots([]string{result.Arg, resultRoot(other).Arg}, "")
	wantError(t, err, "different store directories", result.Arg+" is in "+s.Dir, resultRoot(other).Arg+" in "+other.Dir, "--store-dir")
	_, _, err = ResolveRoots([]string{result.Arg}, other.Dir)
	wantError(t, err, "root "+result.Arg, "which is not in "+other.Dir)
}
