package main

import "testing"

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
