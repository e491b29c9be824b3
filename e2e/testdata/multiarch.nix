# Per-system Nix closures for multi-arch image tests, built offline with Nix 2.8 and no nixpkgs.
# Build them with hack/nix-multiarch.sh (which adds the busybox directories and the Go binaries to
# the store first), or:
#
#   nix-build e2e/testdata/multiarch.nix -A app-mips64el-linux \
#     --argstr busybox-x86_64-linux /nix/store/...-busybox-amd64 ...  (all eight store paths) \
#     [--argstr appVersion N] [--argstr greeting "..."]
#
# For each system S of x86_64-linux, i686-linux, armv7l-linux and mips64el-linux, `app-S` is a
# derivation with `system = S` whose builder is S's busybox, so for a foreign S it runs through
# qemu binfmt (nix.conf: extra-platforms = i686-linux armv7l-linux mips64el-linux). Closure of
# app-S (3 paths):
#
#   archapp-S        bin/hello: a #!<busybox-S>/bin/sh script that runs libexec/archapp with
#                    <data>/share/greeting.txt; libexec/archapp: the static Go binary of S
#                    (e2e/testdata/archapp, prints arch=GOARCH and the greeting);
#                    share/archapp/version (appVersion); share/archapp/build-machine (`uname -m`
#                    inside the build, e.g. mips64 under qemu-mips64el).
#                    refs: busybox-S, multiarch-data, itself (bin/hello names libexec/archapp)
#   busybox-S        bin/busybox (Debian's busybox-static for S), bin/sh -> busybox   refs: none
#   multiarch-data   share/greeting.txt; ONE path shared by all four closures (built once, by
#                    `dataSystem`'s busybox)                                           refs: none
#
# The Go binary's own store path (archapp-linux-GOARCH, added with nix-store --add) is only a
# build input: app-S copies it, so it is not in the closure. `appVersion` enters only app-S:
# changing it changes the four app paths and nothing else. `greeting` enters multiarch-data, so
# it changes data and the four app paths. The busybox paths never change (content-addressed).
{
  # Directories holding bin/busybox (static, for that system) and bin/sh -> busybox: store path
  # strings (from `nix-store --add DIR`) or Nix paths.
  busybox-x86_64-linux,
  busybox-i686-linux,
  busybox-armv7l-linux,
  busybox-mips64el-linux,
  # The static archapp binary of each system (GOARCH amd64, 386, arm with GOARM=7, mips64le):
  # store path strings or Nix paths.
  archapp-x86_64-linux,
  archapp-i686-linux,
  archapp-armv7l-linux,
  archapp-mips64el-linux,
  appVersion ? "1",
  greeting ? "hello from storepack",
  # The system whose busybox builds the shared data path.
  dataSystem ? "x86_64-linux",
}@args:
let
  systems = [
    "x86_64-linux"
    "i686-linux"
    "armv7l-linux"
    "mips64el-linux"
  ];

  toStorePath =
    p: if builtins.isPath p then builtins.path { path = p; } else builtins.storePath p;

  perSystem = f: builtins.listToAttrs (map (s: { name = s; value = f s; }) systems);

  busybox = perSystem (s: toStorePath args."busybox-${s}");
  archapp = perSystem (s: toStorePath args."archapp-${s}");

  # A derivation for `system` whose builder is that system's busybox sh, with $BB naming the
  # busybox binary (its store directory holds only busybox and sh: other commands are
  # `$BB applet`).
  run =
    system: name: script: env:
    derivation (
      {
        inherit name system;
        builder = "${busybox.${system}}/bin/busybox";
        args = [ "sh" "-c" "set -eu\n${script}" ];
        BB = "${busybox.${system}}/bin/busybox";
      }
      // env
    );

  data = run dataSystem "multiarch-data" ''
    $BB mkdir -p "$out/share"
    $BB printf '%s\n' "$greeting" >"$out/share/greeting.txt"
  '' { inherit greeting; };

  app =
    system:
    run system "archapp-${system}" ''
      $BB mkdir -p "$out/bin" "$out/libexec" "$out/share/archapp"
      $BB cp "$archapp" "$out/libexec/archapp"
      $BB chmod 0555 "$out/libexec/archapp"
      {
        $BB printf '#!%s/bin/sh\n' "$bb"
        $BB printf '# archapp %s for %s\n' "$appVersion" "$system"
        $BB printf 'exec %s/libexec/archapp %s/share/greeting.txt\n' "$out" "$data"
      } >"$out/bin/hello"
      $BB chmod 0555 "$out/bin/hello"
      $BB printf '%s\n' "$appVersion" >"$out/share/archapp/version"
      $BB uname -m >"$out/share/archapp/build-machine"
    '' {
      inherit appVersion data;
      bb = busybox.${system};
      archapp = archapp.${system};
    };
in
builtins.listToAttrs (map (s: { name = "app-${s}"; value = app s; }) systems)
// {
  inherit data;
  # not derivations: nix-build of the whole file builds the four apps and data
  inherit busybox archapp;
}
