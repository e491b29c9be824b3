# The store that nix_test.go builds with a real Nix (2.8 is enough) to check
# the scanner and the graph formats against what Nix itself records.
#
# busybox is the store path of a directory holding a static busybox as
# bin/busybox (added with nix-store --add): every builder is a busybox shell.
#
# app's references are each held in one way only, so that the scanner must
# find every way Nix finds:
#   lib       file contents
#   in-link   a symlink target
#   in-name   a file name
#   in-split  file contents, across the 64 KiB boundary of a read
#   app       itself (a self-reference; lib references itself too)
# and app mentions the hash of a path that is not in the store (never-built,
# whose string context is discarded), which must not become a reference.
{ busybox }:
let
  bb = builtins.storePath busybox;
  build = name: script: attrs: derivation ({
    inherit name;
    system = builtins.currentSystem;
    builder = "${bb}/bin/busybox";
    args = [ "sh" "-euc" script ];
  } // attrs);
  leaf = name: build name "echo ${name} > $out" { };

  deep3 = leaf "deep3";
  deep2 = build "deep2" "echo ${deep3} > $out" { };
  deep1 = build "deep1" "mkdir $out && echo ${deep2} > $out/deep2" { };
  inContent = leaf "in-content";
  inLink = leaf "in-link";
  inName = leaf "in-name";
  inSplit = leaf "in-split";
  doc = build "doc" "mkdir -p $out/share/doc && echo documentation > $out/share/doc/README" { };
  neverBuilt = build "never-built" "exit 1" { };

  lib = build "lib" ''
    mkdir -p $out/lib
    echo "prefix=$out" > $out/lib/lib.pc
    echo "needs ${inContent} and ${deep1}" > $out/lib/deps
  '' { };

  app = build "app" ''
    mkdir -p $out/bin $out/share
    echo "#!${lib}/bin/sh" > $out/bin/app
    chmod +x $out/bin/app
    echo "exec $out/bin/app" > $out/share/launcher
    ln -s ${inLink} $out/share/link
    touch "$out/share/$inNameBase"
    head -c ${toString (65536 - 16)} /dev/zero > $out/share/big
    printf '%s' ${inSplit} >> $out/share/big
    echo ${builtins.unsafeDiscardStringContext neverBuilt.outPath} > $out/share/never-built
    ln -s ${doc}/share/doc $out/share/doc
  '' {
    # A file name is all that refers to in-name; the variable makes in-name
    # an input of the build, so that Nix looks for its hash.
    inNameBase = baseNameOf inName;
  };

  # exportReferencesGraph writes app's closure as registration records.
  graph = build "graph" "cp closure $out" { exportReferencesGraph = [ "closure" app ]; };
in
{
  inherit app graph;
}
