package layerllb

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestRecordedPlan reads back the plan that Image records, and tells a
// config without one from one with a broken one.
func TestRecordedPlan(t *testing.T) {
	plan := testPlan(t)
	img, err := Image(plan, ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := RecordedPlan(img.Config.Labels)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, plan) {
		t.Errorf("recorded %+v, read back %+v", plan, *got)
	}

	for _, labels := range []map[string]string{nil, {"other": "label"}} {
		if _, err := RecordedPlan(labels); !errors.Is(err, ErrNoRecordedPlan) {
			t.Errorf("%v: %v, want ErrNoRecordedPlan", labels, err)
		}
	}
	if want := "records no layer plan (label dev.storepack.plan): was it built by storepack?"; ErrNoRecordedPlan.Error() != want {
		t.Errorf("ErrNoRecordedPlan says %q, want %q", ErrNoRecordedPlan, want)
	}

	_, err = RecordedPlan(map[string]string{PlanLabel: "{not json"})
	var syntax *json.SyntaxError
	if !errors.As(err, &syntax) || !strings.HasPrefix(err.Error(), "label dev.storepack.plan: ") || errors.Is(err, ErrNoRecordedPlan) {
		t.Errorf("broken label: %v", err)
	}
}
