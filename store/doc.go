// Package store knows the syntax of store paths (Nix's /nix/store/<hash>-<name>,
// Guix's /gnu/store/<hash>-<name>) and the closure graphs built from them: which
// store path references which, and how big each one is.
//
// Graphs come from the files users already have (see Load) or are built with
// NewGraph. A Graph is validated once and immutable afterwards, so the rest of
// storepack can rely on its invariants: one store directory, every reference
// names a node, and every slice it hands out is sorted.
package store
