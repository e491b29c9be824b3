//go:build unix

package inbuilder

import (
	"io/fs"
	"syscall"
)

// owner is the owner of the entry info describes.
func owner(info fs.FileInfo) ownerIDs {
	st := info.Sys().(*syscall.Stat_t)
	return ownerIDs{st.Uid, st.Gid}
}
