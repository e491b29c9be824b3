//go:build !linux

package cliplugin

// hostKernel is "" where the plugin runs on no Linux kernel: a Linux engine
// is then always on another kernel (a VM's or a remote host's).
func hostKernel() string { return "" }

func binfmtEntries() []string { return nil }
