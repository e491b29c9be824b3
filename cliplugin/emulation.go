package cliplugin

import (
	"context"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/util/archutil"
	"github.com/moby/moby/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// checkRunnable fails, before anything is built or started, when the
// engine runs on this host's kernel and that kernel runs no programs of
// platform p, natively or through a binfmt_misc emulator: docker run would
// only say "exec format error" from inside the container. An engine on
// another kernel (remote, or in a VM) is left to say what it can run.
func checkRunnable(ctx context.Context, engine client.APIClient, p ocispecs.Platform) error {
	if p.OS != "linux" {
		return nil
	}
	info, err := engine.Info(ctx, client.InfoOptions{})
	if err != nil {
		return fmt.Errorf("cannot reach the docker engine: %w", err)
	}
	return runnableOn(info.Info.OSType, info.Info.Architecture, info.Info.KernelVersion, hostKernel(), hostRuns, p)
}

// runnableOn is checkRunnable's decision: the engine's OS, architecture
// and kernel release, this host's kernel release ("" where unknown), and
// whether this host runs programs of a platform.
func runnableOn(engineOS, engineArch, engineKernel, localKernel string, runs func(ocispecs.Platform) bool, p ocispecs.Platform) error {
	native := platforms.Normalize(ocispecs.Platform{OS: engineOS, Architecture: engineArch})
	p = platforms.Normalize(p)
	if engineOS != "linux" || p.Architecture == native.Architecture || localKernel == "" || localKernel != engineKernel || runs(p) {
		return nil
	}
	return fmt.Errorf("this host runs no %s programs, natively or through binfmt_misc: install and enable qemu's emulator for %s "+
		"(Debian, Ubuntu: apt-get install qemu-user-static binfmt-support; elsewhere: docker run --privileged --rm tonistiigi/binfmt --install %s)",
		platforms.Format(p), p.Architecture, p.Architecture)
}

// hostRuns tells whether this host runs programs of p: BuildKit's probe
// runs a tiny program of p (which finds what the kernel runs itself, such
// as 32-bit x86 on x86-64), else an enabled binfmt_misc entry claims an
// executable of p. The probe alone misses emulators whose mask is stricter
// than its programs' headers (Debian's qemu-mips64el entry refuses the
// probe's ABI version 5 and runs mips64le programs).
func hostRuns(p ocispecs.Platform) bool {
	for _, s := range archutil.SupportedPlatforms(true) {
		if s.OS == p.OS && s.Architecture == p.Architecture {
			return true
		}
	}
	header, ok := elfHeader(p)
	if !ok {
		return false
	}
	for _, entry := range binfmtEntries() {
		if binfmtClaims(entry, header) {
			return true
		}
	}
	return false
}

// elfMachines are the ELF class, byte order and machine of the
// executables of each Linux architecture (Go's and OCI's names).
var elfMachines = map[string]struct {
	class elf.Class
	data  elf.Data
	mach  elf.Machine
}{
	"386":      {elf.ELFCLASS32, elf.ELFDATA2LSB, elf.EM_386},
	"amd64":    {elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_X86_64},
	"arm":      {elf.ELFCLASS32, elf.ELFDATA2LSB, elf.EM_ARM},
	"arm64":    {elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_AARCH64},
	"loong64":  {elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_LOONGARCH},
	"mips":     {elf.ELFCLASS32, elf.ELFDATA2MSB, elf.EM_MIPS},
	"mipsle":   {elf.ELFCLASS32, elf.ELFDATA2LSB, elf.EM_MIPS},
	"mips64":   {elf.ELFCLASS64, elf.ELFDATA2MSB, elf.EM_MIPS},
	"mips64le": {elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_MIPS},
	"ppc64":    {elf.ELFCLASS64, elf.ELFDATA2MSB, elf.EM_PPC64},
	"ppc64le":  {elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_PPC64},
	"riscv64":  {elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_RISCV},
	"s390x":    {elf.ELFCLASS64, elf.ELFDATA2MSB, elf.EM_S390},
}

// elfHeader is the start of a static executable of platform p, as far as
// binfmt_misc entries look at it: identification, type and machine.
func elfHeader(p ocispecs.Platform) ([]byte, bool) {
	m, ok := elfMachines[p.Architecture]
	if !ok {
		return nil, false
	}
	h := make([]byte, 20)
	copy(h, elf.ELFMAG)
	h[elf.EI_CLASS], h[elf.EI_DATA], h[elf.EI_VERSION] = byte(m.class), byte(m.data), byte(elf.EV_CURRENT)
	var order binary.ByteOrder = binary.LittleEndian
	if m.data == elf.ELFDATA2MSB {
		order = binary.BigEndian
	}
	order.PutUint16(h[16:], uint16(elf.ET_EXEC))
	order.PutUint16(h[18:], uint16(m.mach))
	return h, true
}

// binfmtClaims tells whether a binfmt_misc entry, as its file under
// /proc/sys/fs/binfmt_misc reads, is enabled and matches header by magic.
func binfmtClaims(entry string, header []byte) bool {
	lines := strings.Split(entry, "\n")
	if len(lines) == 0 || lines[0] != "enabled" {
		return false
	}
	var offset string
	var magic, mask []byte
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, " ")
		switch k {
		case "offset":
			offset = v
		case "magic":
			magic, _ = hex.DecodeString(v)
		case "mask":
			mask, _ = hex.DecodeString(v)
		}
	}
	if offset != "0" || len(magic) == 0 || len(magic) > len(header) || (mask != nil && len(mask) != len(magic)) {
		return false
	}
	// As the kernel compares: only the bits the mask sets.
	for i, b := range magic {
		m := byte(0xff)
		if mask != nil {
			m = mask[i]
		}
		if (header[i]^b)&m != 0 {
			return false
		}
	}
	return true
}
