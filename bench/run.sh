#!/usr/bin/env bash
# Benchmarks repricer against an equivalent DuckDB query on synthetic data.
#
#   bench/run.sh                      # 10M lines, 2,000 contracts, 1M rates
#   BENCH_LINES=100000 bench/run.sh   # a quick run of the plumbing
#
# Environment: BENCH_LINES (default 10000000), BENCH_SMALL_LINES (default
# 1000000, the second run for the RSS flatness ratio), BENCH_CONTRACTS
# (2000), BENCH_RATES (1000000), BENCH_DIR (default: a new temp dir, kept),
# BENCH_FORMAT (parquet, the default, or csv; DuckDB runs only on Parquet),
# BENCH_REPEAT (default 3: the big run is repeated and its median lines/s
# reported with the range, because a shared machine's speed drifts by a
# tenth or more from one run to the next), BENCH_DUCKDB_MEMORY (default 8GB:
# DuckDB's memory_limit, so that on a shared machine its step neither runs the
# machine out of memory nor gets killed, which used to leave no table).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
lines="${BENCH_LINES:-10000000}"
small="${BENCH_SMALL_LINES:-1000000}"
ncontracts="${BENCH_CONTRACTS:-2000}"
nrates="${BENCH_RATES:-1000000}"
work="${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/repricer-bench.XXXXXX")}"
mkdir -p "$work"
bin="$work/bin"
mkdir -p "$bin"

echo "== building into $bin" >&2
(cd "$root" && go build -o "$bin/repricer" ./cmd/repricer)
(cd "$here" && go build -o "$bin/duckbench" ./cmd/duckbench)

format="${BENCH_FORMAT:-parquet}"
echo "== claim format: $format" >&2

# reprice_run N: generate N lines (once) and reprice them; sets RSS_KB and LPS.
reprice_run() {
	local n="$1" dir="$work/n$1"
	if [[ ! -f "$dir/claims.$format" ]]; then
		echo "== generating $n lines, $ncontracts contracts, $nrates rates in $dir" >&2
		"$bin/repricer" gen --out "$dir" --lines "$n" --contracts "$ncontracts" --rates "$nrates" --format "$format" >&2
		# Flush the new files first, so the first run does not compete with
		# writing them back (it ran a quarter slower).
		sync
	fi
	rm -rf "$dir/out"
	echo "== repricer reprice $n lines" >&2
	/usr/bin/time -v "$bin/repricer" reprice --contracts "$dir/contracts" --claims "$dir/claims.$format" \
		--out "$dir/out" --format "$format" 2>"$dir/time.txt" || { cat "$dir/time.txt" >&2; return 1; }
	grep -E '^repricer:' "$dir/time.txt" >&2 || true
	RSS_KB="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$dir/time.txt")"
	LPS="$(python3 -c 'import json,sys; print("%.0f" % json.load(open(sys.argv[1]))["timings"]["lines_per_second"])' "$dir/out/summary.json")"
	# Stages: loading the schedule and publishing the outputs (the wall time
	# outside the run: reading and indexing the rates, then syncing and
	# renaming the files) and the busy time of the reader, the pricing
	# workers (summed) and the writer.
	STAGES="$(python3 - "$dir/out/summary.json" "$dir/time.txt" "$n" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["timings"]
wall = 0.0
for line in open(sys.argv[2]):
    if "Elapsed (wall clock)" in line:
        for part in line.rsplit(" ", 1)[1].strip().split(":"):
            wall = wall * 60 + float(part)
print("%.0f" % (int(sys.argv[3]) / wall if wall > 0 else 0))
print("load+publish %.1fs, run %.1fs (read %.1fs, price %.1fs over %d workers, write %.1fs)" % (
    wall - t["total_seconds"], t["total_seconds"], t["read_seconds"], t["price_seconds"], t["workers"], t["write_seconds"]))
PY
)"
	# The first line is end-to-end lines/s (the load included), the second the stages.
	E2E="${STAGES%%$'\n'*}" STAGES="${STAGES#*$'\n'}"
	echo "   $STAGES; end to end $E2E lines/s" >&2
}

repeat="${BENCH_REPEAT:-3}"
runs=()
big_rss=0
for ((i = 1; i <= repeat; i++)); do
	reprice_run "$lines"
	runs+=("$LPS $RSS_KB $E2E $STAGES")
	((RSS_KB > big_rss)) && big_rss="$RSS_KB"
done
# The median run by lines/s gives the reported speed and stages.
median="$(printf '%s\n' "${runs[@]}" | sort -n -k1,1 | sed -n "$(((repeat + 1) / 2))p")"
read -r big_lps _ big_e2e big_stages <<<"$median"
lps_range="$(printf '%s\n' "${runs[@]}" | sort -n -k1,1 | awk 'NR==1{lo=$1} {hi=$1} END{print lo "-" hi}')"
if [[ "$small" != "$lines" ]]; then
	reprice_run "$small"
	small_rss="$RSS_KB"
else
	small_rss="$big_rss"
fi

duck_lps="n/a" duck_line=""
if [[ "$format" == parquet ]]; then
	# DuckDB reads every column of repricer's last outputs; its counts and
	# totals must be the summary's, or the files are not read as written.
	echo "== duckdb reads repricer's $lines-line outputs" >&2
	check="$("$bin/duckbench" -check "$work/n$lines/out")"
	echo "$check" >&2
	python3 - "$work/n$lines/out/summary.json" "$check" <<'PY'
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

	echo "== duckdb on the same $lines-line file" >&2
	duck_line="$("$bin/duckbench" -contracts "$work/n$lines/contracts" -claims "$work/n$lines/claims.parquet" \
		-out "$work/n$lines/duckdb_priced.parquet" -memory-limit "${BENCH_DUCKDB_MEMORY:-8GB}")"
	echo "$duck_line" >&2
	duck_lps="$(sed -n 's/.*lines_per_sec=\([0-9.]*\).*/\1/p' <<<"$duck_line")"
else
	echo "== skipping DuckDB: it reads the Parquet file only" >&2
fi

python3 - "$lines" "$small" "$big_lps" "$small_rss" "$big_rss" "$duck_lps" "$format" "$big_stages" "$lps_range" "$repeat" "$big_e2e" <<'PY'
import sys
lines, small, lps, small_rss, big_rss, duck, fmt, stages, lps_range, repeat, e2e = sys.argv[1:]
mib = lambda kb: float(kb) / 1024
rows = [
    ("claim format", fmt),
    ("repricer lines/s (%s lines, median of %s)" % (lines, repeat), "%.0f (range %s)" % (float(lps), lps_range)),
    ("repricer end to end lines/s, load included (median run)", e2e),
    ("repricer stages (%s lines)" % lines, stages),
    ("repricer peak RSS at %s lines" % small, "%.0f MiB" % mib(small_rss)),
    ("repricer peak RSS at %s lines (max)" % lines, "%.0f MiB" % mib(big_rss)),
    ("RSS ratio (%s / %s lines)" % (lines, small), "%.2f" % (float(big_rss) / float(small_rss))),
    ("duckdb lines/s", duck),
    ("repricer / duckdb", "%.2f" % (float(lps) / float(duck)) if duck not in ("n/a", "") else "n/a"),
]
w = max(len(k) for k, _ in rows)
print("%-*s  %s" % (w, "metric", "value"))
for k, v in rows:
    print("%-*s  %s" % (w, k, v))
PY
echo "(work files kept in $work)" >&2
