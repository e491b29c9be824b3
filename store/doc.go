// Package store knows the syntax of store paths (Nix's /nix/store/<hash>-<name>,
// Guix's /gnu/store/<hash>-<name>) and the closure graphs built from them: which
// store path references which, how big each one is and, where the source
// records it, the hash of its NAR.
//
// Graphs come from the files users already have: Load reads every graph
// format Nix and Guix write (path-info JSON in all its forms, registration
// and dump-db records, nix-store --query --graph, a store database) and
// LoadDB a live store database. Without any of them, Discover finds a
// closure by scanning the store like Nix does after a build (see Scan), and
// ReadPathList reads a plain list of paths, such as guix gc --requisites
// prints, to give Discover as roots. NarSize and MeasureSizes measure the
// sizes that a format lacks. NewGraph builds a graph from values.
//
// A Graph is validated once and immutable afterwards, so the rest of
// storepack can rely on its invariants: one store directory, every reference
// names a node, and every slice it hands out is sorted. It may hold a
// reference cycle between distinct paths (see Graph.Cycle), but the loaders
// and Discover refuse one: Nix and Guix cannot build it, so it means the
// input is corrupt, and the error can still name the file.
package store
