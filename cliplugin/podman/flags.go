package podman

import (
	"slices"

	"github.com/spf13/pflag"
)

// FlagLog records the options given to a flag set as they were given (a
// name and a value per occurrence, in order), so that docker run's options
// reach podman run as the user wrote them: re-writing them from docker's
// parsed values would lose some (--network prints as "").
type FlagLog struct {
	sets []flagSet
}

type flagSet struct{ name, value string }

type recorder struct {
	pflag.Value
	name string
	log  *FlagLog
}

func (r *recorder) Set(v string) error {
	if err := r.Value.Set(v); err != nil {
		return err
	}
	r.log.sets = append(r.log.sets, flagSet{r.name, v})
	return nil
}

// Record starts recording the options given to fs from now on.
func Record(fs *pflag.FlagSet) *FlagLog {
	log := &FlagLog{}
	fs.VisitAll(func(f *pflag.Flag) {
		f.Value = &recorder{Value: f.Value, name: f.Name, log: log}
	})
	return log
}

// Args are the recorded options as podman arguments ("--name=value"),
// except those of the flags skip names.
func (l *FlagLog) Args(skip ...string) []string {
	var args []string
	for _, s := range l.sets {
		if !slices.Contains(skip, s.name) {
			args = append(args, "--"+s.name+"="+s.value)
		}
	}
	return args
}
