package manifest

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

func TestParseFull(t *testing.T) {
	src := `# syntax=storepack
ARG VERSION=1.0
ARG GREETING
STORE /gnu/store
CLOSURE ./result /gnu/store/00000000000000000000000000000000-extra
CLOSURE --platform=linux/arm/v7 ./result-arm
GRAPH graph-$VERSION.json
LAYERS --max=20 --strategy=per-path --previous=registry.example/app:$VERSION
LINK /bin -> bin
LINK /etc/ssl -> /gnu/store/00000000000000000000000000000000-extra/etc/ssl
DIR --mode=1777 /tmp /var/tmp
ENV PATH=/bin \
    APP_VERSION=${VERSION}
ENV PATH=/bin:/sbin
WORKDIR /srv
WORKDIR data
USER 1000:1000
LABEL org.opencontainers.image.version=$VERSION greeting="${GREETING:-none}"
EXPOSE 8080 53/udp 9000-9001
STOPSIGNAL SIGTERM
CMD ["--help"]
ENTRYPOINT ["/bin/app", "serve"]
CMD ["--port", "8080"]
`
	m, err := Parse([]byte(src), Options{BuildArgs: map[string]string{"GREETING": "hi", "UNDECLARED": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if m.StoreDir != "/gnu/store" {
		t.Errorf("StoreDir = %q", m.StoreDir)
	}
	if got := len(m.Closures); got != 2 {
		t.Fatalf("closures = %d", got)
	}
	if want := []string{"./result", "/gnu/store/00000000000000000000000000000000-extra"}; !reflect.DeepEqual(m.Closures[0].Roots, want) || m.Closures[0].Platform != "" {
		t.Errorf("closure 0 = %+v", m.Closures[0])
	}
	if m.Closures[1].Platform != "linux/arm/v7" || m.Closures[1].Location[0].Start.Line != 6 {
		t.Errorf("closure 1 = %+v", m.Closures[1])
	}
	if m.Graphs[0].File != "graph-1.0.json" {
		t.Errorf("graph = %+v", m.Graphs[0])
	}
	if m.Layers.Max != 20 || m.Layers.Strategy != "per-path" || m.Layers.Previous != "registry.example/app:1.0" {
		t.Errorf("layers = %+v", m.Layers)
	}
	if len(m.Links) != 2 || m.Links[0].Path != "/bin" || m.Links[0].Target != "bin" {
		t.Errorf("links = %+v", m.Links)
	}
	if len(m.Dirs) != 2 || m.Dirs[0].Mode != 0o1777 || m.Dirs[1].Path != "/var/tmp" {
		t.Errorf("dirs = %+v", m.Dirs)
	}
	img := m.Image
	if want := []string{"PATH=/bin:/sbin", "APP_VERSION=1.0"}; !reflect.DeepEqual(img.Env, want) {
		t.Errorf("env = %q", img.Env)
	}
	if img.WorkingDir != "/srv/data" || img.User != "1000:1000" || img.StopSignal != "SIGTERM" {
		t.Errorf("config = %+v", img)
	}
	if want := map[string]string{"org.opencontainers.image.version": "1.0", "greeting": "hi"}; !reflect.DeepEqual(img.Labels, want) {
		t.Errorf("labels = %v", img.Labels)
	}
	if want := map[string]struct{}{"8080/tcp": {}, "53/udp": {}, "9000/tcp": {}, "9001/tcp": {}}; !reflect.DeepEqual(img.ExposedPorts, want) {
		t.Errorf("ports = %v", img.ExposedPorts)
	}
	if !reflect.DeepEqual(img.Entrypoint, []string{"/bin/app", "serve"}) || !reflect.DeepEqual(img.Cmd, []string{"--port", "8080"}) {
		t.Errorf("entrypoint %q cmd %q", img.Entrypoint, img.Cmd)
	}
}

func TestParseDefaults(t *testing.T) {
	m, err := Parse([]byte("CLOSURE ./result\nENTRYPOINT /bin/hello world\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.StoreDir != DefaultStoreDir || m.Layers.Max != DefaultMaxLayers || m.Layers.Strategy != "" {
		t.Errorf("defaults: %+v", m)
	}
	if want := []string{"/bin/sh", "-c", "/bin/hello world"}; !reflect.DeepEqual(m.Image.Entrypoint, want) {
		t.Errorf("shell form = %q", m.Image.Entrypoint)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
		line            int
	}{
		{"unknown instruction", "CLOSURE ./result\nCLOSUR ./x\n", "unknown instruction: CLOSUR", 2},
		{"suggestion", "CLOSURE ./result\nGRAHP x\n", "did you mean graph", 2},
		{"no closure", "STORE /nix/store\n", "no CLOSURE", 0},
		{"empty closure", "CLOSURE\n", "at least one root", 1},
		{"relative store", "STORE nix/store\nCLOSURE ./r\n", "absolute", 1},
		{"store twice", "STORE /nix/store\nSTORE /gnu/store\nCLOSURE ./r\n", "only once", 2},
		{"graph args", "CLOSURE ./r\nGRAPH a b\n", "exactly one", 2},
		{"bad max", "CLOSURE ./r\n\nLAYERS --max=zero\n", "--max=zero", 3},
		{"layers args", "CLOSURE ./r\nLAYERS 5\n", "only flags", 2},
		{"unknown flag", "CLOSURE --plat=linux/amd64 ./r\n", "unknown flag for CLOSURE: --plat", 1},
		{"flag without value", "CLOSURE --platform ./r\n", "needs a value", 1},
		{"link syntax", "CLOSURE ./r\nLINK /bin bin\n", "PATH -> TARGET", 2},
		{"link relative path", "CLOSURE ./r\nLINK bin -> bin\n", "absolute", 2},
		{"dir mode", "CLOSURE ./r\nDIR --mode=999 /tmp\n", "octal", 2},
		{"dir dotdot", "CLOSURE ./r\nDIR /tmp/../etc\n", "clean", 2},
		{"expose", "CLOSURE ./r\nEXPOSE 80/http\n", "protocol", 2},
		{"bad name", "CLOSURE --name=1x ./r\n", "variable name", 1},
		{"name ROOT", "CLOSURE --name=ROOT ./r\n", "variable name", 1},
		{"continuation line", "CLOSURE ./r\nLAYERS \\\n  --max=-1\n", "--max=-1", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), Options{})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			var le *parser.LocationError
			if tc.line == 0 {
				if errors.As(err, &le) {
					t.Errorf("error has a location: %v", le.Locations)
				}
				return
			}
			if !errors.As(err, &le) || le.Locations[0][0].Start.Line != tc.line {
				t.Errorf("error %q not located at line %d", err, tc.line)
			}
		})
	}
}

func TestRootReferences(t *testing.T) {
	src := `CLOSURE --platform=linux/amd64 --name=app ./result-x86_64
CLOSURE --platform=linux/arm/v7 --name=app ./result-armv7l
ENV APP=${app} HOME=/root
LINK /bin -> ${ROOT}/bin
ENTRYPOINT ["${app}/bin/hello", "$HOME", "${HOME}"]
CMD ${ROOT}/share
`
	first, err := Parse([]byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if first.Closures[0].Name != "app" || first.Links[0].Target != "${ROOT}/bin" || first.Image.Entrypoint[0] != "${app}/bin/hello" {
		t.Errorf("without roots, references stay as written: %+v %+v", first.Links, first.Image)
	}
	roots := map[string]string{"ROOT": "/nix/store/rrrr-hello", "app": "/nix/store/aaaa-hello"}
	m, err := Parse([]byte(src), Options{Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"APP=/nix/store/aaaa-hello", "HOME=/root"}; !reflect.DeepEqual(m.Image.Env, want) {
		t.Errorf("env = %q", m.Image.Env)
	}
	if m.Links[0].Target != "/nix/store/rrrr-hello/bin" {
		t.Errorf("link = %+v", m.Links[0])
	}
	// Only root references are expanded in ENTRYPOINT and CMD.
	if want := []string{"/nix/store/aaaa-hello/bin/hello", "$HOME", "${HOME}"}; !reflect.DeepEqual(m.Image.Entrypoint, want) {
		t.Errorf("entrypoint = %q", m.Image.Entrypoint)
	}
	if want := []string{"/bin/sh", "-c", "/nix/store/rrrr-hello/share"}; !reflect.DeepEqual(m.Image.Cmd, want) {
		t.Errorf("cmd = %q", m.Image.Cmd)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("# syntax=storepack\nCLOSURE ./result\nGRAPH g\nLINK /bin -> bin\nENTRYPOINT [\"/bin/hello\"]\n"))
	f.Add([]byte("ARG A=1\nSTORE /gnu/store\nCLOSURE --platform=linux/amd64 ${A}\nLAYERS --max=3 --strategy=single\nDIR --mode=1777 /tmp\nENV A=$A B=\"x y\"\nEXPOSE 1-3/udp\n"))
	f.Add([]byte("CLOSURE \\\n ./r\n# comment\nLABEL a=b\nCMD x\nUSER u\nWORKDIR w\nSTOPSIGNAL 9\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		m, err := Parse(src, Options{BuildArgs: map[string]string{"A": "2"}, Roots: map[string]string{"ROOT": "/nix/store/r", "app": "/nix/store/a"}})
		if err != nil {
			return
		}
		if len(m.Closures) == 0 || m.Layers.Max < 1 || m.StoreDir == "" || m.StoreDir[0] != '/' {
			t.Fatalf("invalid manifest accepted: %+v", m)
		}
		for _, c := range m.Closures {
			if len(c.Roots) == 0 {
				t.Fatalf("closure without roots: %+v", c)
			}
		}
		for _, l := range m.Links {
			if l.Path[0] != '/' || l.Target == "" {
				t.Fatalf("bad link accepted: %+v", l)
			}
		}
	})
}

func TestStoreLayerBudget(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want int // 0: an error
	}{
		{"CLOSURE ./r\n", DefaultMaxLayers},
		{"CLOSURE ./r\nLAYERS --max=2\nLINK /bin -> bin\n", 1},
		{"CLOSURE ./r\nLAYERS --max=2\n", 2},
		{"CLOSURE ./r\nLAYERS --max=1\nDIR /tmp\n", 0},
	} {
		m, err := Parse([]byte(tc.src), Options{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.StoreLayerBudget()
		if tc.want == 0 {
			var le *parser.LocationError
			if err == nil || !errors.As(err, &le) || le.Locations[0][0].Start.Line != 2 {
				t.Errorf("%q: want an error at LAYERS, have %v", tc.src, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %d, %v; want %d", tc.src, got, err, tc.want)
		}
	}
}
