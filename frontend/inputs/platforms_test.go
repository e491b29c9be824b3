package inputs

import (
	"encoding/hex"
	"testing"

	"github.com/containerd/platforms"
)

func TestParsePlatform(t *testing.T) {
	for spec, want := range map[string]string{
		"x86_64-linux":   "linux/amd64",
		"i686-linux":     "linux/386",
		"armv7l-linux":   "linux/arm/v7",
		"armhf-linux":    "linux/arm/v7",
		"mips64el-linux": "linux/mips64le",
		"aarch64-linux":  "linux/arm64",
		"linux/arm":      "linux/arm/v7",
		"linux/amd64":    "linux/amd64",
	} {
		p, err := ParsePlatform(spec)
		if err != nil {
			t.Errorf("%s: %v", spec, err)
			continue
		}
		if got := platforms.Format(p); got != want {
			t.Errorf("%s gives %s, want %s", spec, got, want)
		}
	}
	if _, err := ParsePlatform("vax-ultrix!"); err == nil {
		t.Error("a bad platform parsed")
	}
}

// The first 20 bytes of static Go binaries built with GOARCH=… (GOARM=7).
func TestELFPlatform(t *testing.T) {
	for arch, header := range map[string]string{
		"amd64":    "7f454c4602010100000000000000000002003e00",
		"386":      "7f454c4601010100000000000000000002000300",
		"arm":      "7f454c4601010100000000000000000002002800",
		"mips64le": "7f454c4602010100000000000000000002000800",
		"arm64":    "7f454c460201010000000000000000000200b700",
		"ppc64le":  "7f454c4602010100000000000000000002001500",
		"riscv64":  "7f454c460201010000000000000000000200f300",
		"s390x":    "7f454c4602020100000000000000000000020016",
	} {
		b, _ := hex.DecodeString(header)
		p, ok, err := elfPlatform(b)
		if !ok || err != nil || p.OS != "linux" || p.Architecture != arch {
			t.Errorf("%s: %+v ok=%v err=%v", arch, p, ok, err)
		}
	}
	for _, notELF := range []string{"", "#!/bin/sh\necho hello world\n", "\x7fELF"} {
		if _, ok, err := elfPlatform([]byte(notELF)); ok || err != nil {
			t.Errorf("%q: ok=%v err=%v", notELF, ok, err)
		}
	}
	odd, _ := hex.DecodeString("7f454c4602010100000000000000000002000200") // EM_SPARC
	if _, ok, err := elfPlatform(odd); !ok || err == nil {
		t.Errorf("unknown machine: ok=%v err=%v", ok, err)
	}
}

func TestRunsOn(t *testing.T) {
	arm, _ := ParsePlatform("linux/arm/v7")
	amd64, _ := ParsePlatform("linux/amd64")
	detectedARM, _, _ := elfPlatform(mustHex("7f454c4601010100000000000000000002002800"))
	if !runsOn(detectedARM, arm) || runsOn(detectedARM, amd64) {
		t.Error("arm detection")
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
