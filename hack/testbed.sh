#!/usr/bin/env bash
# hack/testbed.sh — the end-to-end test bed: real engines on this machine.
#
#   hack/testbed.sh install      install Debian packages (Docker Engine 20.10, containerd, runc,
#                                qemu-user-static, binfmt-support, Nix 2.8, busybox-static;
#                                iproute2 and iptables, with which the remote-builder tests give
#                                a buildkitd a network namespace of its own),
#                                configure Nix and binfmt, and build buildkitd/buildctl (the
#                                buildkit version of go.mod), buildx and the distribution
#                                registry and syft (which the SBOM tests check against) into
#                                ${STOREPACK_CACHE:-$HOME/.cache/storepack}/tools,
#                                and Docker Engine 28 (dockerd, docker-proxy; ~6-8 min cold, with
#                                gcc, at nice 10) into the same cache, and there the root file
#                                system of a BuildKit image (buildkitd, buildctl, Debian's runc).
#                                Also unpacks Debian's static busybox for amd64, i386, armhf and
#                                mips64el (apt-get download, no dpkg --add-architecture) to
#                                busybox/ARCH/bin/busybox in that cache, runs each, and registers
#                                qemu (binfmt_misc, flags PF) for each architecture whose
#                                programs do not run here (i386 where the kernel runs no 32-bit
#                                x86 programs). Installs Debian's Podman 4.3.1 with what it needs
#                                rootless, creates the user storepack-rootless (TESTBED_ROOTLESS_USER)
#                                with subordinate uid/gid ranges of its own, and sets Podman's
#                                default container rlimits to ones every machine allows.
#                                Idempotent: a second run installs nothing.
#   hack/testbed.sh up DIR       start a registry, containerd + dockerd and buildkitd with every
#                                socket, data root, log and pid file under DIR, create the buildx
#                                builder "storepack-test", start Docker 28 twice beside 20.10
#                                (docker28-classic: overlay2 store; docker28-containerd: the
#                                containerd image store), import the BuildKit image into each
#                                Docker 28 (for buildx's docker-container driver, which cannot
#                                pull moby/buildkit offline), and write DIR/env (export lines).
#   hack/testbed.sh down DIR     stop everything `up DIR` started (by PID), unmount what is left
#                                mounted under DIR. Safe to repeat and after a partial `up`.
#   hack/testbed.sh logs DIR     print the tail of every daemon log under DIR.
#   hack/testbed.sh check [DIR]  report, per architecture the tests use, whether this host runs
#                                its programs natively or emulated, and what of rootless Podman
#                                works (import, run, a volume, a published port) for the rootless
#                                user, under a state dir of its own; with DIR, also exercise a
#                                running test bed (docker run, docker build, buildctl build,
#                                buildx build to an OCI tar, push to the registry), and on each
#                                Docker 28 engine docker run, docker build and buildx build.
#
# DIR/env (`source DIR/env`) exports: TESTBED_DIR, DOCKER_HOST (unix://DIR/docker.sock),
# DOCKER_CONFIG (DIR/docker-config, holds the buildx plugin and builder), BUILDKIT_HOST
# (unix://DIR/buildkitd.sock), BUILDX_BUILDER=storepack-test, STOREPACK_REGISTRY
# (127.0.0.1:PORT, plain HTTP), STOREPACK_DOCKER=/usr/bin/docker (Debian's 20.10 client; a newer
# `docker` on PATH would send `docker build` to buildx, i.e. to buildkitd), TESTBED_TOOLS_PATH,
# TESTBED_BUILDKIT_VERSION, TESTBED_BUILDKIT_SNAPSHOTTER (overlayfs, or native as a fallback),
# TESTBED_BUSYBOX_IMAGE (busybox:latest, in the engine and as library/busybox in the registry),
# TESTBED_BUILDKIT_IMAGE (in each Docker 28 engine: `docker buildx create --driver
# docker-container --driver-opt image=$TESTBED_BUILDKIT_IMAGE,network=host`), TESTBED_CGROUP_PARENT
# (/storepack-TAG, under which the daemons run their containers and which `down` sweeps; give
# such a builder cgroup-parent=$TESTBED_CGROUP_PARENT/NAME too),
# TESTBED_ENGINE_BRIDGE, TESTBED_ENGINES (every engine as NAME=DOCKER_HOST, space-separated:
# docker20.10, docker28-classic, docker28-containerd), and PATH with the tool directories first.
# buildkitd resolves docker.io through the registry, so `# syntax=storepack` means
# $STOREPACK_REGISTRY/library/storepack:latest there; the engine finds it in its image store.
#
# Environment:
#   STOREPACK_CACHE               cache root (default $HOME/.cache/storepack)
#   STOREPACK_BUILDKIT_VERSION    override the buildkit version (default: go.mod's)
#   STOREPACK_BUILDX_VERSION      buildx version (default v0.38.2)
#   STOREPACK_REGISTRY_VERSION    distribution registry version (default v3.1.2)
#   STOREPACK_SYFT_VERSION        syft version (default v1.57.2)
#   STOREPACK_ENGINE_VERSION      Docker Engine version beside 20.10 (default v28.5.2)
#   TESTBED_TIMEOUT               seconds `up` may spend waiting for daemons (default 120)
#   TESTBED_STOP_TIMEOUT          seconds `down` waits for each daemon to exit (default 30)
#   TESTBED_KEEP_ON_FAILURE=1     leave a failed `up` running (default: it runs `down` itself)
#   TESTBED_LOG_LINES             lines per log printed by `logs` and on failure (default 60)
set -euo pipefail

ORIG_PATH=$PATH
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${STOREPACK_CACHE:-$HOME/.cache/storepack}
TOOLS=$CACHE/tools
BUILDX_VERSION=${STOREPACK_BUILDX_VERSION:-v0.38.2}
REGISTRY_VERSION=${STOREPACK_REGISTRY_VERSION:-v3.1.2}
SYFT_VERSION=${STOREPACK_SYFT_VERSION:-v1.57.2}
DEBIAN_DOCKER=/usr/bin/docker
BUILDER_NAME=storepack-test
BUSYBOX_IMAGE=busybox:latest
LOG_LINES=${TESTBED_LOG_LINES:-60}
PACKAGES=(docker.io containerd runc iptables qemu-user-static binfmt-support nix-bin
	busybox-static curl ca-certificates util-linux iproute2)
# Tracing exporters default to OTLP on localhost in some of these daemons: keep them quiet.
export OTEL_SDK_DISABLED=true OTEL_TRACES_EXPORTER=none OTEL_METRICS_EXPORTER=none

log() { printf 'testbed: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
need_root() { [[ $(id -u) == 0 ]] || die "must run as root"; }

# ---------------------------------------------------------------------------------------------
# versions and tool paths

buildkit_version() {
	if [[ -n ${STOREPACK_BUILDKIT_VERSION:-} ]]; then
		echo "$STOREPACK_BUILDKIT_VERSION"
		return
	fi
	local v
	v=$(cd "$REPO_ROOT" && GOWORK=off GOFLAGS=-mod=mod go list -m -f '{{.Version}}' github.com/moby/buildkit) ||
		die "cannot read the buildkit version from $REPO_ROOT/go.mod"
	[[ -n $v ]] || die "go.mod has no github.com/moby/buildkit requirement"
	echo "$v"
}

set_tool_paths() {
	BUILDKIT_VERSION=$(buildkit_version)
	BUILDKIT_DIR=$TOOLS/buildkit-$BUILDKIT_VERSION
	BUILDX_DIR=$TOOLS/buildx-$BUILDX_VERSION
	REGISTRY_DIR=$TOOLS/registry-$REGISTRY_VERSION
	SYFT_DIR=$TOOLS/syft-$SYFT_VERSION
	BUILDKITD=$BUILDKIT_DIR/buildkitd
	BUILDCTL=$BUILDKIT_DIR/buildctl
	BUILDX=$BUILDX_DIR/buildx
	REGISTRY=$REGISTRY_DIR/registry
	SYFT=$SYFT_DIR/syft
	BUILDKIT_IMAGE_TAR=$TOOLS/buildkit-image-$BUILDKIT_VERSION.tar
	BUILDKIT_IMAGE=storepack-testbed/buildkit:$BUILDKIT_VERSION
}

# ---------------------------------------------------------------------------------------------
# install

pkg_installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }

install_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do pkg_installed "$p" || missing+=("$p"); done
	if ((${#missing[@]} == 0)); then
		log "packages: all present"
		return
	fi
	log "packages: installing ${missing[*]}"
	# Install without starting services (dockerd, containerd, nix-daemon): the test bed runs
	# its own daemons and must not find an engine it did not start.
	local policy=/usr/sbin/policy-rc.d made_policy=
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		made_policy=1
	fi
	local rc=0
	{
		DEBIAN_FRONTEND=noninteractive apt-get update -q &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
	} || rc=$?
	[[ -z $made_policy ]] || rm -f "$policy"
	((rc == 0)) || die "apt-get failed ($rc)"
}

ensure_nix_conf() {
	local f=/etc/nix/nix.conf s key changed=
	local settings=(
		'build-users-group ='
		'sandbox = false'
		'substituters ='
		'experimental-features = nix-command'
		'extra-platforms = i686-linux armv7l-linux mips64el-linux'
	)
	mkdir -p /etc/nix
	[[ -e $f ]] || : >"$f"
	for s in "${settings[@]}"; do
		grep -qxF -- "$s" "$f" && continue
		key=${s%% =*}
		sed -i "/^[[:space:]]*${key}[[:space:]]*=/d" "$f"
		printf '%s\n' "$s" >>"$f"
		changed=1
	done
	if [[ -n $changed ]]; then log "nix: wrote $f"; else log "nix: $f already configured"; fi
}

# The architectures whose programs the tests run (Debian's names), and for each the qemu binfmt
# entry that runs them where the kernel does not: qemu's name for it, and the ELF header magic and
# mask that qemu's qemu-binfmt-conf.sh registers (class, byte order, ELF version and e_machine;
# OS ABI ignored, executables and PIE alike).
TEST_ARCHES=(amd64 i386 armhf mips64el)
declare -A QEMU_ARCH=([amd64]=x86_64 [i386]=i386 [armhf]=arm [mips64el]=mips64el)
declare -A BINFMT_MAGIC=(
	[amd64]='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00'
	[i386]='\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x03\x00'
	[armhf]='\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00'
	[mips64el]='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08\x00'
)
declare -A BINFMT_MASK=(
	[amd64]='\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
	[i386]='\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
	[armhf]='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
	[mips64el]='\xff\xff\xff\xff\xff\xff\xff\x00\xfe\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
)
BINFMT=/proc/sys/fs/binfmt_misc

busybox_of() { echo "$CACHE/busybox/$1/bin/busybox"; }

# runs ARCH — true when ARCH's busybox runs here, natively or through binfmt; bounded, since an
# emulator can hang.
runs() { [[ $(timeout -s KILL 30 "$(busybox_of "$1")" echo ok 2>/dev/null) == ok ]]; }

# emulation ARCH — how ARCH's programs run here: "native", or "emulated (ENTRY [FLAGS])" when an
# enabled binfmt entry claims them (binfmt_misc is asked before the kernel's own ELF loader).
emulation() {
	local e=$BINFMT/qemu-${QEMU_ARCH[$1]}
	if [[ -e $e ]] && grep -qx enabled "$e"; then
		echo "emulated (${e##*/} [$(sed -n 's/^flags: //p' "$e")])"
	else
		echo native
	fi
}

# register_qemu ARCH — make ARCH's programs run through qemu, as Debian registers the foreign
# architectures it knows: flags P (the program keeps its own argv[0], which busybox's applets
# need) and F (the interpreter is opened now, so that it also works inside containers). Debian
# registers no entry for an architecture it assumes the kernel runs itself (i386 on amd64), and
# some kernels do not (IA32 emulation off at boot): then the entry is written here, with the
# interpreter linked into the cache under Debian's name for it (qemu-ARCH's "-binfmt-P" form).
# Nothing is replaced or removed: an entry of that name that exists is only enabled, and one that
# is enabled but does not run ARCH's programs is an error to fix by hand.
register_qemu() {
	local arch=$1 name=qemu-${QEMU_ARCH[$1]} qemu link
	if [[ -e $BINFMT/$name ]]; then
		grep -qx enabled "$BINFMT/$name" && die "binfmt: $name is registered but $arch programs do not run (see $BINFMT/$name)"
		echo 1 >"$BINFMT/$name"
	elif [[ -e /var/lib/binfmts/$name ]]; then
		update-binfmts --enable "$name" || die "binfmt: cannot enable Debian's $name"
	else
		qemu=$(command -v "qemu-${QEMU_ARCH[$arch]}-static") || die "binfmt: qemu-${QEMU_ARCH[$arch]}-static not found (run install)"
		link=$CACHE/qemu-binfmt/${QEMU_ARCH[$arch]}-binfmt-P
		mkdir -p "${link%/*}"
		ln -sfn "$qemu" "$link"
		printf ':%s:M::%s:%s:%s:PF\n' "$name" "${BINFMT_MAGIC[$arch]}" "${BINFMT_MASK[$arch]}" "$link" >"$BINFMT/register" ||
			die "binfmt: cannot register $name"
	fi
	runs "$arch" || die "binfmt: $arch programs do not run even through $name"
}

# ensure_emulation — run a program of each of TEST_ARCHES (its busybox) and register qemu for each
# that does not run. binfmt entries are kernel state that a reboot clears, so `up` calls this too.
ensure_emulation() {
	[[ -e $BINFMT/status ]] || mount -t binfmt_misc binfmt_misc "$BINFMT" || die "binfmt: cannot mount $BINFMT"
	local arch report=()
	for arch in "${TEST_ARCHES[@]}"; do
		runs "$arch" || register_qemu "$arch"
		report+=("$arch: $(emulation "$arch")")
	done
	log "architectures: $(IFS=';'; echo "${report[*]}" | sed 's/;/; /g')"
}

# install_busyboxes — Debian's busybox-static of each of TEST_ARCHES, unpacked to
# $(busybox_of ARCH) in the cache: the programs that probe what this host runs, and the foreign
# builders of hack/nix-multiarch.sh. Only missing ones are fetched. apt-get runs with private
# package lists and APT::Architectures set on its command line instead of `dpkg
# --add-architecture`: with foreign architectures in dpkg, every later `apt-get update` on the
# machine also fetches their indexes, and one that fails (seen: bookworm-security's armhf and
# i386 Packages with a size mismatch on the mirror) makes it exit 100, which breaks
# install_packages. Here a failed index only matters if the download then fails.
install_busyboxes() {
	local arch missing=() work deb bin c out archs
	for arch in "${TEST_ARCHES[@]}"; do
		[[ -f $(busybox_of "$arch") ]] || missing+=("$arch")
	done
	((${#missing[@]})) || return 0
	log "busybox: fetching busybox-static for ${missing[*]}"
	work=$(mktemp -d)
	# apt drops privileges to _apt, which must reach the lists and write the download dir.
	chmod 0755 "$work"
	mkdir -p "$work/lists/partial" "$work/debs"
	chown _apt "$work/debs" 2>/dev/null || true
	archs=${missing[*]}
	local apt=(apt-get -q -o "Dir::State::Lists=$work/lists" -o Dir::Cache::pkgcache=
		-o Dir::Cache::srcpkgcache= -o "APT::Architectures=${archs// /,}")
	DEBIAN_FRONTEND=noninteractive "${apt[@]}" update >"$work/update.log" 2>&1 ||
		log "busybox: apt-get update reported errors (ignored unless the download fails)"
	for arch in "${missing[@]}"; do
		(cd "$work/debs" && "${apt[@]}" download "busybox-static:$arch") >"$work/download.log" 2>&1 || {
			cat "$work/update.log" "$work/download.log" >&2
			rm -rf "$work"
			die "busybox: apt-get download busybox-static:$arch failed"
		}
		deb=$(find "$work/debs" -maxdepth 1 -name "busybox-static_*_$arch.deb" | head -n 1)
		[[ -n $deb ]] || { rm -rf "$work"; die "busybox: no busybox-static .deb for $arch"; }
		dpkg-deb -x "$deb" "$work/$arch"
		bin=
		for c in bin/busybox usr/bin/busybox; do
			[[ -f $work/$arch/$c ]] && { bin=$work/$arch/$c; break; }
		done
		[[ -n $bin ]] || { rm -rf "$work"; die "busybox: $(basename "$deb") holds no busybox"; }
		out=$(dirname "$(busybox_of "$arch")")
		mkdir -p "$out"
		install -m 0755 "$bin" "$out/.busybox.tmp"
		mv -f "$out/.busybox.tmp" "$out/busybox"
		log "busybox: $arch <- $(basename "$deb")"
	done
	rm -rf "$work"
}

# go_tool DEST_DIR VERSION LDFLAGS PKG=NAME... — build Go commands at VERSION inside a throw-away
# module (`go install pkg@version` is refused for buildkit: its go.mod has exclude directives)
# into DEST_DIR/NAME. A complete DEST_DIR is reused as is; it appears atomically.
go_tool() {
	local dest=$1 version=$2 ldflags=$3
	shift 3
	local spec need_build=
	for spec in "$@"; do [[ -x $dest/${spec#*=} ]] || need_build=1; done
	if [[ -z $need_build ]]; then
		log "tools: reusing $dest"
		return
	fi
	local start=$SECONDS work gets=()
	work=$(mktemp -d "$TOOLS/.build.XXXXXX")
	for spec in "$@"; do gets+=("${spec%%=*}@$version"); done
	log "tools: building ${gets[*]}"
	(
		set -e
		mkdir -p "$work/mod" "$work/out"
		cd "$work/mod"
		export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
		go mod init storepack-testbed-tools >/dev/null 2>&1
		go get "${gets[@]}"
		for spec in "$@"; do
			go build -trimpath -ldflags "-s -w $ldflags" -o "$work/out/${spec#*=}" "${spec%%=*}"
		done
	) >"$work/build.log" 2>&1 || build_failed "$work" "${gets[*]}"
	install_build "$work" "$dest" "$start"
}

build_tools() {
	set_tool_paths
	mkdir -p "$TOOLS"
	exec 9>"$TOOLS/.lock"
	flock 9
	go_tool "$BUILDKIT_DIR" "$BUILDKIT_VERSION" \
		"-X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit" \
		github.com/moby/buildkit/cmd/buildkitd=buildkitd github.com/moby/buildkit/cmd/buildctl=buildctl
	buildkit_image_tar
	go_tool "$BUILDX_DIR" "$BUILDX_VERSION" \
		"-X github.com/docker/buildx/version.Version=$BUILDX_VERSION -X github.com/docker/buildx/version.Package=github.com/docker/buildx" \
		github.com/docker/buildx/cmd/buildx=buildx
	go_tool "$REGISTRY_DIR" "$REGISTRY_VERSION" \
		"-X github.com/distribution/distribution/v3/version.version=$REGISTRY_VERSION" \
		github.com/distribution/distribution/v3/cmd/registry=registry
	go_tool "$SYFT_DIR" "$SYFT_VERSION" "-X main.version=$SYFT_VERSION" \
		github.com/anchore/syft/cmd/syft=syft
	engine_build
	flock -u 9
}

# buildkit_image_tar — the root file system of a BuildKit image for buildx's docker-container
# driver, which the test bed cannot pull (moby/buildkit is on Docker Hub): the static buildkitd
# and buildctl of the cache (the driver runs `buildctl debug workers` and `buildctl dial-stdio`
# in the container), and Debian's runc with exactly the shared libraries ldd names, at their
# paths. No qemu: the host's binfmt entries have the F flag, so they work in containers too.
# `up` imports it into each Docker 28 engine.
buildkit_image_tar() {
	local tar=$BUILDKIT_IMAGE_TAR runc root lib
	if [[ -f $tar ]]; then
		log "tools: reusing $tar"
		return
	fi
	runc=$(command -v runc) || die "runc not found (run install)"
	root=$(mktemp -d "$TOOLS/.build.XXXXXX")
	mkdir -p "$root/usr/bin" "$root/etc/buildkit" "$root/tmp" "$root/run" "$root/var/lib/buildkit"
	chmod 0755 "$root"
	chmod 1777 "$root/tmp"
	cp "$BUILDKITD" "$BUILDCTL" "$runc" "$root/usr/bin/"
	for lib in $(ldd "$runc" | grep -o '/[^ ]*'); do
		mkdir -p "$root${lib%/*}"
		cp -L "$lib" "$root$lib"
	done
	echo 'root:x:0:0:root:/:/usr/bin/buildkitd' >"$root/etc/passwd"
	echo 'root:x:0:' >"$root/etc/group"
	tar --sort=name --owner=0 --group=0 --numeric-owner -C "$root" -cf "$tar.tmp" . || { rm -rf "$root"; die "tools: cannot write $tar"; }
	rm -rf "$root"
	mv -f "$tar.tmp" "$tar"
	log "tools: wrote $tar (buildkitd, buildctl, $runc and its libraries)"
}

# ---------------------------------------------------------------------------------------------
# Docker Engine 28 (dockerd and docker-proxy built from the Go module proxy)

# moby publishes no go.mod (its module list is vendor.mod/vendor.sum for `go mod vendor`): built
# as a dependency of another module it would compile with go1.16 language rules and misbehave
# silently, so it is built as the main module from a copy of its module zip, with vendor.mod and
# vendor.sum as go.mod and go.sum and no vendor/ (which holds only modules.txt in the zip).
# Its cgo parts need gcc; the tags are those of its static release build without btrfs headers.
ENGINE_BUILD_TAGS='netgo osusergo static_build exclude_graphdriver_btrfs'
ENGINE_VERSION=${STOREPACK_ENGINE_VERSION:-v28.5.2}
ENGINE_DIR=$TOOLS/docker-$ENGINE_VERSION
PACKAGES+=(gcc libc6-dev)

engine_build() {
	local version=$ENGINE_VERSION dest=$ENGINE_DIR
	if [[ -x $dest/dockerd && -x $dest/docker-proxy ]]; then
		log "tools: reusing $dest"
		return
	fi
	command -v gcc >/dev/null || die "engine: gcc not found (run install; moby's cgo parts need it)"
	local start=$SECONDS work src
	work=$(mktemp -d "$TOOLS/.build.XXXXXX")
	log "tools: building Docker Engine $version (dockerd, docker-proxy; about 8 min cold)"
	(
		set -e
		export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=1
		src=$(cd "$work" && go mod download -json "github.com/docker/docker@$version+incompatible" |
			sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
		[[ -d $src ]] || { echo "go mod download gave no directory"; exit 1; }
		cp -r "$src" "$work/moby"
		chmod -R u+w "$work/moby"
		cd "$work/moby"
		rm -rf vendor
		mv vendor.mod go.mod
		mv vendor.sum go.sum
		local ldflags="-X github.com/docker/docker/dockerversion.Version=${version#v}"
		ldflags+=" -X github.com/docker/docker/dockerversion.PlatformName=storepack-testbed"
		for cmd in dockerd docker-proxy; do
			nice -n 10 go build -trimpath -tags "$ENGINE_BUILD_TAGS" -ldflags "-s -w $ldflags" \
				-o "$work/out/$cmd" "./cmd/$cmd"
		done
	) >"$work/build.log" 2>&1 || build_failed "$work" "Docker Engine $version"
	install_build "$work" "$dest" "$start"
}

# build_failed WORK WHAT: shows the end of a failed build's log, removes
# its work directory and stops.
build_failed() {
	tail -n 40 "$1/build.log" >&2
	rm -rf "$1"
	die "tools: building $2 failed"
}

# install_build WORK DEST START: puts a finished build's output (WORK/out)
# in DEST, in place of what was there, and removes its work directory.
install_build() {
	rm -rf "$2"
	mv -T "$1/out" "$2"
	rm -rf "$1"
	log "tools: built $2 in $((SECONDS - $3))s"
}

cmd_install() {
	need_root
	local start=$SECONDS
	install_packages
	ensure_nix_conf
	install_busyboxes
	ensure_emulation
	setup_podman
	command -v go >/dev/null || die "go not found (needed to build the tools)"
	build_tools
	log "install: done in $((SECONDS - start))s; tools in $TOOLS"
}

# ---------------------------------------------------------------------------------------------
# podman (rootless)

# Debian's Podman 4.3.1 and what it needs to run rootless: newuidmap/newgidmap (uidmap),
# user-mode networking with port forwarding (slirp4netns), overlay mounts without root
# (fuse-overlayfs), an OCI runtime (crun) and an init for --init (catatonit).
PODMAN_PACKAGES=(podman uidmap slirp4netns fuse-overlayfs crun catatonit containernetworking-plugins)
# The unprivileged user the rootless tests run as, and the subordinate ids it maps.
ROOTLESS_USER=${TESTBED_ROOTLESS_USER:-storepack-rootless}
ROOTLESS_SUBIDS=65536

# install_podman — the packages, installed as install_packages installs the others.
install_podman() {
	local missing=() p
	for p in "${PODMAN_PACKAGES[@]}"; do pkg_installed "$p" || missing+=("$p"); done
	if ((${#missing[@]} == 0)); then
		log "podman: packages present"
		return
	fi
	local PACKAGES=("${missing[@]}")
	install_packages
}

# free_subid_start FILE — the first id above every range FILE gives out (and above 100000).
free_subid_start() {
	awk -F: 'BEGIN { n = 100000 } NF >= 3 && $2 + $3 > n { n = $2 + $3 } END { print n }' "$1"
}

# ensure_rootless_user — the user, with a home, and a range of ROOTLESS_SUBIDS subordinate uids
# and gids of its own that overlaps no other user's. Existing ones are kept as they are.
ensure_rootless_user() {
	if ! id -u "$ROOTLESS_USER" >/dev/null 2>&1; then
		useradd --create-home --shell /bin/bash --user-group "$ROOTLESS_USER" || die "podman: cannot create user $ROOTLESS_USER"
		log "podman: created user $ROOTLESS_USER"
	fi
	local f start
	for f in /etc/subuid /etc/subgid; do
		[[ -e $f ]] || : >"$f"
		grep -q "^$ROOTLESS_USER:" "$f" && continue
		start=$(free_subid_start "$f")
		printf '%s:%d:%d\n' "$ROOTLESS_USER" "$start" "$ROOTLESS_SUBIDS" >>"$f"
		log "podman: $f: $ROOTLESS_USER:$start:$ROOTLESS_SUBIDS"
	done
}

# ensure_podman_conf — the system's containers.conf, written by the test bed (a file it did not
# write is left alone): Podman's default rlimits (nofile and nproc 1048576) exceed the hard limits
# of some machines, and then no container starts ("error setting rlimit type 7"), so containers
# get limits every machine allows; and runc, since Debian's crun 1.8 refuses a hybrid cgroup
# hierarchy (v1 controllers with cgroup2 mounted at /sys/fs/cgroup/unified, seen here) that runc
# runs on. (Podman 4.3 reads no containers.conf.d drop-in.)
ensure_podman_conf() {
	local f=/etc/containers/containers.conf marker='# written by storepack hack/testbed.sh'
	local want
	want=$(printf '%s\n[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n\n[engine]\nruntime = "runc"\n' "$marker")
	if [[ -e $f ]] && ! grep -qxF "$marker" "$f"; then
		log "podman: $f was not written by the test bed; left as it is"
		return
	fi
	if [[ $(cat "$f" 2>/dev/null) == "$want" ]]; then
		log "podman: $f already configured"
		return
	fi
	mkdir -p "${f%/*}"
	printf '%s\n' "$want" >"$f"
	log "podman: wrote $f"
}

# ensure_tun — rootless networking (slirp4netns) opens /dev/net/tun as the user; udev makes it
# 0666 on a usual Debian, some machines leave it 0600. Device state, so `up` checks it too.
ensure_tun() {
	[[ -c /dev/net/tun ]] || { mkdir -p /dev/net && mknod -m 0666 /dev/net/tun c 10 200; } || die "podman: no /dev/net/tun"
	[[ $(stat -c %a /dev/net/tun) == 666 ]] && return
	chmod 0666 /dev/net/tun
	log "podman: made /dev/net/tun usable by every user (0666, as udev makes it)"
}

setup_podman() {
	install_podman
	ensure_rootless_user
	ensure_podman_conf
	ensure_tun
}

# as_rootless DIR CMD... — CMD as the rootless user with Podman's state under DIR (its own
# storage, runtime dir and config), Podman and the test bed's tools on PATH and no docker.
as_rootless() {
	local dir=$1
	shift
	mkdir -p "$dir/data" "$dir/config" "$dir/run"
	chmod 0700 "$dir/run"
	chown -R "$ROOTLESS_USER:" "$dir"
	runuser -u "$ROOTLESS_USER" -- env -i HOME="$(getent passwd "$ROOTLESS_USER" | cut -d: -f6)" \
		USER="$ROOTLESS_USER" PATH=/usr/local/bin:/usr/bin:/bin XDG_DATA_HOME="$dir/data" \
		XDG_CONFIG_HOME="$dir/config" XDG_RUNTIME_DIR="$dir/run" "$@"
}

# check_podman — what works of rootless Podman here: a container, a published port, a mount.
check_podman() {
	local w rc=0 img
	command -v podman >/dev/null || { printf 'podman: not installed (run: %s install)\n' "$0"; return 0; }
	printf 'podman: %s\n' "$(podman --version)"
	id -u "$ROOTLESS_USER" >/dev/null 2>&1 || { printf 'podman rootless: no user %s (run: %s install)\n' "$ROOTLESS_USER" "$0"; return 0; }
	w=$(mktemp -d /tmp/testbed-podman.XXXXXX)
	chmod 0755 "$w"
	img=$w/busybox.tar
	# A one-layer image of the host's busybox, made here: no registry needed.
	mkdir -p "$w/root/bin"
	cp "$(busybox_of amd64)" "$w/root/bin/busybox"
	ln -s busybox "$w/root/bin/sh"
	(cd "$w/root" && tar -cf "$w/layer.tar" .)
	as_rootless "$w/state" podman import --quiet "$w/layer.tar" testbed-busybox >/dev/null 2>"$w/err" && printf 'podman rootless: import ok\n' ||
		{ printf 'podman rootless: import FAILED: %s\n' "$(tail -n 1 "$w/err")"; rc=1; }
	if ((rc == 0)); then
		as_rootless "$w/state" podman run --rm testbed-busybox /bin/busybox echo hello >"$w/out" 2>"$w/err" && [[ $(cat "$w/out") == hello ]] &&
			printf 'podman rootless: run ok\n' || { printf 'podman rootless: run FAILED: %s\n' "$(tail -n 1 "$w/err")"; rc=1; }
		mkdir -p "$w/vol" && chown "$ROOTLESS_USER:" "$w/vol"
		as_rootless "$w/state" podman run --rm -v "$w/vol:/vol" testbed-busybox /bin/busybox touch /vol/f 2>"$w/err" &&
			[[ $(stat -c %U "$w/vol/f") == "$ROOTLESS_USER" ]] && printf 'podman rootless: volume ok (files owned by %s)\n' "$ROOTLESS_USER" ||
			{ printf 'podman rootless: volume FAILED: %s\n' "$(tail -n 1 "$w/err")"; rc=1; }
		local port
		port=$(free_port)
		if as_rootless "$w/state" podman run -d --rm --name testbed-port -p "127.0.0.1:$port:8080" testbed-busybox \
			/bin/busybox httpd -f -p 8080 -h /bin >/dev/null 2>"$w/err" &&
			timeout 30 sh -c "until curl -fs -o /dev/null http://127.0.0.1:$port/sh; do sleep 0.2; done"; then
			printf 'podman rootless: published port ok\n'
		else
			printf 'podman rootless: published port FAILED: %s\n' "$(tail -n 1 "$w/err")"
			rc=1
		fi
		as_rootless "$w/state" podman rm -f -t 0 testbed-port >/dev/null 2>&1 || true
		as_rootless "$w/state" podman system reset --force >/dev/null 2>&1 || true
	fi
	rm -rf "$w"
	return "$rc"
}

# ---------------------------------------------------------------------------------------------
# process helpers

# alive PID — true while PID runs (a zombie counts as exited).
alive() {
	local st
	[[ -r /proc/$1/stat ]] || return 1
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[[ -n $st && $st != Z && $st != X ]]
}

# ours PID DIR — PID runs and its command line names DIR (guards against recycled PIDs).
ours() { alive "$1" && [[ $(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) == *"$2"* ]]; }

# spawn NAME CMD... — start a daemon in its own session, detached from our stdio (so a caller
# capturing our output does not wait for it), log to $D/logs/NAME.log, pid to $D/pids/NAME.pid.
spawn() {
	local name=$1
	shift
	setsid "$@" </dev/null >>"$D/logs/$name.log" 2>&1 &
	echo $! >"$D/pids/$name.pid"
	SPAWNED=$!
}

show_log() {
	local f=$1
	[[ -e $f ]] || return 0
	printf '==> %s (last %s lines) <==\n' "$f" "$LOG_LINES" >&2
	tail -n "$LOG_LINES" "$f" >&2 || true
}

# wait_ready NAME PID CMD... — poll CMD until it succeeds; fail when PID exits or the deadline of
# `up` passes.
wait_ready() {
	local name=$1 pid=$2
	shift 2
	while :; do
		if "$@" >/dev/null 2>&1; then
			log "$name: ready after $((SECONDS - UP_START))s (pid $pid, log $D/logs/$name.log)"
			return 0
		fi
		if ! alive "$pid"; then
			log "$name: exited before it was ready"
			return 1
		fi
		if ((SECONDS >= UP_DEADLINE)); then
			log "$name: not ready within ${TESTBED_TIMEOUT:-120}s"
			return 1
		fi
		sleep 0.2
	done
}

port_in_use() {
	local hex
	hex=$(printf ':%04X' "$1")
	awk -v p="$hex" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# a port below the usual ephemeral range (32768-60999) that nothing listens on.
free_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 12000))
		port_in_use "$p" || { echo "$p"; return; }
	done
	die "no free port found"
}

abs_dir() { (cd "$1" 2>/dev/null && pwd -P); }

# dir_tag — a short tag derived from $D that names this test bed's bridge (spkTAG) and cgroup
# parent (storepack-TAG), so `down` finds what the daemons left behind even after a crash.
dir_tag() { printf '%s' "$D" | sha256sum | cut -c1-8; }

# ---------------------------------------------------------------------------------------------
# up

start_registry() {
	local attempt pid
	mkdir -p "$D/registry/data"
	for ((attempt = 1; attempt <= 5; attempt++)); do
		PORT=$(free_port)
		cat >"$D/registry/config.yml" <<-EOF
			version: 0.1
			log:
			  level: info
			  accesslog:
			    disabled: true
			storage:
			  filesystem:
			    rootdirectory: $D/registry/data
			  delete:
			    enabled: true
			http:
			  addr: 127.0.0.1:$PORT
		EOF
		spawn registry "$REGISTRY" serve "$D/registry/config.yml"
		pid=$SPAWNED
		if wait_ready registry "$pid" curl -fsS "http://127.0.0.1:$PORT/v2/"; then
			log "registry: listening on 127.0.0.1:$PORT"
			return 0
		fi
		if ! alive "$pid" && grep -q 'address already in use' "$D/logs/registry.log"; then
			log "registry: port $PORT taken meanwhile, trying another"
			continue
		fi
		show_log "$D/logs/registry.log"
		return 1
	done
	return 1
}

start_containerd() {
	local c=$D/containerd
	mkdir -p "$c/root" "$c/state" "$c/opt"
	# An own containerd: dockerd 20.10 would otherwise attach to /run/containerd/containerd.sock
	# whenever a system containerd runs, and share its "moby" namespace with the host engine.
	cat >"$c/config.toml" <<-EOF
		version = 2
		root = "$c/root"
		state = "$c/state"
		disabled_plugins = ["io.containerd.grpc.v1.cri"]
		[grpc]
		  address = "$c/containerd.sock"
		[ttrpc]
		  address = "$c/containerd.sock.ttrpc"
		[plugins."io.containerd.internal.v1.opt"]
		  path = "$c/opt"
	EOF
	spawn containerd containerd --config "$c/config.toml"
	wait_ready containerd "$SPAWNED" ctr --address "$c/containerd.sock" version ||
		{ show_log "$D/logs/containerd.log"; return 1; }
}

# setup_bridge — a bridge of our own for the engine's default "bridge" network: docker0 may
# belong to another engine, and with --bridge=none the engine's BuildKit fails every RUN step
# ("network bridge not found"). Name and a free /24 of 10.213.0.0/16 are recorded in
# $D/docker/bridge so that `down` deletes it. Without iproute2 the engine gets --bridge=none.
# Another engine passes its own: setup_bridge ENGINE NAME RECORD.
setup_bridge() {
	local engine=${1:-dockerd} name=${2:-spk$(dir_tag)} record=${3:-$D/docker/bridge}
	BRIDGE=none
	if ! command -v ip >/dev/null; then
		log "$engine: no ip command; --bridge=none (RUN steps in engine builds need --network=host|none)"
		return 0
	fi
	local n cidr routes
	exec 8>/run/storepack-testbed.lock
	flock 8
	ip link del "$name" >/dev/null 2>&1 || true
	for n in $(shuf -i 1-254); do
		cidr=10.213.$n.0/24
		[[ -z $(ip -4 route show root "$cidr") ]] || continue
		routes=$(ip -4 route show match "$cidr" | grep -v '^default' || true)
		[[ -z $routes ]] || continue
		ip link add "$name" type bridge || break
		printf '%s\n' "$name" >"$record"
		{ ip addr add "10.213.$n.1/24" dev "$name" && ip link set "$name" up; } || break
		BRIDGE=$name
		log "$engine: bridge $name 10.213.$n.1/24"
		break
	done
	flock -u 8
	exec 8>&-
	[[ $BRIDGE != none ]] || log "$engine: could not set up a bridge; --bridge=none"
}

# delete_bridge RECORD — delete the bridge that setup_bridge recorded in RECORD.
delete_bridge() {
	[[ -e $1 ]] || return 0
	local br
	br=$(<"$1")
	[[ -z $br ]] || ! ip link show "$br" >/dev/null 2>&1 || ip link del "$br" || log "cannot delete bridge $br"
	rm -f "$1"
}

start_dockerd() {
	mkdir -p "$D/docker/data" "$D/docker/exec"
	setup_bridge
	cat >"$D/docker/daemon.json" <<-EOF
		{
		  "features": {"buildkit": true},
		  "registry-mirrors": ["http://127.0.0.1:$PORT"]
		}
	EOF
	# Own bridge (not docker0), --iptables=false --ip-masq=false --ip-forward=false: this engine
	# neither needs nor disturbs the network state of another engine on the machine. Published
	# ports (-p) go through docker-proxy, which needs none of those.
	spawn dockerd dockerd \
		--host "unix://$D/docker.sock" \
		--data-root "$D/docker/data" \
		--exec-root "$D/docker/exec" \
		--pidfile "$D/docker/dockerd.pid" \
		--config-file "$D/docker/daemon.json" \
		--containerd "$D/containerd/containerd.sock" \
		--shutdown-timeout 2 \
		--exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/storepack-$(dir_tag)/docker" \
		--bridge="$BRIDGE" --iptables=false --ip-masq=false --ip-forward=false \
		--insecure-registry "127.0.0.1:$PORT"
	wait_ready dockerd "$SPAWNED" "$DEBIAN_DOCKER" -H "unix://$D/docker.sock" version ||
		{ show_log "$D/logs/dockerd.log"; return 1; }
}

# a tiny busybox image for `docker run`, in the engine (busybox:latest) and in the registry
# (library/busybox:latest, which is also docker.io/library/busybox for buildkitd's mirror).
seed_busybox() {
	local rootfs=$D/tmp/busybox-rootfs out bb=/bin/busybox a
	[[ -x $bb ]] || bb=$(command -v busybox) || die "busybox-static not installed"
	rm -rf "$rootfs"
	mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc"
	cp "$bb" "$rootfs/bin/busybox"
	for a in $("$bb" --list); do [[ $a == busybox ]] || ln -sf busybox "$rootfs/bin/$a"; done
	echo 'root:x:0:0:root:/:/bin/sh' >"$rootfs/etc/passwd"
	echo 'root:x:0:' >"$rootfs/etc/group"
	tar -C "$rootfs" -c . | dk import --change 'CMD ["/bin/sh"]' \
		--change 'ENV PATH=/bin' - "$BUSYBOX_IMAGE" >/dev/null
	rm -rf "$rootfs"
	out=$(dk run --rm "$BUSYBOX_IMAGE" /bin/sh -c 'echo run-ok') ||
		{ show_log "$D/logs/dockerd.log"; die "docker run failed"; }
	[[ $out == run-ok ]] || die "docker run printed '$out'"
	dk tag "$BUSYBOX_IMAGE" "127.0.0.1:$PORT/library/busybox:latest"
	dk push -q "127.0.0.1:$PORT/library/busybox:latest" >/dev/null ||
		{ show_log "$D/logs/registry.log"; die "docker push to 127.0.0.1:$PORT failed"; }
	dk rmi "127.0.0.1:$PORT/library/busybox:latest" >/dev/null
	log "dockerd: docker run and push of $BUSYBOX_IMAGE work"
}

dk() { DOCKER_CONFIG=$D/docker-config "$DEBIAN_DOCKER" -H "unix://$D/docker.sock" "$@"; }

# ---------------------------------------------------------------------------------------------
# Docker Engine 28 in `up`: two engines beside 20.10, one per image store

# The engines and their image stores: "classic" (overlay2 graph driver, the store of upgraded
# installs) and "containerd" (the containerd image store, the default of new installs since
# Docker 29). Each has its own socket, data root, exec root, pid file, bridge and cgroup parent
# under $D/docker28-STORE, and a containerd namespace of its own in the test bed's containerd
# (Debian's 1.6, already running for 20.10: Docker 28 works with it, a second containerd would
# only cost memory, and namespaces keep the engines' images, containers and leases apart).
ENGINE28_STORES=(classic containerd)

engine28_dir() { echo "$D/docker28-$1"; }
engine28_host() { echo "unix://$(engine28_dir "$1")/docker.sock"; }
dk28() {
	local store=$1
	shift
	DOCKER_CONFIG=$D/docker-config "$DEBIAN_DOCKER" -H "$(engine28_host "$store")" "$@"
}

start_engine28() {
	# BRIDGE stays 20.10's (TESTBED_ENGINE_BRIDGE); setup_bridge sets this one.
	local store=$1 e snapshotter=false BRIDGE
	e=$(engine28_dir "$store")
	[[ $store == containerd ]] && snapshotter=true
	mkdir -p "$e/data" "$e/exec"
	setup_bridge "docker28-$store" "spk$(dir_tag)${store:0:2}" "$e/bridge"
	cat >"$e/daemon.json" <<-EOF
		{
		  "features": {"buildkit": true, "containerd-snapshotter": $snapshotter},
		  "registry-mirrors": ["http://127.0.0.1:$PORT"]
		}
	EOF
	# Networking as 20.10's (see start_dockerd); the userland proxy must be the engine's own
	# version, and a docker-proxy on PATH would be Debian's 20.10 one.
	spawn "docker28-$store" "$ENGINE_DIR/dockerd" \
		--host "$(engine28_host "$store")" \
		--data-root "$e/data" \
		--exec-root "$e/exec" \
		--pidfile "$e/dockerd.pid" \
		--config-file "$e/daemon.json" \
		--containerd "$D/containerd/containerd.sock" \
		--containerd-namespace "docker28-$store" \
		--containerd-plugins-namespace "docker28-$store-plugins" \
		--userland-proxy-path "$ENGINE_DIR/docker-proxy" \
		--shutdown-timeout 2 \
		--exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/storepack-$(dir_tag)/docker28-$store" \
		--bridge="$BRIDGE" --iptables=false --ip-masq=false --ip-forward=false \
		--insecure-registry "127.0.0.1:$PORT"
	wait_ready "docker28-$store" "$SPAWNED" dk28 "$store" version ||
		{ show_log "$D/logs/docker28-$store.log"; return 1; }
}

# seed_engine28 STORE — the test bed's busybox in the engine, pulled through its docker.io
# mirror (the registry, which seed_busybox filled), and a container run of it.
seed_engine28() {
	local store=$1 out
	dk28 "$store" pull -q "$BUSYBOX_IMAGE" >/dev/null ||
		{ show_log "$D/logs/docker28-$store.log"; die "docker28-$store: pull of $BUSYBOX_IMAGE through the mirror failed"; }
	out=$(dk28 "$store" run --rm "$BUSYBOX_IMAGE" /bin/sh -c 'echo run-ok') ||
		{ show_log "$D/logs/docker28-$store.log"; die "docker28-$store: docker run failed"; }
	[[ $out == run-ok ]] || die "docker28-$store: docker run printed '$out'"
	log "docker28-$store: $(engine28_describe "$store"); docker run of $BUSYBOX_IMAGE works"
}

# engine28_describe STORE — the engine's version and image store, as the engine reports them.
engine28_describe() {
	dk28 "$1" info --format 'Docker {{.ServerVersion}}, storage driver {{.Driver}}{{range .DriverStatus}}{{if eq (index . 0) "driver-type"}} ({{index . 1}}){{end}}{{end}}'
}

start_engines28() {
	local store
	[[ -x $ENGINE_DIR/dockerd && -x $ENGINE_DIR/docker-proxy ]] || die "missing $ENGINE_DIR (run: $0 install)"
	for store in "${ENGINE28_STORES[@]}"; do start_engine28 "$store"; done
	for store in "${ENGINE28_STORES[@]}"; do seed_engine28 "$store"; done
	[[ -f $BUILDKIT_IMAGE_TAR ]] || die "missing $BUILDKIT_IMAGE_TAR (run: $0 install)"
	for store in "${ENGINE28_STORES[@]}"; do seed_buildkit_image "$store"; done
}

# seed_buildkit_image STORE — the BuildKit image of buildx's docker-container driver in the
# engine (TESTBED_BUILDKIT_IMAGE, for `--driver-opt image=`): the driver's pull of it fails, and
# then it uses the engine's own. Docker 28 only: the driver's container is privileged, and
# Docker 20.10 gives a privileged container every capability the kernel knows, which runc
# cannot where this process's bounding set lacks one; Docker 28 gives those of the bounding set.
seed_buildkit_image() {
	dk28 "$1" import --change 'ENTRYPOINT ["/usr/bin/buildkitd"]' --change 'ENV PATH=/usr/bin' \
		"$BUILDKIT_IMAGE_TAR" "$BUILDKIT_IMAGE" >/dev/null || die "docker28-$1: docker import of $BUILDKIT_IMAGE_TAR failed"
	log "docker28-$1: $BUILDKIT_IMAGE imported"
}

stop_engines28() {
	local store
	for store in "${ENGINE28_STORES[@]}"; do
		stop_pid "docker28-$store"
		delete_bridge "$(engine28_dir "$store")/bridge"
	done
}

# engines_list — every engine of the bed as NAME=DOCKER_HOST, space-separated, 20.10 first
# (TESTBED_ENGINES in DIR/env).
engines_list() {
	local store list="docker20.10=unix://$D/docker.sock"
	for store in "${ENGINE28_STORES[@]}"; do list+=" docker28-$store=$(engine28_host "$store")"; done
	echo "$list"
}

start_buildkitd() {
	local snap
	mkdir -p "$D/buildkit"
	for snap in overlayfs native; do
		cat >"$D/buildkitd.toml" <<-EOF
			root = "$D/buildkit"
			[grpc]
			  address = ["unix://$D/buildkitd.sock"]
			[worker.oci]
			  enabled = true
			  snapshotter = "$snap"
			  defaultCgroupParent = "/storepack-$(dir_tag)/buildkit"
			[worker.containerd]
			  enabled = false
			[registry."docker.io"]
			  mirrors = ["127.0.0.1:$PORT"]
			[registry."127.0.0.1:$PORT"]
			  http = true
		EOF
		spawn buildkitd "$BUILDKITD" \
			--config "$D/buildkitd.toml" \
			--root "$D/buildkit" \
			--addr "unix://$D/buildkitd.sock" \
			--oci-worker-snapshotter="$snap" \
			--containerd-worker=false \
			--otel-socket-path "$D/buildkit/otel-grpc.sock"
		if wait_ready buildkitd "$SPAWNED" "$BUILDCTL" --addr "unix://$D/buildkitd.sock" debug workers; then
			SNAPSHOTTER=$snap
			log "buildkitd: snapshotter $snap"
			return 0
		fi
		show_log "$D/logs/buildkitd.log"
		if [[ $snap == overlayfs ]] && ((SECONDS < UP_DEADLINE)); then
			stop_pid buildkitd
			log "buildkitd: overlayfs failed, falling back to the native snapshotter"
			continue
		fi
		return 1
	done
}

setup_buildx() {
	local cfg=$D/docker-config
	mkdir -p "$cfg/cli-plugins"
	[[ -e $cfg/config.json ]] || echo '{}' >"$cfg/config.json"
	ln -sfn "$BUILDX" "$cfg/cli-plugins/docker-buildx"
	# A directory brought up before keeps its builder's definition: replace it.
	dk buildx rm "$BUILDER_NAME" >/dev/null 2>&1 || true
	dk buildx create --name "$BUILDER_NAME" --driver remote "unix://$D/buildkitd.sock" >/dev/null
	dk buildx inspect --bootstrap "$BUILDER_NAME" >"$D/tmp/buildx-inspect.txt" 2>&1 ||
		{ cat "$D/tmp/buildx-inspect.txt" >&2; die "buildx builder $BUILDER_NAME does not work"; }
	log "buildx: builder $BUILDER_NAME -> unix://$D/buildkitd.sock"
}

write_env() {
	local tools_path=$BUILDKIT_DIR:$BUILDX_DIR:$REGISTRY_DIR:$SYFT_DIR
	local -a vars=(
		TESTBED_DIR "$D"
		DOCKER_HOST "unix://$D/docker.sock"
		DOCKER_CONFIG "$D/docker-config"
		TESTBED_ENGINES "$(engines_list)"
		BUILDKIT_HOST "unix://$D/buildkitd.sock"
		BUILDX_BUILDER "$BUILDER_NAME"
		STOREPACK_REGISTRY "127.0.0.1:$PORT"
		STOREPACK_DOCKER "$DEBIAN_DOCKER"
		TESTBED_TOOLS_PATH "$tools_path"
		TESTBED_BUILDKIT_VERSION "$BUILDKIT_VERSION"
		TESTBED_BUILDKIT_SNAPSHOTTER "$SNAPSHOTTER"
		TESTBED_BUSYBOX_IMAGE "$BUSYBOX_IMAGE"
		TESTBED_BUILDKIT_IMAGE "$BUILDKIT_IMAGE"
		TESTBED_CGROUP_PARENT "/storepack-$(dir_tag)"
		TESTBED_ENGINE_BRIDGE "$BRIDGE"
		PATH "$tools_path:$ORIG_PATH"
	)
	local i
	: >"$D/env.tmp"
	for ((i = 0; i < ${#vars[@]}; i += 2)); do
		printf 'export %s=%q\n' "${vars[i]}" "${vars[i + 1]}" >>"$D/env.tmp"
	done
	mv "$D/env.tmp" "$D/env"
}

up_failed() {
	local rc=$?
	((rc != 0)) || return 0
	[[ -z ${UP_OK:-} ]] || return 0
	log "up failed (exit $rc); logs are under $D/logs"
	if [[ ${TESTBED_KEEP_ON_FAILURE:-} == 1 ]]; then
		log "TESTBED_KEEP_ON_FAILURE=1: leaving it running; run: $0 down $D"
	else
		log "stopping what was started"
		cmd_down "$D" || true
	fi
}

cmd_up() {
	need_root
	[[ $# == 1 ]] || die "usage: $0 up DIR"
	mkdir -p "$1"
	D=$(abs_dir "$1")
	[[ ! -e $D/env ]] || die "$D is already up (run: $0 down $D)"
	set_tool_paths
	local t
	for t in "$BUILDKITD" "$BUILDCTL" "$BUILDX" "$REGISTRY" "$SYFT"; do
		[[ -x $t ]] || die "missing $t (run: $0 install)"
	done
	for t in dockerd containerd ctr runc curl "$DEBIAN_DOCKER"; do
		command -v "$t" >/dev/null || die "missing $t (run: $0 install)"
	done
	[[ -x $(busybox_of "${TEST_ARCHES[0]}") ]] || die "missing busybox for ${TEST_ARCHES[0]} (run: $0 install)"
	ensure_emulation
	! command -v podman >/dev/null || ensure_tun
	mkdir -p "$D/logs" "$D/pids" "$D/tmp"
	UP_START=$SECONDS
	UP_DEADLINE=$((SECONDS + ${TESTBED_TIMEOUT:-120}))
	trap up_failed EXIT
	start_registry
	start_containerd
	start_dockerd
	start_buildkitd
	setup_buildx
	seed_busybox
	start_engines28
	write_env
	UP_OK=1
	log "up: ready in $((SECONDS - UP_START))s"
	log "logs: $D/logs/{registry,containerd,dockerd,buildkitd,docker28-*}.log"
	log "env:  source $D/env"
}

# ---------------------------------------------------------------------------------------------
# down

# stop_pid NAME — SIGTERM the daemon recorded in $D/pids/NAME.pid, wait, then SIGKILL.
stop_pid() {
	local name=$1 f=$D/pids/$1.pid pid i
	[[ -e $f ]] || return 0
	pid=$(<"$f")
	if [[ $pid =~ ^[0-9]+$ ]] && ours "$pid" "$D"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < ${TESTBED_STOP_TIMEOUT:-30} * 10; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			log "$name: still running after SIGTERM, sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			for ((i = 0; i < 100; i++)); do
				alive "$pid" || break
				sleep 0.1
			done
		fi
		if alive "$pid"; then log "$name: pid $pid does not exit"; else log "$name: stopped (pid $pid)"; fi
	fi
	rm -f "$f"
}

# What a killed daemon leaves behind: container processes (in the cgroup parent storepack-TAG
# that dockerd and buildkitd were given) and containerd shims / runc, which name DIR in their
# command line (containerd-shim-runc-v2 -address DIR/containerd/containerd.sock).
sweep_leftovers() {
	local cg p comm i killed=() d
	cg=/storepack-$(dir_tag)/
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[[ $p != "$$" ]] || continue
		comm=$(cat "/proc/$p/comm" 2>/dev/null) || continue
		if ! grep -qF -- ":$cg" "/proc/$p/cgroup" 2>/dev/null; then
			case $comm in
			containerd-shim* | runc | buildkit-runc | containerd | dockerd | buildkitd | registry | docker-proxy) ;;
			*) continue ;;
			esac
			ours "$p" "$D" || continue
		fi
		log "killing leftover $comm (pid $p)"
		kill -KILL "$p" 2>/dev/null && killed+=("$p")
	done
	for p in "${killed[@]}"; do
		for ((i = 0; i < 50; i++)); do
			alive "$p" || break
			sleep 0.1
		done
	done
	# empty cgroup directories (one per controller hierarchy on cgroup v1), deepest first
	if [[ -d /sys/fs/cgroup ]]; then
		while IFS= read -r d; do
			for ((i = 0; i < 20; i++)); do
				rmdir "$d" 2>/dev/null && break
				[[ -d $d ]] || break
				sleep 0.1
			done
			[[ ! -d $d ]] || log "cannot remove cgroup $d"
		done < <(find /sys/fs/cgroup -mindepth 1 -maxdepth 8 -depth -type d -path "*${cg%/}*" 2>/dev/null)
	fi
}

unmount_all() {
	local mp pass
	for ((pass = 1; pass <= 3; pass++)); do
		local -a mps=()
		# mountinfo field 5 is the mount point, octal-escaped; reverse order = children first.
		while IFS= read -r mp; do
			mp=$(printf '%b' "$mp")
			[[ $mp == "$D" || $mp == "$D"/* ]] && mps+=("$mp")
		done < <(awk '{ print $5 }' /proc/self/mountinfo | tac)
		((${#mps[@]})) || return 0
		for mp in "${mps[@]}"; do
			umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || log "cannot unmount $mp"
		done
	done
}

cmd_down() {
	[[ $# == 1 ]] || die "usage: $0 down DIR"
	local dir
	dir=$(abs_dir "$1") || { log "down: $1 does not exist; nothing to do"; return 0; }
	D=$dir
	if [[ -d $D/pids ]]; then
		stop_pid buildkitd
		stop_engines28
		stop_pid dockerd
		stop_pid containerd
		stop_pid registry
	fi
	sweep_leftovers
	delete_bridge "$D/docker/bridge"
	unmount_all
	rm -f "$D/env"
	log "down: $D stopped"
}

# ---------------------------------------------------------------------------------------------
# logs, check

cmd_logs() {
	[[ $# == 1 ]] || die "usage: $0 logs DIR"
	local f
	for f in "$1"/logs/*.log; do
		[[ -e $f ]] || continue
		printf '==> %s <==\n' "$f"
		tail -n "$LOG_LINES" "$f"
		echo
	done
}

# check_engines28 WORK — on each Docker 28 engine: what it is, docker run, a BuildKit build with
# a RUN step through Debian's client (the engine's own BuildKit) and the built image run, and a
# build through buildx's docker driver (the builder "default" of the engine's context).
check_engines28() {
	local w=$1 store host
	for store in "${ENGINE28_STORES[@]}"; do
		host=$(engine28_host "$store")
		log "check: docker28-$store: $(engine28_describe "$store")"
		(
			export DOCKER_HOST=$host
			set -x
			"$STOREPACK_DOCKER" run --rm "$TESTBED_BUSYBOX_IMAGE" /bin/sh -c "echo hello from docker28-$store"
			DOCKER_BUILDKIT=1 "$STOREPACK_DOCKER" build -q -t testbed-check:run "$w/run"
			"$STOREPACK_DOCKER" run --rm testbed-check:run cat /out.txt
			docker buildx build -q --builder default -t testbed-check:buildx "$w/scratch"
			"$STOREPACK_DOCKER" rmi testbed-check:run testbed-check:buildx
		)
	done
}

cmd_check() {
	[[ $# -le 1 ]] || die "usage: $0 check [DIR]"
	local dir w arch
	for arch in "${TEST_ARCHES[@]}"; do
		if runs "$arch"; then
			printf '%s: %s\n' "$arch" "$(emulation "$arch")"
		else
			printf '%s: does not run (run: %s install)\n' "$arch" "$0"
		fi
	done
	check_podman || die "check: rootless podman does not work"
	[[ $# == 1 ]] || return 0
	dir=$(abs_dir "$1") || die "no such dir $1"
	[[ -e $dir/env ]] || die "$dir is not up"
	# shellcheck disable=SC1091
	source "$dir/env"
	w=$(mktemp -d "$dir/tmp/check.XXXXXX")
	mkdir "$w/scratch" "$w/run"
	printf 'FROM scratch\nCOPY a.txt /\n' >"$w/scratch/Dockerfile"
	echo check >"$w/scratch/a.txt"
	printf 'FROM busybox\nRUN echo run-step >/out.txt\n' >"$w/run/Dockerfile"
	set -x
	"$STOREPACK_DOCKER" run --rm "$TESTBED_BUSYBOX_IMAGE" /bin/sh -c 'echo hello from docker run'
	DOCKER_BUILDKIT=1 "$STOREPACK_DOCKER" build -q -t testbed-check:scratch "$w/scratch"
	DOCKER_BUILDKIT=1 "$STOREPACK_DOCKER" build -q -t testbed-check:run "$w/run"
	"$STOREPACK_DOCKER" run --rm testbed-check:run cat /out.txt
	buildctl build --progress=quiet --frontend dockerfile.v0 --local context="$w/scratch" \
		--local dockerfile="$w/scratch" --output "type=oci,dest=$w/buildctl.tar"
	buildctl build --progress=quiet --frontend dockerfile.v0 --local context="$w/run" \
		--local dockerfile="$w/run" --output "type=oci,dest=$w/buildctl-run.tar"
	"$STOREPACK_DOCKER" buildx build -q --builder "$BUILDX_BUILDER" -o "type=oci,dest=$w/buildx.tar" "$w/scratch"
	docker buildx build -q --builder "$BUILDX_BUILDER" --push -t "$STOREPACK_REGISTRY/testbed-check:latest" "$w/scratch"
	"$STOREPACK_DOCKER" tag testbed-check:run "$STOREPACK_REGISTRY/testbed-check:run"
	"$STOREPACK_DOCKER" push -q "$STOREPACK_REGISTRY/testbed-check:run"
	curl -fsS "http://$STOREPACK_REGISTRY/v2/testbed-check/tags/list"
	tar -tf "$w/buildx.tar" index.json
	{ set +x; } 2>/dev/null
	D=$dir check_engines28 "$w"
	rm -rf "$w"
	log "check: all good"
}

case ${1:-} in
install) shift; cmd_install "$@" ;;
up) shift; cmd_up "$@" ;;
down) shift; cmd_down "$@" ;;
logs) shift; cmd_logs "$@" ;;
check) shift; cmd_check "$@" ;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
	;;
esac
