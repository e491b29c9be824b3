package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPairedRatio(t *testing.T) {
	runs := func(s ...float64) []measurement {
		ms := make([]measurement, len(s))
		for i, v := range s {
			ms[i].seconds = v
		}
		return ms
	}
	for _, tc := range []struct {
		name string
		ms   []measurement
		ref  []float64
		want string
	}{
		// Run 2 is slower for both: paired, the ratio holds still.
		{"paired", runs(10, 20), []float64{5, 10}, "2.00"},
		{"range", runs(10, 30, 12), []float64{10, 10, 10}, "1.20 (1.00–3.00)"},
		{"even median", runs(1, 2, 3, 4), []float64{1, 1, 1, 1}, "2.50 (1.00–4.00)"},
		{"no reference", runs(1, 2), nil, "–"},
		{"runs differ", runs(1, 2), []float64{1}, "–"},
		{"zero reference", runs(1), []float64{0}, "–"},
	} {
		if got := pairedRatio(tc.ms, tc.ref); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestUploads(t *testing.T) {
	// Lines of the test bed's registry (distribution v3), cut short: an
	// upload completed, a manifest put, a mount (a POST), a failed PUT.
	log := `time="x" level=info msg="response completed" http.request.method=PUT http.request.uri="/v2/r/blobs/uploads/u1?_state=s%3D&digest=sha256%3Aaa11" http.response.status=201 vars.name=r
time="x" level=info msg="response completed" http.request.method=PUT http.request.uri=/v2/r/manifests/latest http.response.status=201
time="x" level=info msg="response completed" http.request.method=POST http.request.uri="/v2/r/blobs/uploads/?from=q&mount=sha256%3Abb22" http.response.status=201
time="x" level=error msg="response completed with error" http.request.method=PUT http.request.uri="/v2/r/blobs/uploads/u2?digest=sha256%3Acc33" http.response.status=400
time="x" level=info msg="response completed" http.request.method=PUT http.request.uri="/v2/r/blobs/uploads/u3?digest=sha256%3Aaa11&_state=t" http.response.status=201
`
	digests, err := completedUploads(log)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sha256:aa11", "sha256:aa11"}; !slices.Equal(digests, want) {
		t.Fatalf("uploads %q, want %q", digests, want)
	}
	root := t.TempDir()
	dir := filepath.Join(root, "docker", "registry", "v2", "blobs", "sha256", "aa", "aa11")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data"), make([]byte, 300), 0o644); err != nil {
		t.Fatal(err)
	}
	// Each upload counts: the registry received the blob twice.
	if n, err := uploadedBytes(root, digests); err != nil || n != 600 {
		t.Errorf("uploaded %d bytes (%v), want 600", n, err)
	}
	if _, err := uploadedBytes(root, []string{"sha256:dd44"}); err == nil {
		t.Error("a blob the storage lacks: no error")
	}
	if got := bytesText(uploaded(measurement{uploaded: 5})); got != "–" {
		t.Errorf("a build that pushes nothing shows %q uploaded", got)
	}
	if got := bytesText(uploaded(measurement{pushed: true})); got != "0 KiB" {
		t.Errorf("a push that uploads nothing shows %q", got)
	}
}

// The rows of each kind of group, and what their ratios pair with.
func TestGroupRows(t *testing.T) {
	type row struct {
		release int
		kind    string
		ref     int    // the release of × nixpkgs' and × Dockerfile's references
		coldOf  string // × cold's reference case
	}
	rows := func(g group) []row {
		var r []row
		for _, release := range g.releases() {
			kind, ref := g.kind(release)
			r = append(r, row{release, kind, ref, g.coldReference(release)})
		}
		return r
	}
	for _, tc := range []struct {
		g    group
		want []row
	}{
		{group{id: "floor"}, []row{{0, "", 0, ""}}},
		{group{id: "nixpkgs", warm: true}, []row{{0, "cold", 0, ""}, {1, "warm", 1, "nixpkgs"}}},
		{group{id: "plugin-fresh-runner", fresh: true, coldOf: "plugin-push"}, []row{{1, "fresh", 0, "plugin-push"}}},
		{group{id: "plugin-load", coldOf: "plugin-engine"}, []row{{0, "cold", 0, "plugin-engine"}}},
	} {
		if got := rows(tc.g); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.g.id, got, tc.want)
		}
	}
}

func TestDigestPass(t *testing.T) {
	progress := "#12 [storepack] digests of 99 store layers for linux/amd64\n" +
		"#12 0.412 1 written on the host to learn them, 0 from the host's cache of layer digests, 98 from the previous image\n" +
		"#12 DONE 0.4s\n"
	if got := digestPass(progress); got != "1/0/98" {
		t.Errorf("digestPass: %q", got)
	}
	arm := "#13 [storepack] digests of 97 store layers for linux/arm/v7\n" +
		"#13 0.390 97 written on the host to learn them, 0 from the host's cache of layer digests, 0 from the previous image\n"
	if got := digestPass(progress + arm); got != "98/0/98" {
		t.Errorf("digestPass of two platforms: %q, want their sums", got)
	}
	if got := digestPass("#5 transferring store-layer-1: 2.05MB 0.1s done\n"); got != "" {
		t.Errorf("digestPass of a build that copies its layers: %q", got)
	}
	runs := func(d ...string) []measurement {
		ms := make([]measurement, len(d))
		for i, v := range d {
			ms[i].digests = v
		}
		return ms
	}
	get := func(m measurement) string { return m.digests }
	for _, tc := range []struct {
		ms   []measurement
		want string
	}{
		{runs("99/0/0", "99/0/0"), "99/0/0"},
		{runs("99/0/0", "98/1/0", "99/0/0"), "99/0/0, 98/1/0, 99/0/0"},
		{runs("", ""), "–"},
		{runs("1/0/98", ""), "1/0/98, –"},
	} {
		if got := each(tc.ms, get); got != tc.want {
			t.Errorf("each %+v: %q, want %q", tc.ms, got, tc.want)
		}
	}
}

func TestReadyAfter(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) string {
		return start.Add(time.Duration(s * float64(time.Second))).Format(time.RFC3339Nano)
	}
	// buildx's own lines, a step before the export, the export seen twice
	// (started, then completed) and a later export step: the first start counts.
	progress := strings.Join([]string{
		`#0 building with "bench" instance using remote driver`,
		`{"vertexes":[{"digest":"sha256:01","name":"[storepack] plan","started":"` + at(0.5) + `"}]}`,
		`{"vertexes":[{"digest":"sha256:02","name":"exporting to oci image format","started":"` + at(2.25) + `"}]}`,
		`{"vertexes":[{"digest":"sha256:02","name":"exporting to oci image format","started":"` + at(2.25) + `","completed":"` + at(9) + `"}]}`,
		`{"vertexes":[{"digest":"sha256:03","name":"exporting layers","started":"` + at(3) + `"}]}`,
	}, "\n")
	if got, err := readyAfter(progress, start); err != nil || got.ready != 2.25 || got.digests != -1 || got.steps != 1.75 {
		t.Errorf("readyAfter: %+v, %v; want ready 2.25, no digest pass, a step of 1.75", got, err)
	}
	// The plugin's digest passes (two platforms) before its write: planning
	// and conversion end where the first starts.
	host := strings.Join([]string{
		`{"vertexes":[{"digest":"sha256:05","name":"[storepack] digests of 100 store layers for linux/amd64","started":"` + at(1.5) + `"}]}`,
		`{"vertexes":[{"digest":"sha256:06","name":"[storepack] digests of 100 store layers for linux/arm64","started":"` + at(1.75) + `"}]}`,
		`{"vertexes":[{"digest":"sha256:05","name":"[storepack] digests of 100 store layers for linux/amd64","started":"` + at(1.5) + `","completed":"` + at(4) + `"}]}`,
		`{"vertexes":[{"digest":"sha256:06","name":"[storepack] digests of 100 store layers for linux/arm64","started":"` + at(1.75) + `","completed":"` + at(5) + `"}]}`,
		`{"vertexes":[{"digest":"sha256:04","name":"[storepack] write the image on the host to oci archive - (no builder needed)","started":"` + at(5.5) + `"}]}`,
	}, "\n")
	if got, err := readyAfter(host, start); err != nil || got.ready != 1.5 || got.digests != 5.75 {
		t.Errorf("readyAfter of a host write: %+v, %v; want ready 1.5, digest passes of 5.75", got, err)
	}
	// The frontend's steps before the export: two transfers that overlap
	// (1–3, 2–4), a gap of the frontend's own (4–6), a check (6–7), and a
	// step still running when the export starts (7.5–): 4.5 s of steps.
	frontend := strings.Join([]string{
		`{"vertexes":[{"digest":"sha256:11","name":"transfer layer 1","started":"` + at(1) + `","completed":"` + at(3) + `"}]}`,
		`{"vertexes":[{"digest":"sha256:12","name":"transfer layer 2","started":"` + at(2) + `","completed":"` + at(4) + `"}]}`,
		`{"vertexes":[{"digest":"sha256:13","name":"check 2 store paths","started":"` + at(6) + `","completed":"` + at(7) + `"}]}`,
		`{"vertexes":[{"digest":"sha256:14","name":"layer 2/2","started":"` + at(7.5) + `"}]}`,
		`{"vertexes":[{"digest":"sha256:15","name":"exporting to oci image format","started":"` + at(8) + `","completed":"` + at(9) + `"}]}`,
	}, "\n")
	if got, err := readyAfter(frontend, start); err != nil || got.ready != 8 || got.steps != 4.5 {
		t.Errorf("readyAfter of the frontend: %+v, %v; want ready 8, steps of 4.5", got, err)
	}
	if _, err := readyAfter(`{"vertexes":[{"digest":"sha256:01","name":"[storepack] plan","started":"`+at(1)+`"}]}`, start); err == nil {
		t.Error("readyAfter without an export step: no error")
	}
	if _, err := readyAfter(`{"vertexes":[{"digest":"sha256:05","name":"[storepack] digests of 1 store layers for linux/amd64","started":"`+at(1)+`"}]}`, start); err == nil {
		t.Error("readyAfter of a digest pass that never completed: no error")
	}
}

// TestProcStat: /proc/PID/stat's fields are read past the command's name.
func TestProcStat(t *testing.T) {
	if got := parentPID(os.Getpid()); got != os.Getppid() {
		t.Errorf("parentPID: %d, want %d", got, os.Getppid())
	}
	before, ok := cpuTicks(os.Getpid())
	if !ok {
		t.Fatal("cpuTicks: no CPU time read")
	}
	// Reading /proc costs CPU: within a million reads the kernel counts a
	// tick more (a tick is 10 ms).
	after := before
	for i := 0; i < 1e6 && after == before; i++ {
		after, _ = cpuTicks(os.Getpid())
	}
	if after <= before {
		t.Errorf("cpuTicks: %d after spinning, %d before", after, before)
	}
}
