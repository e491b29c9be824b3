package inputs

import (
	"debug/elf"
	"encoding/binary"
	"fmt"

	"github.com/containerd/platforms"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// systemPlatforms maps Nix and Guix system names to OCI platforms, so that
// `CLOSURE --platform=armv7l-linux` means linux/arm/v7.
var systemPlatforms = map[string]string{
	"x86_64-linux":      "linux/amd64",
	"i686-linux":        "linux/386",
	"armv7l-linux":      "linux/arm/v7", // Nix
	"armhf-linux":       "linux/arm/v7", // Guix
	"armv6l-linux":      "linux/arm/v6",
	"aarch64-linux":     "linux/arm64",
	"mips64el-linux":    "linux/mips64le",
	"powerpc64le-linux": "linux/ppc64le",
	"riscv64-linux":     "linux/riscv64",
	"s390x-linux":       "linux/s390x",
	"loongarch64-linux": "linux/loong64",
}

// ParsePlatform reads an OCI platform ("linux/arm/v7") or a Nix or Guix
// system name ("armv7l-linux").
func ParsePlatform(spec string) (ocispecs.Platform, error) {
	if p, ok := systemPlatforms[spec]; ok {
		spec = p
	}
	p, err := platforms.Parse(spec)
	if err != nil {
		return ocispecs.Platform{}, fmt.Errorf("--platform=%s: want an OS/architecture[/variant] or a system such as x86_64-linux: %w", spec, err)
	}
	return platforms.Normalize(p), nil
}

// elfHeaderSize is how much of a file elfPlatform needs.
const elfHeaderSize = 20

// elfPlatform tells the platform an ELF file was built for from its first
// bytes. ok is false for anything that is not an ELF file. An ARM binary
// gives architecture "arm" without a variant: the header does not say.
func elfPlatform(header []byte) (p ocispecs.Platform, ok bool, err error) {
	if len(header) < elfHeaderSize || string(header[:4]) != elf.ELFMAG {
		return p, false, nil
	}
	class, data := elf.Class(header[elf.EI_CLASS]), elf.Data(header[elf.EI_DATA])
	// The class tells MIPS and RISC-V apart by word size: another value
	// is no ELF file a machine runs, not a 32-bit one.
	if class != elf.ELFCLASS32 && class != elf.ELFCLASS64 {
		return p, true, fmt.Errorf("ELF header has unknown class %d", class)
	}
	var order binary.ByteOrder
	switch data {
	case elf.ELFDATA2LSB:
		order = binary.LittleEndian
	case elf.ELFDATA2MSB:
		order = binary.BigEndian
	default:
		return p, true, fmt.Errorf("ELF header has unknown byte order %d", data)
	}
	is64 := class == elf.ELFCLASS64
	le := data == elf.ELFDATA2LSB
	arch := ""
	switch machine := elf.Machine(order.Uint16(header[18:20])); machine {
	case elf.EM_X86_64:
		arch = "amd64"
	case elf.EM_386:
		arch = "386"
	case elf.EM_ARM:
		arch = "arm"
	case elf.EM_AARCH64:
		arch = "arm64"
	case elf.EM_MIPS:
		arch = map[[2]bool]string{{true, true}: "mips64le", {true, false}: "mips64", {false, true}: "mipsle", {false, false}: "mips"}[[2]bool{is64, le}]
	case elf.EM_PPC64:
		arch = map[bool]string{true: "ppc64le", false: "ppc64"}[le]
	case elf.EM_RISCV:
		arch = map[bool]string{true: "riscv64", false: "riscv32"}[is64]
	case elf.EM_S390:
		arch = "s390x"
	case elf.EM_LOONGARCH:
		arch = "loong64"
	default:
		return p, true, fmt.Errorf("ELF machine %v is not a known container platform", machine)
	}
	return ocispecs.Platform{OS: "linux", Architecture: arch}, true, nil
}

// runsOn reports whether a binary built for detected runs as target:
// same OS and architecture; an undetected ARM variant matches any.
func runsOn(detected, target ocispecs.Platform) bool {
	target = platforms.Normalize(target)
	return detected.OS == target.OS && detected.Architecture == target.Architecture &&
		(detected.Variant == "" || detected.Variant == target.Variant)
}
