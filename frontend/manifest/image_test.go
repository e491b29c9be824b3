package manifest

import "testing"

// TestBaseFor: FROM --platform applies to its platform, FROM without one
// to every other; build arguments expand in both.
func TestBaseFor(t *testing.T) {
	m := expand(t, "ARG TAG=1.36\nFROM --platform=linux/arm/v7 busybox:$TAG-armv7\nFROM busybox:$TAG\nCLOSURE ./r\n", Options{})
	for p, want := range map[string]string{"linux/arm/v7": "busybox:1.36-armv7", "linux/amd64": "busybox:1.36"} {
		if b := m.BaseFor(p); b == nil || b.Image != want {
			t.Errorf("base for %s: %+v, want %s", p, b, want)
		}
	}
	if b := expand(t, "FROM --platform=linux/amd64 busybox\nCLOSURE ./r\n", Options{}).BaseFor("linux/386"); b != nil {
		t.Errorf("base for linux/386 from a FROM for linux/amd64 only: %+v", b)
	}
}
