//go:build unix

package layertar

import "syscall"

// entrySys is what the change writer reads of an entry's stat on Unix: its
// owner, one link (no entry is a hard link) and no device.
func entrySys(uid, gid uint32) any { return &syscall.Stat_t{Nlink: 1, Uid: uid, Gid: gid} }
