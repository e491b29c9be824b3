package cliplugin

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// sameConcept are flags that name one concept under two names, and why.
var sameConcept = map[string]string{
	// docker run's own --label labels the container.
	"build-label": "label",
}

// TestFlagsOneWay walks every command that builds or plans and fails when
// a flag has two help texts, two defaults or two types across them, or
// when one help text (one concept) has two names.
func TestFlagsOneWay(t *testing.T) {
	cli, _, _ := newTestCLI(t, "unix:///nonexistent/docker.sock", &fakeAPIClient{})
	root := NewRootCommand(cli)
	dockerRun := dockerRunCommand(cli).Flags()
	byName := map[string]*pflag.Flag{}
	where := map[string]string{}
	byUsage := map[string]string{}
	for _, c := range root.Commands() {
		if !slices.Contains([]string{"build", "run", "plan", "graph"}, c.Name()) {
			continue
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if c.Name() == "run" && dockerRun.Lookup(f.Name) != nil {
				return // docker run's own, with docker's help
			}
			if have, ok := byName[f.Name]; ok {
				if have.Usage != f.Usage || have.DefValue != f.DefValue || have.Value.Type() != f.Value.Type() {
					t.Errorf("--%s of %s and of %s differ: %q (%s, default %q) against %q (%s, default %q)",
						f.Name, where[f.Name], c.Name(), have.Usage, have.Value.Type(), have.DefValue, f.Usage, f.Value.Type(), f.DefValue)
				}
				return
			}
			byName[f.Name], where[f.Name] = f, c.Name()
			name := f.Name
			if same, ok := sameConcept[name]; ok {
				name = same
			}
			if other, ok := byUsage[f.Usage]; ok && other != name {
				t.Errorf("--%s and --%s have the same help (one concept, two names): %q", other, name, f.Usage)
			}
			byUsage[f.Usage] = name
		})
	}
	for _, name := range []string{"max-layers", "store-root", "strategy", "build-arg", "from", "store-dir", "previous", "platform", "progress"} {
		if byName[name] == nil {
			t.Errorf("no command has --%s", name)
		}
	}
	// The old spellings are aliases, hidden from help.
	plan := root.Commands()[slices.IndexFunc(root.Commands(), func(c *cobra.Command) bool { return c.Name() == "plan" })]
	if err := plan.Flags().Parse([]string{"--max", "7"}); err != nil {
		t.Fatal(err)
	}
	if f := plan.Flags().Lookup("max-layers"); f.Value.String() != "7" || plan.Flags().Lookup("max") != f {
		t.Errorf("--max 7 set --max-layers to %s", f.Value)
	}
}

func TestRuntimeOptionNamed(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no podman
	for _, tc := range []struct {
		flag, env, wantErr string
	}{
		{flag: "docker", env: "podman"},
		{env: "docker"},
		{flag: "lxc", wantErr: "--runtime=lxc: want docker or podman"},
		{env: "lxc", wantErr: "STOREPACK_RUNTIME=lxc: want docker or podman"},
		{flag: "podman", wantErr: "podman is not on PATH"},
		{env: "podman", wantErr: "podman is not on PATH"},
	} {
		t.Setenv("STOREPACK_RUNTIME", tc.env)
		// A named runtime asks no engine: no docker CLI is needed.
		pod, err := runtimeOption{name: tc.flag}.podman(t.Context(), nil)
		switch {
		case tc.wantErr == "" && (err != nil || pod != nil):
			t.Errorf("--runtime=%q STOREPACK_RUNTIME=%q: %v, %v; want the docker engine", tc.flag, tc.env, pod, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("--runtime=%q STOREPACK_RUNTIME=%q: error %v, want %q", tc.flag, tc.env, err, tc.wantErr)
		}
	}
}
