package hoststore

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestResolveRoot(t *testing.T) {
	s := newFakeStore(t)
	// alias/r reaches result through a directory symlink, with a target
	// relative to the real directory (other), not to alias.
	other := filepath.Join(filepath.Dir(s.work), "other")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../work/result", filepath.Join(other, "r")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../other", filepath.Join(s.work, "alias")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(s.work)
	for _, arg := range []string{
		"./result",
		"result-chain",
		"alias/r",
		s.app.String(),
		s.app.String() + "/bin/app",
		"./result/bin/app",
		s.app.String() + "/share/app", // a symlink inside a store path is that store path
	} {
		for _, storeDir := range []string{"", s.dir} {
			p, err := ResolveRoot(arg, storeDir)
			if err != nil {
				t.Errorf("ResolveRoot(%q, %q): %v", arg, storeDir, err)
			} else if p != s.app {
				t.Errorf("ResolveRoot(%q, %q) = %s, want %s", arg, storeDir, p, s.app)
			}
		}
	}
}

func TestResolveRootErrors(t *testing.T) {
	s := newFakeStore(t)
	_, err := ResolveRoot("", "")
	wantError(t, err, "root: empty argument")

	missing := filepath.Join(s.work, "missing")
	_, err = ResolveRoot(missing, "")
	wantError(t, err, "root "+missing, "no such file")

	notALink := s.writeFile(t, "file", "hello")
	_, err = ResolveRoot(notALink, "")
	wantError(t, err, "root "+notALink, "not a store path, nor a symlink into the store")
	_, err = ResolveRoot(notALink, s.dir)
	wantError(t, err, "not a store path, nor a symlink into "+s.dir)

	outside := filepath.Join(s.work, "outside")
	if err := os.Symlink(notALink, outside); err != nil {
		t.Fatal(err)
	}
	_, err = ResolveRoot(outside, "")
	wantError(t, err, "root "+outside, "it leads to "+notALink+", which is not in the store")

	loop := filepath.Join(s.work, "loop")
	if err := os.Symlink("loop", loop); err != nil {
		t.Fatal(err)
	}
	_, err = ResolveRoot(loop, "")
	wantError(t, err, "root "+loop, "more than 40 symlinks")

	// In another store directory than the one asked for.
	otherDir := filepath.Join(t.TempDir(), "store")
	_, err = ResolveRoot(s.result().Arg, otherDir)
	wantError(t, err, "root "+s.result().Arg, "leads to "+s.app.String(), "which is not in "+otherDir)
	// In the store directory, but not in a store path.
	_, err = ResolveRoot(filepath.Join(s.dir, "not-a-store-path"), s.dir)
	wantError(t, err, "is in the store directory "+s.dir+", but not in a store path")
}

func TestResolveRoots(t *testing.T) {
	s := newFakeStore(t)
	result := s.result()
	roots, storeDir, err := ResolveRoots([]string{result.Arg, s.lib.String()}, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []Root{result, root(s.lib)}; !slices.Equal(roots, want) || storeDir != s.dir {
		t.Errorf("ResolveRoots = %v, %s; want %v, %s", roots, storeDir, want, s.dir)
	}
	// Roots name the argument, and the store path when it differs.
	if got, want := roots[0].String(), result.Arg+" ("+s.app.String()+")"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := roots[1].String(); got != s.lib.String() {
		t.Errorf("String() = %q, want %q", got, s.lib)
	}

	// A relative store directory is made absolute.
	t.Chdir(filepath.Dir(s.dir))
	if _, storeDir, err = ResolveRoots([]string{result.Arg}, filepath.Base(s.dir)); err != nil || storeDir != s.dir {
		t.Errorf("ResolveRoots with a relative store directory: %s, %v; want %s", storeDir, err, s.dir)
	}

	_, _, err = ResolveRoots(nil, "")
	wantError(t, err, "no roots")
	_, _, err = ResolveRoots([]string{result.Arg}, "/")
	wantError(t, err, "--store-dir=/", "cannot be /")
	other := newFakeStore(t)
	_, _, err = ResolveRoots([]string{result.Arg, other.result().Arg}, "")
	wantError(t, err, "different store directories", result.Arg+" is in "+s.dir, other.result().Arg+" in "+other.dir, "--store-dir")
	_, _, err = ResolveRoots([]string{result.Arg}, other.dir)
	wantError(t, err, "root "+result.Arg, "which is not in "+other.dir)
}
