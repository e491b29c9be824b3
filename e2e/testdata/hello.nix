# A small Nix closure with real references, built offline with Nix 2.8 and no nixpkgs.
# Build it with hack/nix-closure.sh (which adds the busybox directory to the store first), or:
#
#   nix-build e2e/testdata/hello.nix --argstr busybox /nix/store/...-busybox \
#     [--argstr greeting "..."] [--argstr appVersion "..."]
#
# Closure of the result (the root is `hello`):
#
#   hello          bin/hello (#!<busybox>/bin/sh script), share/data -> <greeting-data>/share,
#                  share/hello/version        refs: busybox, hello-lib, greeting-data
#   hello-lib      lib/greeting-path: the store path of greeting.txt   refs: greeting-data
#   greeting-data  share/greeting.txt                                  refs: none
#   busybox        bin/busybox (static), bin/sh -> busybox             refs: none
#
# `appVersion` enters only `hello`: changing it changes that one leaf path. `greeting` enters
# `greeting-data`, so changing it changes greeting-data, hello-lib and hello. busybox never
# changes (it is a content-addressed source path).
{
  # The busybox directory: a store path string (from `nix-store --add DIR`, DIR holding
  # bin/busybox and bin/sh -> busybox) or a Nix path to such a directory.
  busybox,
  greeting ? "hello from storepack",
  appVersion ? "1.0",
  # busybox must be built for this system (binfmt lets e.g. mips64el-linux build here).
  system ? builtins.currentSystem,
}:
let
  bb =
    if builtins.isPath busybox then
      builtins.path { path = busybox; name = "busybox"; }
    else
      builtins.storePath busybox;

  # A derivation whose builder is busybox's sh, with $BB naming the busybox binary (the store
  # directory holds only busybox and sh, so every other command is `$BB applet`).
  run =
    name: script: env:
    derivation (
      {
        inherit name system;
        builder = "${bb}/bin/busybox";
        args = [ "sh" "-c" "set -eu\n${script}" ];
        BB = "${bb}/bin/busybox";
      }
      // env
    );

  greetingData = run "greeting-data" ''
    $BB mkdir -p "$out/share"
    $BB printf '%s\n' "$greeting" >"$out/share/greeting.txt"
  '' { inherit greeting; };

  helloLib = run "hello-lib" ''
    $BB mkdir -p "$out/lib"
    $BB printf '%s\n' "$data/share/greeting.txt" >"$out/lib/greeting-path"
  '' { data = greetingData; };

  hello = run "hello" ''
    $BB mkdir -p "$out/bin" "$out/share/hello"
    {
      $BB printf '#!%s/bin/sh\n' "$bb"
      $BB printf '# hello %s\n' "$appVersion"
      $BB printf 'case "''${1:-}" in --version) echo "hello %s"; exit 0;; esac\n' "$appVersion"
      $BB printf 'exec %s cat "$(%s cat %s/lib/greeting-path)"\n' "$BB" "$BB" "$lib"
    } >"$out/bin/hello"
    $BB chmod 0555 "$out/bin/hello"
    $BB ln -s "$data/share" "$out/share/data"
    $BB printf '%s\n' "$appVersion" >"$out/share/hello/version"
  '' {
    inherit appVersion bb;
    lib = helloLib;
    data = greetingData;
  };
in
hello
// {
  inherit greetingData helloLib;
  busybox = bb;
}
