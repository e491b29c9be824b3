#!/usr/bin/env bash
# hack/fuzz.sh — run every fuzz target of the module for a short time
# (FUZZTIME, default 5s each), after its committed seed corpus: a crash
# fails the run, and Go writes the input that found it under the package's
# testdata/fuzz/, to be committed with the fix so the corpus keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5s}
mapfile -t targets < <(grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r file; do
	dir=$(dirname "$file")
	grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed "s|^func |$dir |"
done)
[[ ${#targets[@]} -gt 0 ]] || { echo "fuzz: no fuzz targets found" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
	read -r dir name <<<"$t"
	for attempt in 1 2; do
		echo "fuzz: $dir $name ($FUZZTIME)"
		if $GO test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" "$dir" 2>&1 | tee "$log"; then
			break
		fi
		# Go before 1.27 can fail a target at the end of -fuzztime with a bare
		# "context deadline exceeded" and no input (golang/go#75804): run it
		# once more. A crash writes its input, and fails at once.
		if [[ $attempt == 2 ]] || grep -q 'Failing input written to' "$log" || ! grep -qx '    context deadline exceeded' "$log"; then
			exit 1
		fi
		echo "fuzz: $name stopped with the fuzzing coordinator's deadline race (golang/go#75804), no input written: once more"
	done
done
echo "fuzz: ${#targets[@]} targets, none crashed"
