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
for t in "${targets[@]}"; do
	read -r dir name <<<"$t"
	echo "fuzz: $dir $name ($FUZZTIME)"
	$GO test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" "$dir"
done
echo "fuzz: ${#targets[@]} targets, none crashed"
