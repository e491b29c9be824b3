// Package hoststore reads the host's store for the commands that run on the
// host: it resolves ROOT arguments to store paths (ResolveRoots), and loads
// their closure graph from the store database, nix path-info, a scan of the
// store directory or a graph file (LoadClosure).
//
// FromAuto takes whichever source is exact and fastest for the roots: the
// store's database when it exists and holds every root, since it has the
// references and NAR sizes Nix or Guix registered and one read gives them
// all; else a scan, which finds what is on disk (paths not registered yet, a
// store copied without its database) and measures sizes. It never runs nix
// path-info, which reads the same database through the daemon: no more
// exact, slower, and only where Nix is installed. A database that cannot be
// read is reported to Options.Warn and replaced by a scan.
package hoststore
