package layering

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzStorepackPrevious feeds storepack previous plans decoded from
// arbitrary label text, as an image's config may carry: whatever the label
// says, a plan within budget comes out (NewPlan checks it, and an error is a
// bug), the same each time.
func FuzzStorepackPrevious(f *testing.F) {
	g := helloClosure(f)
	for _, maxLayers := range []int{1, 3} {
		plan, err := NewPlan(g, Options{Strategy: "storepack", MaxLayers: maxLayers})
		if err != nil {
			f.Fatal(err)
		}
		label, err := json.Marshal(plan)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(label, uint8(maxLayers))
	}
	paths := g.Paths()
	f.Add([]byte(`{"layers":[{"paths":["`+paths[0].String()+`","`+paths[0].String()+`"]},{"paths":[]},{"paths":["`+paths[1].String()+`"]}]}`), uint8(2))
	f.Add([]byte(`{"layers":[{"paths":["/nix/store/00000000000000000000000000000000-stranger"]}]}`), uint8(4))
	f.Add([]byte(`null`), uint8(0))
	f.Fuzz(func(t *testing.T, label []byte, budget uint8) {
		var previous Plan
		if json.Unmarshal(label, &previous) != nil {
			return // the frontend and the plugin refuse such a label
		}
		opt := Options{Strategy: "storepack", MaxLayers: 1 + int(budget%8), Previous: &previous}
		plan, err := NewPlan(g, opt)
		if err != nil {
			t.Fatalf("budget %d, previous %s: %v", opt.MaxLayers, label, err)
		}
		again, err := NewPlan(g, opt)
		if err != nil || !reflect.DeepEqual(plan, again) {
			t.Fatalf("budget %d, previous %s: %s, then %s (%v)", opt.MaxLayers, label, summary(plan), summary(again), err)
		}
	})
}
