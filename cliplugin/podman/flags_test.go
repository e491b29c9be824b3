package podman

import (
	"slices"
	"testing"

	"github.com/spf13/pflag"
)

func TestFlagLog(t *testing.T) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetInterspersed(false) // as run has it: what follows the image is its command
	fs.StringArrayP("env", "e", nil, "")
	fs.StringSliceP("publish", "p", nil, "")
	fs.BoolP("interactive", "i", false, "")
	fs.String("runtime", "", "")
	fs.String("network", "", "")
	log := Record(fs)
	if err := fs.Parse([]string{"-e", "A=1,2", "-p", "80:80,81:81", "-i", "--runtime=podman", "--network", "host", "-e", "B=", "image", "-e", "x"}); err != nil {
		t.Fatal(err)
	}
	if err := fs.Set("network", "none"); err != nil {
		t.Fatal(err)
	}
	want := []string{"--env=A=1,2", "--publish=80:80,81:81", "--interactive=true", "--network=host", "--env=B=", "--network=none"}
	if got := log.Args("runtime"); !slices.Equal(got, want) {
		t.Errorf("Args = %q, want %q", got, want)
	}
	if got, _ := fs.GetStringArray("env"); !slices.Equal(got, []string{"A=1,2", "B="}) {
		t.Errorf("the flag set's own value is %q", got)
	}
	// A value the flag refuses is not recorded.
	fs2 := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs2.Int("cpus", 0, "")
	log2 := Record(fs2)
	if err := fs2.Parse([]string{"--cpus", "x"}); err == nil {
		t.Fatal("--cpus x parsed")
	}
	if got := log2.Args(); len(got) != 0 {
		t.Errorf("a refused value was recorded: %q", got)
	}
}
