#!/usr/bin/env bash
# make demo: build storepack's built-in example with plain `docker build`
# through `# syntax=storepack`, run it, and print its greeting. Starts
# Debian's Docker Engine first if no engine answers.
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

# Docker's built-in BuildKit: the buildx plugin when there is one, else the
# engine's own client with DOCKER_BUILDKIT=1 (Debian's /usr/bin/docker).
tag=storepack-demo:latest
if docker buildx version >/dev/null 2>&1; then
	docker buildx build --load -t "$tag" -f "$work/app.storepack" "$work/context"
else
	client=docker
	[ -x /usr/bin/docker ] && client=/usr/bin/docker
	DOCKER_BUILDKIT=1 "$client" build -t "$tag" -f "$work/app.storepack" "$work/context"
fi
echo "demo: docker run --rm $tag" >&2
docker run --rm "$tag"
