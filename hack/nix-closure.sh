#!/usr/bin/env bash
# hack/nix-closure.sh OUTDIR [nix-build args...]
#
# Build the test closure e2e/testdata/hello.nix offline into the local Nix store (/nix/store,
# or wherever --store / NIX_* settings point) and leave in OUTDIR:
#   result          the out-link (a GC root) to the `hello` store path, the closure's root
#   path-info.json  `nix path-info --json -r result`: every path of the closure with its
#                   narHash, narSize, references, deriver, registrationTime
#   registration    `nix-store --dump-db $(nix-store -qR result)`: the closure's database
#                   records in the format `nix-store --load-db` reads (the same format as
#                   nixpkgs' closureInfo "registration" file): per path its store path,
#                   narHash, narSize, deriver, number of references, references.
#   closure         `nix-store -qR result`, one path per line (dependencies first)
#
# Extra arguments go to nix-build, e.g. --argstr greeting "hi" --argstr appVersion 2.
# The busybox directory (bin/busybox and bin/sh -> busybox) is added with `nix-store --add`
# from $STOREPACK_BUSYBOX (default /bin/busybox, Debian's busybox-static), so that derivation
# builders have a shell: Nix 2.8 runs a builder with argv[0] = its basename, which multi-call
# busybox needs to be "busybox". Needs nix-bin and /etc/nix/nix.conf from hack/testbed.sh install.
# To keep the build out of /nix/store, set NIX_REMOTE='local?root=/some/dir' (same store paths,
# files under /some/dir/nix/store; the result link then dangles on the host).
set -euo pipefail

[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$1
shift
command -v nix-build >/dev/null || { echo "nix-closure: nix-build not found (run hack/testbed.sh install)" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd -P)

busybox_bin=${STOREPACK_BUSYBOX:-/bin/busybox}
[[ -x $busybox_bin ]] || { echo "nix-closure: no busybox at $busybox_bin (apt-get install busybox-static)" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/busybox/bin"
cp "$busybox_bin" "$stage/busybox/bin/busybox"
chmod 0555 "$stage/busybox/bin/busybox"
ln -s busybox "$stage/busybox/bin/sh"
# Content-addressed: the same busybox binary always gives the same store path.
bb=$(nix-store --add "$stage/busybox")

nix-build "$REPO_ROOT/e2e/testdata/hello.nix" --argstr busybox "$bb" --out-link "$out/result" "$@" >/dev/null

nix-store -qR "$out/result" >"$out/closure"
nix --extra-experimental-features nix-command path-info --json -r "$out/result" >"$out/path-info.json"
# shellcheck disable=SC2046
nix-store --dump-db $(<"$out/closure") >"$out/registration"

echo "nix-closure: $(readlink "$out/result") ($(wc -l <"$out/closure") paths) -> $out" >&2
