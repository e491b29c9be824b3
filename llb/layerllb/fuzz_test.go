package layerllb

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzRecordedPlan feeds RecordedPlan the plan label of an image config,
// which anyone who pushes an image writes: whatever it says, a plan read
// from it is one that Image records again as it was, and a label that is
// no plan is an error that names the label.
func FuzzRecordedPlan(f *testing.F) {
	img, err := Image(testPlan(f), ImageOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(img.Config.Labels[PlanLabel])
	for _, s := range []string{
		"", "null", "{}", "{not json", `{"layers":null}`, `{"layers":[{}]}`,
		`{"strategy":"single","layers":[{"key":"k","paths":["/nix/store/0000000000000000000000000000000a-glibc-2.39"],"size":18446744073709551615}]}`,
		`{"LAYERS":[{"Paths":["/gnu/store/0000000000000000000000000000000a-x"]}],"layers":[]}`,
		`{"layers":[{"paths":["/nix/store/0000000000000000000000000000000a-x",null,"/nix/store/short-x"]}]}`,
		`{"layers":[{"paths":[null]}]}`,
		"{\"strategy\":\"\xff\\ud800\"}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, label string) {
		plan, err := RecordedPlan(map[string]string{PlanLabel: label})
		if err != nil {
			if plan != nil || errors.Is(err, ErrNoRecordedPlan) || !strings.HasPrefix(err.Error(), "label "+PlanLabel+": ") {
				t.Fatalf("%q: plan %+v, error %v", label, plan, err)
			}
			return
		}
		img, err := Image(*plan, ImageOptions{})
		if err != nil {
			t.Fatalf("%q read as %+v, which Image cannot record: %v", label, *plan, err)
		}
		again, err := RecordedPlan(img.Config.Labels)
		if err != nil || !reflect.DeepEqual(again, plan) {
			t.Fatalf("%q read as %+v, recorded and read again as %+v (%v)", label, *plan, again, err)
		}
	})
}
