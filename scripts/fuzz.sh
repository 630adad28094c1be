#!/usr/bin/env bash
# fuzz.sh [DURATION]: runs every `func FuzzXxx` target of the module for
# DURATION each (default 10s). Crashers are written under the package's
# testdata/fuzz/ folder by go test; commit them as regression cases.
set -euo pipefail
cd "$(dirname "$0")/.."
time="${1:-10s}"
grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' . | grep -v '^./bench/' | sort | while read -r file; do
	pkg="./$(dirname "${file#./}")"
	for name in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | sed 's/^func //'); do
		echo "fuzz $pkg $name for $time"
		go test -run '^$' -fuzz "^${name}\$" -fuzztime "$time" "$pkg"
	done
done
