#!/usr/bin/env bash
# make demo: install storepack, then build and run its built-in example with
# `docker storepack run`, which prints its greeting. Starts Debian's Docker
# Engine first if no engine answers.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! docker info >/dev/null 2>&1; then
	echo "demo: no Docker Engine answers; starting Debian's docker.io" >&2
	if ! command -v dockerd >/dev/null; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			docker.io containerd runc iptables >/dev/null
	fi
	log=/var/log/storepack-demo-dockerd.log
	nohup dockerd --host unix:///var/run/docker.sock >"$log" 2>&1 &
	for _ in $(seq 120); do
		docker info >/dev/null 2>&1 && break
		kill -0 $! 2>/dev/null || { cat "$log" >&2; exit 1; }
		sleep 0.5 # polling for readiness, bounded by the loop
	done
	docker info >/dev/null
fi

make install

work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
go run ./examples/hello/mkstore "$work"

# The example's store is in the directory, not in /nix/store: --store-root.
echo "demo: docker storepack run --store-root $work/context $work/context/result" >&2
docker storepack run --store-root "$work/context" "$work/context/result"
