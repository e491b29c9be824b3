package manifest

import (
	"errors"
	"fmt"
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
	m := expand(t, src, Options{BuildArgs: map[string]string{"GREETING": "hi", "UNDECLARED": "x"}})
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

// expand parses src and expands it with opt.
func expand(t *testing.T, src string, opt Options) *Spec {
	t.Helper()
	m, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := m.Expand(opt)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func TestParseDefaults(t *testing.T) {
	m := expand(t, "CLOSURE ./result\nENTRYPOINT /bin/hello world\n", Options{})
	if m.StoreDir != DefaultStoreDir || m.Layers.Max != DefaultMaxLayers || m.Layers.Strategy != "" {
		t.Errorf("defaults: %+v", m)
	}
	if want := []string{"/bin/sh", "-c", "/bin/hello world"}; !reflect.DeepEqual(m.Image.Entrypoint, want) {
		t.Errorf("shell form = %q", m.Image.Entrypoint)
	}
}

func TestErrors(t *testing.T) {
	const parse, expand = true, false
	for _, tc := range []struct {
		name, src string
		atParse   bool // else Parse accepts src and Expand refuses it
		want      string
		line      int // 0: no location
		buildArgs map[string]string
	}{
		{"unknown instruction", "CLOSURE ./result\nCLOSUR ./x\n", parse, "unknown instruction: CLOSUR", 2, nil},
		{"suggestion", "CLOSURE ./result\nGRAHP x\n", parse, "did you mean graph", 2, nil},
		{"no closure", "STORE /nix/store\n", parse, "no CLOSURE", 0, nil},
		{"store twice", "STORE /nix/store\nSTORE /gnu/store\nCLOSURE ./r\n", parse, "only once", 2, nil},
		{"layers twice", "CLOSURE ./r\nLAYERS --max=$M\nLAYERS\n", parse, "LAYERS may appear only once", 3, nil},
		{"unknown flag", "CLOSURE --plat=linux/amd64 ./r\n", parse, "unknown flag for CLOSURE: --plat", 1, nil},
		{"unknown flag before a variable", "CLOSURE ./r\nGRAPH --plat=x ${ROOT}/g\n", parse, "unknown flag for GRAPH: --plat", 2, nil},
		{"flag without value", "CLOSURE --platform ./r\n", parse, "needs a value", 1, nil},
		{"flag twice", "CLOSURE --name=a --name=b ./r\n", parse, "flag --name given twice", 1, nil},
		{"dockerfile instruction", "CLOSURE ./r\n\nENV\n", parse, "ENV", 3, nil},
		{"empty closure", "CLOSURE\n", expand, "at least one root", 1, nil},
		{"relative store", "STORE nix/store\nCLOSURE ./r\n", expand, "absolute", 1, nil},
		{"graph args", "CLOSURE ./r\nGRAPH a b\n", expand, "exactly one", 2, nil},
		{"bad max", "CLOSURE ./r\n\nLAYERS --max=zero\n", expand, "--max=zero", 3, nil},
		{"bad max argument", "ARG MAX\nCLOSURE ./r\nLAYERS --max=$MAX\n", expand, "LAYERS --max=abc: want a whole number", 3, map[string]string{"MAX": "abc"}},
		{"layers args", "CLOSURE ./r\nLAYERS 5\n", expand, "only flags", 2, nil},
		{"unknown flag from a variable", "ARG F=plat\nCLOSURE --${F}=x ./r\n", expand, "unknown flag for CLOSURE: --plat", 2, nil},
		{"flag split by a variable", "ARG P=\"a b\"\nCLOSURE --platform=$P --name=app ./r\n", expand, "flag b needs a value", 2, nil},
		{"link syntax", "CLOSURE ./r\nLINK /bin bin\n", expand, "PATH -> TARGET", 2, nil},
		{"link relative path", "CLOSURE ./r\nLINK bin -> bin\n", expand, "absolute", 2, nil},
		{"dir mode", "CLOSURE ./r\nDIR --mode=999 /tmp\n", expand, "octal", 2, nil},
		{"dir dotdot", "CLOSURE ./r\nDIR /tmp/../etc\n", expand, "clean", 2, nil},
		{"expose", "CLOSURE ./r\nEXPOSE 80/http\n", expand, "protocol", 2, nil},
		{"bad name", "CLOSURE --name=1x ./r\n", expand, "variable name", 1, nil},
		{"name ROOT", "CLOSURE --name=ROOT ./r\n", expand, "variable name", 1, nil},
		{"continuation line", "CLOSURE ./r\nLAYERS \\\n  --max=-1\n", expand, "--max=-1", 2, nil},
		{"bad substitution", "CLOSURE ./r\nUSER ${:x}\n", expand, "bad substitution", 2, nil},
		{"from args", "FROM busybox alpine\nCLOSURE ./r\n", expand, "exactly one argument", 1, nil},
		{"from bad reference", "FROM Busy:Box\nCLOSURE ./r\n", expand, "not an image reference", 1, nil},
		{"from bad platform", "FROM --platform=linux/amd64/v9/x busybox\nCLOSURE ./r\n", expand, "FROM --platform=", 1, nil},
		{"from twice", "FROM busybox\nCLOSURE ./r\nFROM alpine\n", expand, "a second base image for every platform (the first is at line 1)", 3, nil},
		{"from twice for a platform", "FROM --platform=linux/arm/v7 busybox\nCLOSURE ./r\nFROM --platform=linux/arm/v7 alpine\n", expand, "second base image for linux/arm/v7", 3, nil},
		{"account twice", "CLOSURE ./r\nACCOUNT app\nACCOUNT web\n", parse, "ACCOUNT may appear only once", 3, nil},
		{"account no name", "CLOSURE ./r\nACCOUNT --uid=7\n", expand, "exactly one argument", 2, nil},
		{"account root", "CLOSURE ./r\nACCOUNT root\n", expand, "other than root and nobody", 2, nil},
		{"account bad name", "CLOSURE ./r\nACCOUNT App\n", expand, "want a user name", 2, nil},
		{"account uid 0", "CLOSURE ./r\nACCOUNT --uid=0 app\n", expand, "ACCOUNT --uid=0: want a number from 1", 2, nil},
		{"account gid nobody", "CLOSURE ./r\nACCOUNT --gid=65534 app\n", expand, "ACCOUNT --gid=65534", 2, nil},
		{"account relative home", "CLOSURE ./r\nACCOUNT --home=home/app app\n", expand, "ACCOUNT --home", 2, nil},
		{"account shell", "CLOSURE ./r\nACCOUNT --shell=sh app\n", expand, "ACCOUNT --shell=sh: want an absolute path", 2, nil},
		{"dir owner", "CLOSURE ./r\nDIR --owner=app /data\n", expand, "DIR --owner=app: want UID:GID", 2, nil},
		{"dir owner sticky", "CLOSURE ./r\nDIR --owner=1:1 --mode=1777 /data\n", expand, "no setuid, setgid or sticky bit", 2, nil},
		{"store db value", "STORE --with-db=maybe /nix/store\nCLOSURE ./r\n", expand, "STORE --with-db=maybe: want true or false", 1, nil},
		{"bare flag without value", "STORE --platform /nix/store\nCLOSURE ./r\n", parse, "flag --platform needs a value", 1, nil},
		{"copy one argument", "CLOSURE ./r\nCOPY app.conf\n", expand, "COPY takes one or more sources", 2, nil},
		{"copy outside the context", "CLOSURE ./r\nCOPY ../secret /etc/\n", expand, "COPY ../secret: a source outside the build context", 2, nil},
		{"copy several into a file", "CLOSURE ./r\nCOPY a b /etc/x\n", expand, "must be a directory, ending with /", 2, nil},
		{"copy relative destination", "CLOSURE ./r\nCOPY a etc/\n", expand, "want an absolute, clean path", 2, nil},
		{"copy chmod", "CLOSURE ./r\nCOPY --chmod=rw a /etc/\n", expand, "COPY --chmod=rw: want an octal mode", 2, nil},
		{"copy chown", "CLOSURE ./r\nCOPY --chown=app:Big a /etc/\n", expand, "COPY --chown=app:Big: want USER[:GROUP]", 2, nil},
		{"copy chown colon", "CLOSURE ./r\nCOPY --chown=app: a /etc/\n", expand, "COPY --chown=app:: want USER[:GROUP]", 2, nil},
		{"run flag", "CLOSURE ./r\nRUN --network=none true\n", parse, "unknown flag for RUN: --network", 2, nil},
		{"run empty", "CLOSURE ./r\nRUN\n", parse, "RUN", 2, nil},
		{"run shell with exec form", "CLOSURE ./r\nRUN --shell=/bin/bash [\"true\"]\n", expand, "RUN --shell applies to the shell form", 2, nil},
		{"run relative shell", "CLOSURE ./r\nRUN --shell=bash true\n", expand, "RUN --shell=bash: want an absolute path", 2, nil},
		{"from unknown flag", "FROM --arch=x busybox\nCLOSURE ./r\n", parse, "unknown flag for FROM: --arch", 1, nil},
		{"required variable", "CLOSURE ./r\nWORKDIR ${DIR:?no DIR}\n", expand, "no DIR", 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse([]byte(tc.src))
			if tc.atParse != (err != nil) {
				t.Fatalf("Parse: %v", err)
			}
			if err == nil {
				if _, err = m.Expand(Options{BuildArgs: tc.buildArgs}); err == nil {
					t.Fatal("Expand: no error")
				}
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
			if got := WithFileLine("app.storepack", err).Error(); !strings.HasPrefix(got, fmt.Sprintf("app.storepack:%d: ", tc.line)) {
				t.Errorf("WithFileLine: %q", got)
			}
		})
	}
}

func TestFlagsFromVariables(t *testing.T) {
	m := expand(t, "ARG F=platform\nARG M=7\nCLOSURE --${F}=linux/arm64 ./r\nLAYERS --max=$M\n", Options{})
	if m.Closures[0].Platform != "linux/arm64" || m.Layers.Max != 7 {
		t.Errorf("closure %+v, layers %+v", m.Closures[0], m.Layers)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("# syntax=storepack\nCLOSURE ./result\nGRAPH g\nLINK /bin -> bin\nENTRYPOINT [\"/bin/hello\"]\n"))
	f.Add([]byte("FROM --platform=linux/arm/v7 busybox:${T:-1}\nFROM busybox\nCLOSURE ./r\n"))
	f.Add([]byte("STORE --with-db /gnu/store\nCLOSURE ./r\n"))
	f.Add([]byte("CLOSURE ./r\nCOPY --chmod=0640 --chown=1:2 a b/ /etc/\n"))
	f.Add([]byte("CLOSURE ./r\nCOPY --chown=app a /etc/\nCOPY --chown=app:staff b /srv/\n"))
	f.Add([]byte("CLOSURE ./r\nRUN --shell=${ROOT}/bin/sh echo $X\nRUN [\"a\", \"b\"]\n"))
	f.Add([]byte("CLOSURE ./r\nACCOUNT --uid=${U:-1000} --gid=100 --home=/srv/app app\nDIR --owner=1000:100 /data\n"))
	f.Add([]byte("ARG A=1\nSTORE /gnu/store\nCLOSURE --platform=linux/amd64 ${A}\nLAYERS --max=3 --strategy=single\nDIR --mode=1777 /tmp\nENV A=$A B=\"x y\"\nEXPOSE 1-3/udp\n"))
	f.Add([]byte("CLOSURE \\\n ./r\n# comment\nLABEL a=b\nCMD x\nUSER u\nWORKDIR w\nSTOPSIGNAL 9\n"))
	f.Add([]byte("ARG F=name\nCLOSURE --$F=app --platform=${P:-linux/arm64} ./r\nLINK /app -> ${app}\nENTRYPOINT [\"${ROOT}/bin/x\"]\n"))
	f.Add([]byte(rootsSrc))
	f.Add([]byte("ARG M=meta.json\nCLOSURE ./r\nSBOM --metadata=${M}\n"))
	roots := Options{BuildArgs: map[string]string{"A": "2"}, Roots: map[string]string{"ROOT": "/nix/store/r", "app": "/nix/store/a"}}
	f.Fuzz(func(t *testing.T, src []byte) {
		m, err := Parse(src)
		if err != nil {
			return
		}
		spec, err := m.Expand(roots)
		if _, errNoRoots := m.Expand(Options{BuildArgs: roots.BuildArgs}); err != nil || errNoRoots != nil {
			return
		}
		// Expand reads the Manifest only: the same options give the same Spec.
		if again, err := m.Expand(roots); err != nil || !reflect.DeepEqual(again, spec) {
			t.Fatalf("Expand again: %v\n%+v\nwant\n%+v", err, again, spec)
		}
		if len(spec.Closures) == 0 || spec.Layers.Max < 1 || spec.StoreDir == "" || spec.StoreDir[0] != '/' {
			t.Fatalf("invalid manifest accepted: %+v", spec)
		}
		for _, c := range spec.Closures {
			if len(c.Roots) == 0 {
				t.Fatalf("closure without roots: %+v", c)
			}
		}
		if s := spec.SBOM; s.Location != nil && (s.Metadata == "" || s.Metadata[0] == '/') {
			t.Fatalf("bad SBOM metadata file accepted: %+v", s)
		}
		for _, l := range spec.Links {
			if l.Path[0] != '/' || l.Target == "" {
				t.Fatalf("bad link accepted: %+v", l)
			}
		}
	})
}
