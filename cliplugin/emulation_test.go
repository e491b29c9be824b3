package cliplugin

import (
	"strings"
	"testing"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func linuxPlatform(arch, variant string) ocispecs.Platform {
	return ocispecs.Platform{OS: "linux", Architecture: arch, Variant: variant}
}

func TestRunnableOn(t *testing.T) {
	// A host with qemu for arm and no 32-bit x86.
	runs := func(p ocispecs.Platform) bool { return p.Architecture == "amd64" || p.Architecture == "arm" }
	for _, tc := range []struct {
		name                         string
		engineOS, engineArch, kernel string
		local                        string
		platform                     ocispecs.Platform
		wantErr                      string
	}{
		{"native", "linux", "x86_64", "6.18.0", "6.18.0", linuxPlatform("amd64", ""), ""},
		{"emulated", "linux", "x86_64", "6.18.0", "6.18.0", linuxPlatform("arm", "v7"), ""},
		{"not runnable", "linux", "x86_64", "6.18.0", "6.18.0", linuxPlatform("386", ""), "this host runs no linux/386 programs"},
		{"engine on another kernel", "linux", "x86_64", "6.10.14-linuxkit", "6.18.0", linuxPlatform("386", ""), ""},
		{"host kernel unknown", "linux", "x86_64", "6.18.0", "", linuxPlatform("386", ""), ""},
		{"windows engine", "windows", "x86_64", "10.0", "10.0", linuxPlatform("386", ""), ""},
		{"arm64 engine", "linux", "aarch64", "6.18.0", "6.18.0", linuxPlatform("arm64", ""), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runnableOn(tc.engineOS, tc.engineArch, tc.kernel, tc.local, runs, tc.platform)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want %q", err, tc.wantErr)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Errorf("error of more than one line: %q", err)
			}
		})
	}
}

func TestBinfmtClaims(t *testing.T) {
	// Entries as /proc/sys/fs/binfmt_misc shows them: Debian's
	// qemu-mips64el and qemu-arm, and qemu-i386 as the test bed writes it.
	const (
		mips64el = "enabled\ninterpreter /usr/libexec/qemu-binfmt/mips64el-binfmt-P\nflags: PF\noffset 0\n" +
			"magic 7f454c4602010100000000000000000002000800\nmask ffffffffffffff00fefffffffffffffffeffffff\n"
		arm = "enabled\ninterpreter /usr/libexec/qemu-binfmt/arm-binfmt-P\nflags: PF\noffset 0\n" +
			"magic 7f454c4601010100000000000000000002002800\nmask ffffffffffffff00fffffffffffffffffeffffff\n"
		i386 = "enabled\ninterpreter /root/.cache/storepack/qemu-binfmt/i386-binfmt-P\nflags: PF\noffset 0\n" +
			"magic 7f454c4601010100000000000000000002000300\nmask fffffffffffefe00fffffffffffffffffeffffff\n"
		jar = "enabled\ninterpreter /usr/bin/jexec\nflags: \nextension .jar\n"
	)
	for _, tc := range []struct {
		entry, arch string
		want        bool
	}{
		{mips64el, "mips64le", true},
		{mips64el, "mips64", false},
		{mips64el, "amd64", false},
		{arm, "arm", true},
		{arm, "arm64", false},
		{i386, "386", true},
		{i386, "amd64", false},
		{strings.Replace(i386, "enabled", "disabled", 1), "386", false},
		{jar, "386", false},
	} {
		header, ok := elfHeader(linuxPlatform(tc.arch, ""))
		if !ok {
			t.Fatalf("no ELF header for %s", tc.arch)
		}
		if got := binfmtClaims(tc.entry, header); got != tc.want {
			t.Errorf("%s entry claims %s: %v, want %v", strings.Fields(tc.entry)[2], tc.arch, got, tc.want)
		}
	}
}
