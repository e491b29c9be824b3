#!/usr/bin/env bash
# hack/nix-multiarch.sh OUTDIR [nix-build args...]
#
# Build the per-system test closures of e2e/testdata/multiarch.nix offline into the local Nix
# store and leave in OUTDIR, for each system S of x86_64-linux, i686-linux, armv7l-linux and
# mips64el-linux:
#   result-S      the out-link (a GC root) to app-S, the root of S's closure: app-S, busybox-S
#                 and the data path that all four closures share
#   graph-S.json  `nix path-info --json -r result-S`: every path of the closure with its
#                 narHash, narSize, references, deriver, registrationTime
# and archapp/archapp-linux-GOARCH, the Go binaries (cached there; `go build` of
# e2e/testdata/archapp from this repository, -trimpath and no build ID, so that the same source
# and Go toolchain give the same bytes and the same store path).
#
# Extra arguments go to nix-build, e.g. --argstr appVersion 2 (changes only the four app paths)
# or --argstr greeting "hi" (changes data and the apps).
#
# Busybox per Debian architecture (amd64, i386, armhf, mips64el): Debian's busybox-static,
# unpacked by `hack/testbed.sh install` to ${STOREPACK_CACHE:-$HOME/.cache/storepack}/busybox/
# ARCH/bin/busybox. Each becomes a store directory busybox-ARCH (bin/busybox, bin/sh -> busybox)
# with `nix-store --add`. Foreign systems build through qemu binfmt: needs nix.conf's
# `extra-platforms = i686-linux armv7l-linux mips64el-linux` (hack/testbed.sh install) and the
# binfmt entries (hack/testbed.sh install/up). To keep the build out of /nix/store, set
# NIX_REMOTE='local?root=/some/dir' (same store paths; the result links then dangle on the host).
set -euo pipefail

[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
export PATH=$PATH:/usr/local/go/bin
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${STOREPACK_CACHE:-$HOME/.cache/storepack}
out=$1
shift

die() { echo "nix-multiarch: $*" >&2; exit 1; }
command -v nix-build >/dev/null || die "nix-build not found (run hack/testbed.sh install)"
command -v go >/dev/null || die "go not found"
mkdir -p "$out"
out=$(cd "$out" && pwd -P)

systems=(x86_64-linux i686-linux armv7l-linux mips64el-linux)
declare -A debarch=([x86_64-linux]=amd64 [i686-linux]=i386 [armv7l-linux]=armhf [mips64el-linux]=mips64el)
declare -A goarch=([x86_64-linux]=amd64 [i686-linux]=386 [armv7l-linux]=arm [mips64el-linux]=mips64le)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

nix_args=()
for s in "${systems[@]}"; do
	a=${debarch[$s]}
	bb=$CACHE/busybox/$a/bin/busybox
	[[ -x $bb ]] || die "no $a busybox at $bb (run hack/testbed.sh install)"
	mkdir -p "$stage/busybox-$a/bin"
	cp "$bb" "$stage/busybox-$a/bin/busybox"
	chmod 0555 "$stage/busybox-$a/bin/busybox"
	ln -s busybox "$stage/busybox-$a/bin/sh"
	# Content-addressed: the same busybox binary always gives the same store path.
	nix_args+=(--argstr "busybox-$s" "$(nix-store --add "$stage/busybox-$a")")

	g=${goarch[$s]}
	bin=$out/archapp/archapp-linux-$g
	mkdir -p "$out/archapp"
	# Without asynchronous preemption: Debian's qemu-i386 7.2 enters a 386 Go program's signal
	# handler without the thread's TLS ("fatal: bad g in signal handler", or a hang in
	# sigsuspend), and preemption signals are the only ones the program gets. The setting is
	# built in (the linker's GODEBUG default), so the program runs so wherever it is started.
	(
		cd "$REPO_ROOT"
		GOWORK=off CGO_ENABLED=0 GOOS=linux GOARCH=$g GOARM=7 \
			go build -trimpath -ldflags '-s -w -buildid= -X=runtime.godebugDefault=asyncpreemptoff=1' \
			-o "$bin.tmp" ./e2e/testdata/archapp
	) || die "go build for $g failed"
	mv -f "$bin.tmp" "$bin"
	nix_args+=(--argstr "archapp-$s" "$(nix-store --add "$bin")")
done

expr=$REPO_ROOT/e2e/testdata/multiarch.nix
attrs=()
for s in "${systems[@]}"; do attrs+=(-A "app-$s"); done
# One nix-build for all four, so that independent builds run in parallel; then one per system
# (evaluation only, nothing left to build) to make each out-link a GC root under its own name.
nix-build "$expr" "${nix_args[@]}" "${attrs[@]}" --no-out-link --max-jobs 4 "$@" >/dev/null
for s in "${systems[@]}"; do
	nix-build "$expr" "${nix_args[@]}" -A "app-$s" --out-link "$out/result-$s" "$@" >/dev/null
	nix --extra-experimental-features nix-command path-info --json -r "$out/result-$s" >"$out/graph-$s.json"
	echo "nix-multiarch: $s: $(readlink "$out/result-$s") ($(nix-store -qR "$out/result-$s" | wc -l) paths)" >&2
done
