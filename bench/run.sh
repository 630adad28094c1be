#!/usr/bin/env bash
# Benchmarks repricer on synthetic data: how fast it starts (the schedule's
# load from a folder, from PostgreSQL and from its compiled image, cold and
# warm), how fast `repricer explain` answers, and how fast it reprices
# BENCH_LINES lines end to end in each claim format, against DuckDB doing the
# same pricing and against DuckDB's plain COPY of the same file. Every figure
# is measured in this run, on this machine, and reported as a ratio to its
# baseline.
#
#   bench/run.sh                      # 10M lines, 2,000 contracts, 1M rates
#   BENCH_LINES=100000 BENCH_SMALL_LINES=20000 bench/run.sh   # the plumbing
#
# Environment: BENCH_LINES (default 10000000), BENCH_SMALL_LINES (default
# 1000000: a second run for the RSS flatness ratio), BENCH_CONTRACTS (2000),
# BENCH_RATES (1000000), BENCH_DIR (default: a new temp dir, kept),
# BENCH_FORMATS (default "parquet csv": input and output format of the end to
# end runs), BENCH_REPEAT (default 3: each timing is the median of that many
# runs, because a shared machine's speed drifts by a tenth or more from one
# run to the next), BENCH_DUCKDB_MEMORY (default 8GB: DuckDB's memory_limit,
# so that on a shared machine its step neither runs the machine out of memory
# nor gets killed), BENCH_POSTGRES (default 1: also time the load from a
# throwaway PostgreSQL cluster, started by scripts/with-postgres.sh; 0 skips
# it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
lines="${BENCH_LINES:-10000000}"
small="${BENCH_SMALL_LINES:-1000000}"
ncontracts="${BENCH_CONTRACTS:-2000}"
nrates="${BENCH_RATES:-1000000}"
formats="${BENCH_FORMATS:-parquet csv}"
repeat="${BENCH_REPEAT:-3}"
work="${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/repricer-bench.XXXXXX")}"
mkdir -p "$work"
bin="$work/bin"
cache="$work/schedule-cache"
results="$work/results.txt" # name value lines, for the table
: >"$results"
mkdir -p "$bin"

echo "== building into $bin" >&2
(cd "$root" && go build -o "$bin/repricer" ./cmd/repricer)
(cd "$here" && go build -o "$bin/duckbench" ./cmd/duckbench)

record() { echo "$1 $2" >>"$results"; }

# wall CMD...: runs CMD with its output discarded and sets WALL (seconds)
# and RSS_KB from /usr/bin/time.
wall() {
	local t="$work/time.txt"
	/usr/bin/time -f '%e %M' -o "$t" "$@" >/dev/null 2>"$work/stderr.txt" || { cat "$work/stderr.txt" >&2; return 1; }
	read -r WALL RSS_KB <"$t"
}

# median_wall N CMD...: WALL is the median of N runs of CMD; before each,
# $BEFORE (when set) is evaluated, e.g. to drop files from the page cache.
median_wall() {
	local n="$1" i walls=()
	shift
	for ((i = 0; i < n; i++)); do
		[[ -n "${BEFORE:-}" ]] && eval "$BEFORE"
		wall "$@"
		walls+=("$WALL")
	done
	WALL="$(printf '%s\n' "${walls[@]}" | sort -g | sed -n "$(((n + 1) / 2))p")"
}

# uncache FILE...: drops the files' pages from the page cache (cold reads).
uncache() {
	python3 - "$@" <<'PY'
import os, sys
for name in sys.argv[1:]:
    fd = os.open(name, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
PY
}

# dataset N FORMAT: generates N lines in FORMAT (once) and sets DIR.
dataset() {
	DIR="$work/n$1-$2"
	if [[ ! -f "$DIR/claims.$2" ]]; then
		echo "== generating $1 lines ($2), $ncontracts contracts, $nrates rates in $DIR" >&2
		"$bin/repricer" gen --out "$DIR" --lines "$1" --contracts "$ncontracts" --rates "$nrates" --format "$2" >&2
		sync # so that the first run does not compete with writing the files back
	fi
}

first_format="${formats%% *}"
dataset 10 csv
one="$DIR" # ten lines of the same schedule: a run that is all start-up
dataset "$lines" "$first_format"
bundle="$DIR/contracts"
line="$(python3 - "$one/claims.csv" <<'PY'
import csv, sys
r = next(csv.DictReader(open(sys.argv[1])))
print(",".join("%s=%s" % (k, r[k]) for k in ("vendor_id", "cpt_code", "service_date", "billed_amount", "place_of_service", "specialty") if r[k]))
PY
)"

echo "== start-up: the schedule from its folder, its image (warm and cold) and explain" >&2
# A run of ten lines is all start-up: median_wall N "${startup[@]}" CONTRACTS --schedule-cache CACHE.
startup=("$bin/repricer" reprice --claims "$one/claims.csv" --out "$work/startup-out" -q --ledger none --contracts)
median_wall "$repeat" "${startup[@]}" "$bundle" --schedule-cache off
record load_folder "$WALL"
wall "$bin/repricer" contracts compile --contracts "$bundle" --schedule-cache "$cache"
record compile_folder "$WALL"
image="$("$bin/repricer" contracts compile --contracts "$bundle" --schedule-cache "$cache" | sed -n 's/^image: //p')"
record image_mib "$(($(stat -c %s "$image") / 1048576))"
median_wall "$repeat" "${startup[@]}" "$bundle" --schedule-cache "$cache"
record load_image_warm "$WALL"
BEFORE="uncache '$image' '$bundle'/*.csv '$bin/repricer'" median_wall "$repeat" "${startup[@]}" "$bundle" --schedule-cache "$cache"
record load_image_cold "$WALL"
median_wall "$repeat" "$bin/repricer" explain --contracts "$bundle" --line "$line" --schedule-cache off
record explain_folder "$WALL"
median_wall "$repeat" "$bin/repricer" explain --contracts "$bundle" --line "$line" --schedule-cache "$cache"
record explain_image "$WALL"

if [[ "${BENCH_POSTGRES:-1}" != 0 ]]; then
	echo "== start-up from PostgreSQL (import first)" >&2
	# The functions run in a child shell under the throwaway cluster.
	export -f wall median_wall record
	export work results cache repeat bundle one BENCH_BIN="$bin" # with-postgres.sh has a $bin of its own
	"$root/scripts/with-postgres.sh" bash -euo pipefail -c '
		"$BENCH_BIN/repricer" db migrate --db "$DATABASE_URL" >/dev/null
		"$BENCH_BIN/repricer" contracts import --from "$bundle" --to "$DATABASE_URL" >/dev/null
		startup=("$BENCH_BIN/repricer" reprice --claims "$one/claims.csv" --out "$work/startup-out" -q --ledger none --contracts "$DATABASE_URL")
		median_wall "$repeat" "${startup[@]}" --schedule-cache off
		record load_postgres "$WALL"
		wall "$BENCH_BIN/repricer" contracts compile --contracts "$DATABASE_URL" --schedule-cache "$cache"
		record compile_postgres "$WALL"
		median_wall "$repeat" "${startup[@]}" --schedule-cache "$cache"
		record load_postgres_image "$WALL"
	' || echo "== PostgreSQL step failed; its rows are left out" >&2
fi

# reprice_run FORMAT CACHE: reprices the dataset DIR; sets WALL, RSS_KB, LPS
# (run phase, from the summary) and STAGES.
reprice_run() {
	rm -rf "$DIR/out"
	wall "$bin/repricer" reprice --contracts "$DIR/contracts" --claims "$DIR/claims.$1" --out "$DIR/out" \
		--format "$1" --ledger none --schedule-cache "$2"
	read -r LPS STAGES < <(python3 - "$DIR/out/summary.json" "$WALL" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["timings"]
wall = float(sys.argv[2])
print("%.0f load+publish %.1fs, run %.1fs (read %.1fs, price %.1fs over %d workers, write %.1fs)" % (
    t["lines_per_second"], wall - t["total_seconds"], t["total_seconds"], t["read_seconds"], t["price_seconds"], t["workers"], t["write_seconds"]))
PY
)
	echo "   $1, cache $2: wall ${WALL}s, run phase $LPS lines/s, RSS $((RSS_KB / 1024)) MiB; $STAGES" >&2
}

for format in $formats; do
	dataset "$lines" "$format"
	"$bin/repricer" contracts compile --contracts "$DIR/contracts" --schedule-cache "$cache" >/dev/null
	echo "== $format -> $format, $lines lines, from the image ($repeat runs) and once from the folder" >&2
	runs=()
	for ((i = 0; i < repeat; i++)); do
		reprice_run "$format" "$cache"
		runs+=("$WALL $LPS $RSS_KB $STAGES")
	done
	read -r w lps rss stages <<<"$(printf '%s\n' "${runs[@]}" | sort -g -k1,1 | sed -n "$(((repeat + 1) / 2))p")"
	record "e2e_wall_$format" "$w"
	record "run_lps_$format" "$lps"
	record "rss_kb_$format" "$rss"
	record "stages_$format" "$stages"
	reprice_run "$format" off
	record "e2e_wall_folder_$format" "$WALL"

	echo "== duckdb: plain COPY of the same $format file" >&2
	ext="$format"
	median_wall "$repeat" "$bin/duckbench" -copy -claims "$DIR/claims.$format" -out "$DIR/duckdb_copy.$ext" \
		-memory-limit "${BENCH_DUCKDB_MEMORY:-8GB}"
	record "duckdb_copy_wall_$format" "$WALL"
	rm -f "$DIR/duckdb_copy.$ext"
done

if [[ "$small" != "$lines" ]]; then
	dataset "$small" "$first_format"
	"$bin/repricer" contracts compile --contracts "$DIR/contracts" --schedule-cache "$cache" >/dev/null
	reprice_run "$first_format" "$cache"
	record rss_kb_small "$RSS_KB"
fi

if [[ " $formats " == *" parquet "* ]]; then
	dataset "$lines" parquet
	reprice_run parquet "$cache"
	# DuckDB reads every column of repricer's outputs; its counts and totals
	# must be the summary's, or the files are not read as written.
	echo "== duckdb reads repricer's $lines-line outputs" >&2
	check="$("$bin/duckbench" -check "$DIR/out")"
	python3 - "$DIR/out/summary.json" "$check" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
got = dict(kv.split("=", 1) for kv in sys.argv[2].split()[1:])
c, t = s["counts"], s["totals"]
want = {"priced": str(c["priced_lines"]), "exceptions": str(c["error_exceptions"] + c["review_exceptions"]),
        "billed": t["billed_priced"], "allowed": t["allowed_amount"], "net": t["net_payable"]}
bad = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
if bad:
    sys.exit("duckdb read other values from repricer's outputs: %s" % bad)
print("   duckdb reads the same counts and totals as the summary", file=sys.stderr)
PY
	echo "== duckdb prices the same $lines-line file" >&2
	duck_line="$("$bin/duckbench" -contracts "$DIR/contracts" -claims "$DIR/claims.parquet" \
		-out "$DIR/duckdb_priced.parquet" -memory-limit "${BENCH_DUCKDB_MEMORY:-8GB}")"
	echo "   $duck_line" >&2
	record duckdb_price_lps "$(sed -n 's/.*lines_per_sec=\([0-9.]*\).*/\1/p' <<<"$duck_line")"
	rm -f "$DIR/duckdb_priced.parquet"
fi

python3 - "$results" "$lines" "$small" "$nrates" "$repeat" "$formats" <<'PY'
import sys
path, lines, small, nrates, repeat, formats = sys.argv[1:]
r = {}
for l in open(path):
    k, _, v = l.rstrip("\n").partition(" ")
    r[k] = v
f = lambda k: float(r[k])
rows = []
def row(name, value):
    rows.append((name, value))
def ratio(a, b):
    return "%.2f" % (f(a) / f(b)) if a in r and b in r and f(b) > 0 else "n/a"
row("schedule: %s rates, image %s MiB" % (nrates, r["image_mib"]), "")
row("  start-up from the folder (s)", r["load_folder"])
row("  start-up from the image, warm page cache (s)", "%s  (%sx faster)" % (r["load_image_warm"], ratio("load_folder", "load_image_warm")))
row("  start-up from the image, cold page cache (s)", "%s  (%sx faster)" % (r["load_image_cold"], ratio("load_folder", "load_image_cold")))
row("  contracts compile from the folder, once (s)", r["compile_folder"])
if "load_postgres" in r:
    row("  start-up from PostgreSQL (s)", r["load_postgres"])
    row("  start-up from PostgreSQL's image (s)", "%s  (%sx faster)" % (r["load_postgres_image"], ratio("load_postgres", "load_postgres_image")))
    row("  contracts compile from PostgreSQL, once (s)", r["compile_postgres"])
row("explain one line: before, from the folder (s)", r["explain_folder"])
row("explain one line: after, from the image (s)", "%s  (%sx faster)" % (r["explain_image"], ratio("explain_folder", "explain_image")))
for fmt in formats.split():
    n = int(lines)
    row("%s -> %s, %s lines (median of %s)" % (fmt, fmt, lines, repeat), "")
    row("  end to end lines/s, load included", "%.0f  (wall %ss; from the folder %.0f, wall %ss)" % (
        n / f("e2e_wall_" + fmt), r["e2e_wall_" + fmt], n / f("e2e_wall_folder_" + fmt), r["e2e_wall_folder_" + fmt]))
    row("  run phase lines/s", r["run_lps_" + fmt])
    row("  stages", r["stages_" + fmt])
    row("  wall / DuckDB plain COPY of the file", "%s  (COPY %ss)" % (ratio("e2e_wall_" + fmt, "duckdb_copy_wall_" + fmt), r["duckdb_copy_wall_" + fmt]))
    row("  peak RSS (MiB)", "%.0f" % (f("rss_kb_" + fmt) / 1024))
if "rss_kb_small" in r:
    first = formats.split()[0]
    row("peak RSS %s / %s lines (%s)" % (lines, small, first), "%s  (%.0f / %.0f MiB)" % (
        ratio("rss_kb_" + first, "rss_kb_small"), f("rss_kb_" + first) / 1024, f("rss_kb_small") / 1024))
if "duckdb_price_lps" in r:
    row("repricer run phase / DuckDB pricing query (parquet)", "%s  (DuckDB %s lines/s)" % (ratio("run_lps_parquet", "duckdb_price_lps"), r["duckdb_price_lps"]))
w = max(len(k) for k, _ in rows)
print("%-*s  %s" % (w, "metric", "value"))
for k, v in rows:
    print("%-*s  %s" % (w, k, v))
PY
echo "(work files kept in $work)" >&2
