package store

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// helloInfos is the closure of the testdata fixtures, references unsorted
// and with a duplicate, as a careless caller might pass them. The NAR hashes
// are those of dump-db.txt, which the other fixtures that have hashes give in
// their own notations.
func helloInfos(t testing.TB) []Info {
	p := func(s string) Path { return mustParse(t, s) }
	return []Info{
		{Path: p(helloPath), References: []Path{p(helloPath), p(glibcPath), p(glibcPath)}, NarSize: 257048,
			NarHash: "sha256:f50947aaeb26c57d21fa5d328263dfe574de739988b886e7577496a2c8773e13"},
		{Path: p(glibcPath), References: []Path{p(libgccPath), p(idn2Path), p(glibcPath)}, NarSize: 31230776,
			NarHash: "sha256:f770d9106fd287db7f1adbc60926f6967e7893f57fd14c1604d115cea325a65e"},
		{Path: p(idn2Path), References: []Path{p(unistrPath), p(idn2Path)}, NarSize: 362128,
			NarHash: "sha256:d818319478da6bd0c621de49f145fda9988c79fc35526f7eaed46725a2a7b860"},
		{Path: p(unistrPath), References: []Path{p(unistrPath)}, NarSize: 2025960,
			NarHash: "sha256:dcd6c8a1f8b46287cced9041dff02cee737443e210471948d33296c87009e8a7"},
		{Path: p(libgccPath), NarSize: 139040,
			NarHash: "sha256:19cbae530282bd36cb9d21f6be6abf0d7c1c1e21862ab8a18a8902073fec8df4"},
	}
}

func TestNewGraph(t *testing.T) {
	g, err := NewGraph(helloInfos(t))
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, g)
	if g.Len() != 5 || g.StoreDir() != "/nix/store" {
		t.Errorf("Len, StoreDir = %d, %q; want 5, /nix/store", g.Len(), g.StoreDir())
	}
	want := []string{idn2Path, unistrPath, glibcPath, libgccPath, helloPath}
	if got := strings.Join(pathStrings(g.Paths()), " "); got != strings.Join(want, " ") {
		t.Errorf("Paths() = %v, want %v", got, want)
	}
	hello, ok := g.Info(mustParse(t, helloPath))
	if !ok || hello.NarSize != 257048 || hello.NarHash != helloInfos(t)[0].NarHash || !slices.Equal(pathStrings(hello.References), []string{glibcPath, helloPath}) {
		t.Errorf("Info(hello) = %+v, %v; want its size and hash, sorted, deduplicated references with the self-reference", hello, ok)
	}
	if got := pathStrings(g.Referrers(mustParse(t, glibcPath))); !slices.Equal(got, []string{helloPath}) {
		t.Errorf("Referrers(glibc) = %v, want only hello (no self)", got)
	}
	if got := g.Referrers(mustParse(t, helloPath)); len(got) != 0 {
		t.Errorf("Referrers(hello) = %v, want none", got)
	}

	// The graph is immutable: modifying what it returns changes nothing.
	hello.References[0] = Path{}
	g.Paths()[0] = Path{}
	if again, _ := g.Info(mustParse(t, helloPath)); again.References[0] == (Path{}) {
		t.Errorf("Info returned the graph's own slice")
	}
	checkInvariants(t, g)
}

func TestNumbered(t *testing.T) {
	g, err := NewGraph(helloInfos(t))
	if err != nil {
		t.Fatal(err)
	}
	// Paths: libidn2 0, libunistring 1, glibc 2, libgcc 3, hello 4.
	sizes, refs := g.Numbered()
	if want := []uint64{362128, 2025960, 31230776, 139040, 257048}; !slices.Equal(sizes, want) {
		t.Errorf("sizes = %v, want %v", sizes, want)
	}
	want := [][]int32{{1}, {}, {0, 3}, {}, {2}} // no self-references
	if len(refs) != len(want) {
		t.Fatalf("refs = %v, want %v", refs, want)
	}
	for i := range want {
		if !slices.Equal(refs[i], want[i]) {
			t.Errorf("refs[%d] = %v, want %v", i, refs[i], want[i])
		}
	}
	// Each list is its own: growing one leaves the next alone.
	refs[0] = append(refs[0], 4)
	if !slices.Equal(refs[1], []int32{}) {
		t.Errorf("appending to refs[0] changed refs[1] to %v", refs[1])
	}
	checkInvariants(t, g)
}

func TestNewGraphShuffledIsIdentical(t *testing.T) {
	want, err := NewGraph(helloInfos(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		infos := helloInfos(t)
		rng := rand.New(rand.NewPCG(uint64(i), 1))
		rng.Shuffle(len(infos), func(a, b int) { infos[a], infos[b] = infos[b], infos[a] })
		for _, info := range infos {
			rng.Shuffle(len(info.References), func(a, b int) {
				info.References[a], info.References[b] = info.References[b], info.References[a]
			})
		}
		// A repeated, identical entry is harmless.
		infos = append(infos, infos[0])
		got, err := NewGraph(infos)
		if err != nil {
			t.Fatal(err)
		}
		if !sameGraph(got, want) {
			t.Fatalf("graph from shuffled input differs")
		}
	}
}

func TestNewGraphErrors(t *testing.T) {
	p := func(s string) Path { return mustParse(t, s) }
	tests := []struct {
		name    string
		infos   []Info
		wantErr string
	}{
		{
			name:    "missing reference",
			infos:   []Info{{Path: p(helloPath), References: []Path{p(glibcPath)}}},
			wantErr: helloPath + " references " + glibcPath + ", which is not in the graph",
		},
		{
			name: "duplicate with other references",
			infos: []Info{
				{Path: p(helloPath)},
				{Path: p(helloPath), References: []Path{p(helloPath)}},
			},
			wantErr: helloPath + " is listed twice with different data",
		},
		{
			name:    "duplicate with other size",
			infos:   []Info{{Path: p(helloPath), NarSize: 1}, {Path: p(helloPath), NarSize: 2}},
			wantErr: helloPath + " is listed twice",
		},
		{
			name:    "duplicate with other NAR hash",
			infos:   []Info{{Path: p(helloPath), NarHash: zeroHash}, {Path: p(helloPath), NarHash: onesHash}},
			wantErr: helloPath + " is listed twice with different NAR hashes, " + string(zeroHash) + " and " + string(onesHash),
		},
		{
			name:    "duplicate with and without NAR hash",
			infos:   []Info{{Path: p(helloPath)}, {Path: p(helloPath), NarHash: onesHash}},
			wantErr: helloPath + " is listed twice with different NAR hashes, unknown and " + string(onesHash),
		},
		{
			name:    "NAR hash in upper case",
			infos:   []Info{{Path: p(helloPath), NarHash: digest.Digest(strings.ToUpper(string(onesHash)))}},
			wantErr: helloPath + ": NAR hash \"SHA256:1111",
		},
		{
			name:    "NAR hash not sha256",
			infos:   []Info{{Path: p(helloPath), NarHash: digest.Digest("sha512:" + strings.Repeat("0", 128))}},
			wantErr: "is not sha256:<64 lower-case hexadecimal digits>",
		},
		{
			name:    "NAR hash in nix32",
			infos:   []Info{{Path: p(helloPath), NarHash: "sha256:" + digest.Digest(strings.Repeat("0", 52))}},
			wantErr: "is not sha256:<64 lower-case hexadecimal digits>",
		},
		{
			name:    "mixed store dirs",
			infos:   []Info{{Path: p(helloPath)}, {Path: p("/gnu/store/" + hashGlibc + "-glibc")}},
			wantErr: "/gnu/store/" + hashGlibc + "-glibc is in store directory /gnu/store, but the graph is in /nix/store",
		},
		{
			name:    "reference in another store dir",
			infos:   []Info{{Path: p(helloPath), References: []Path{p("/gnu/store/" + hashGlibc + "-glibc")}}},
			wantErr: "is in store directory /gnu/store",
		},
		{
			name:    "hand-made invalid path",
			infos:   []Info{{Path: Path{Dir: "/nix/store", Hash: hashHello, Name: "../../etc"}}},
			wantErr: "invalid store path",
		},
		{
			name:    "hand-made path with slash in hash",
			infos:   []Info{{Path: Path{Dir: "/nix", Hash: "store/" + hashHello, Name: "x"}}},
			wantErr: "invalid store path",
		},
		{
			name:    "zero path",
			infos:   []Info{{}},
			wantErr: "invalid store path",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := NewGraph(tc.infos)
			if err == nil {
				t.Fatalf("NewGraph succeeded with %d paths, want error %q", g.Len(), tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}

// TestNAR gives what Info gives of a path's NAR, and nothing for a path
// that is not in the graph, also one in another store directory.
func TestNAR(t *testing.T) {
	g, err := NewGraph(helloInfos(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range g.Paths() {
		info, _ := g.Info(p)
		size, hash, ok := g.NAR(p)
		if !ok || size != info.NarSize || hash != info.NarHash || size == 0 {
			t.Errorf("NAR(%s) = %d, %s, %v; Info gives %d, %s", p, size, hash, ok, info.NarSize, info.NarHash)
		}
	}
	hello := mustParse(t, helloPath)
	for _, p := range []Path{mustParse(t, "/nix/store/"+hashHello+"-other"), {Dir: "/gnu/store", Hash: hello.Hash, Name: hello.Name}} {
		if size, hash, ok := g.NAR(p); ok || size != 0 || hash != "" {
			t.Errorf("NAR(%s) = %d, %s, %v; want nothing", p, size, hash, ok)
		}
		if _, ok := g.Info(p); ok {
			t.Errorf("Info(%s) found it", p)
		}
	}
}

func TestEmptyGraph(t *testing.T) {
	g, err := NewGraph(nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.Len() != 0 || g.StoreDir() != "" || len(g.Paths()) != 0 {
		t.Errorf("empty graph: Len %d, StoreDir %q", g.Len(), g.StoreDir())
	}
	sub, err := g.Closure()
	if err != nil || sub.Len() != 0 {
		t.Errorf("Closure() of empty graph = %v, %v", sub, err)
	}
}

func TestClosure(t *testing.T) {
	g, err := NewGraph(helloInfos(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		roots []string
		want  []string
	}{
		{[]string{helloPath}, []string{idn2Path, unistrPath, glibcPath, libgccPath, helloPath}},
		{[]string{idn2Path}, []string{idn2Path, unistrPath}},
		{[]string{libgccPath}, []string{libgccPath}},
		{[]string{libgccPath, idn2Path, libgccPath}, []string{idn2Path, unistrPath, libgccPath}},
		{nil, nil},
	}
	for _, tc := range tests {
		var roots []Path
		for _, r := range tc.roots {
			roots = append(roots, mustParse(t, r))
		}
		sub, err := g.Closure(roots...)
		if err != nil {
			t.Errorf("Closure(%v): %v", tc.roots, err)
			continue
		}
		checkInvariants(t, sub)
		if got := pathStrings(sub.Paths()); !slices.Equal(got, tc.want) {
			t.Errorf("Closure(%v) = %v, want %v", tc.roots, got, tc.want)
		}
	}

	// Referrers outside the closure are dropped; the nodes keep their data.
	sub, _ := g.Closure(mustParse(t, glibcPath))
	for _, p := range sub.Paths() {
		got, _ := sub.Info(p)
		want, _ := g.Info(p)
		if got.NarSize != want.NarSize || got.NarHash != want.NarHash || want.NarHash == "" {
			t.Errorf("Info(%s) in the closure = %+v, in the graph %+v", p, got, want)
		}
	}
	if got := sub.Referrers(mustParse(t, glibcPath)); len(got) != 0 {
		t.Errorf("Referrers(glibc) in glibc's closure = %v, want none", got)
	}
	if got := pathStrings(sub.Referrers(mustParse(t, idn2Path))); !slices.Equal(got, []string{glibcPath}) {
		t.Errorf("Referrers(libidn2) in glibc's closure = %v, want glibc", got)
	}

	// The closure of everything is the graph itself, not a copy.
	if all, err := g.Closure(mustParse(t, helloPath)); err != nil || all != g {
		t.Errorf("Closure(hello), all of the graph: %p, %v; want the graph itself, %p", all, err, g)
	}
	if part, err := g.Closure(mustParse(t, idn2Path)); err != nil || part == g {
		t.Errorf("Closure(libidn2), part of the graph: %p, %v; want a graph of its own", part, err)
	}

	absent := mustParse(t, "/nix/store/"+hashHello+"-other")
	if _, err := g.Closure(mustParse(t, helloPath), absent); err == nil || !strings.Contains(err.Error(), absent.String()) {
		t.Errorf("Closure with an absent root: error %v, want one naming %s", err, absent)
	}
}

// checkInvariants verifies what every Graph promises.
func checkInvariants(t testing.TB, g *Graph) {
	t.Helper()
	paths := g.Paths()
	if len(paths) != g.Len() {
		t.Fatalf("Len() = %d, but %d paths", g.Len(), len(paths))
	}
	if !slices.IsSortedFunc(paths, Path.Compare) || len(slices.Compact(slices.Clone(paths))) != len(paths) {
		t.Fatalf("Paths() not sorted and unique: %v", paths)
	}
	referrerCount := 0
	for _, p := range paths {
		if p.Dir != g.StoreDir() {
			t.Fatalf("%s is not in store dir %s", p, g.StoreDir())
		}
		if err := p.check(); err != nil {
			t.Fatalf("invalid path in graph: %v", err)
		}
		info, ok := g.Info(p)
		if !ok || info.Path != p {
			t.Fatalf("Info(%s) = %+v, %v", p, info, ok)
		}
		if !slices.IsSortedFunc(info.References, Path.Compare) || len(slices.Compact(slices.Clone(info.References))) != len(info.References) {
			t.Fatalf("references of %s not sorted and unique: %v", p, info.References)
		}
		for _, ref := range info.References {
			if _, ok := g.Info(ref); !ok {
				t.Fatalf("%s references %s, which is not in the graph", p, ref)
			}
			if ref != p {
				referrerCount++
				if !slices.Contains(g.Referrers(ref), p) {
					t.Fatalf("Referrers(%s) lacks %s", ref, p)
				}
			}
		}
	}
	for _, p := range paths {
		referrerCount -= len(g.Referrers(p))
	}
	if referrerCount != 0 {
		t.Fatalf("referrers and references disagree")
	}
}

func sameGraph(a, b *Graph) bool {
	if !slices.Equal(a.Paths(), b.Paths()) || a.StoreDir() != b.StoreDir() {
		return false
	}
	for _, p := range a.Paths() {
		x, _ := a.Info(p)
		y, _ := b.Info(p)
		if x.NarSize != y.NarSize || x.NarHash != y.NarHash || !slices.Equal(x.References, y.References) || !slices.Equal(a.Referrers(p), b.Referrers(p)) {
			return false
		}
	}
	return true
}

// Two NAR hashes for tests that need distinct ones.
const (
	zeroHash digest.Digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	onesHash digest.Digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
)

func pathStrings(paths []Path) []string {
	var s []string
	for _, p := range paths {
		s = append(s, p.String())
	}
	return s
}
