package inputs

import (
	"debug/elf"
	"reflect"
	"testing"

	"github.com/containerd/platforms"
)

// FuzzELFPlatform feeds elfPlatform the first bytes of files in store
// paths, which are whatever a build left there: too short or not ELF is
// "not ELF"; an ELF header it reads names a platform that a target can
// name too and whose binaries run there; only the first elfHeaderSize
// bytes count, as only those are read.
func FuzzELFPlatform(f *testing.F) {
	f.Add([]byte{}) // an empty file
	for _, s := range []string{
		"7f454c4602010100000000000000000002003e00",         // amd64
		"7f454c4602020100000000000000000000020016",         // s390x, big-endian
		"7f454c4601010100000000000000000002000800",         // mipsle
		"7f454c4602010100000000000000000002000200",         // SPARC, no container platform
		"7f454c4603010100000000000000000002000800",         // unknown class
		"7f454c4602030100000000000000000002003e00",         // unknown byte order
		"7f454c46020101000000000000000000020028",           // one byte short
		"7f454c460201010000000000000000000200b700deadbeef", // arm64, and more
		"23212f62696e2f73680a6563686f2068656c6c6f",         // #!/bin/sh
	} {
		f.Add(mustHex(s))
	}
	f.Fuzz(func(t *testing.T, header []byte) {
		p, ok, err := elfPlatform(header)
		if !ok {
			if err != nil || !reflect.ValueOf(p).IsZero() || len(header) >= elfHeaderSize && string(header[:4]) == elf.ELFMAG {
				t.Fatalf("%x: not ELF, but platform %+v, error %v", header, p, err)
			}
			return
		}
		if len(header) > elfHeaderSize {
			if q, qok, qerr := elfPlatform(header[:elfHeaderSize]); !reflect.DeepEqual(q, p) || !qok || (qerr == nil) != (err == nil) {
				t.Fatalf("%x: %+v, %v; its first %d bytes alone: %+v, %v, %v", header, p, err, elfHeaderSize, q, qok, qerr)
			}
		}
		if err != nil {
			return
		}
		if class := elf.Class(header[elf.EI_CLASS]); class != elf.ELFCLASS32 && class != elf.ELFCLASS64 {
			t.Fatalf("%x: class %v read as %+v", header, class, p)
		}
		target, perr := ParsePlatform(platforms.Format(p))
		if p.OS != "linux" || p.Variant != "" || perr != nil || !runsOn(p, target) {
			t.Fatalf("%x: read as %+v, which as a target is %+v (%v)", header, p, target, perr)
		}
	})
}
