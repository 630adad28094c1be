#!/usr/bin/env bash
# Times `repricer reprice` and `repricer-beam` on Prism (in-process) over the
# same generated claim file (2,000 contracts, 1M rates), one after the other
# in one run, and prints the ratios of their wall-clock and CPU times; the
# Beam run also writes a CPU profile (go tool pprof -top).
#
#   beam/scripts/measure.sh [LINES] [WORKDIR]     (defaults: 1000000, /tmp/repricer-beam-measure)
#
# On a shared machine the absolute times move with the load; the ratio of
# two runs taken back to back moves less, and the CPU seconds less still.
# Both runs write CSV and include loading the schedule.
set -euo pipefail
cd "$(dirname "$0")/../.."
lines=${1:-1000000}
work=${2:-/tmp/repricer-beam-measure}
mkdir -p "$work"
go build -o "$work/repricer" ./cmd/repricer
(cd beam && go build -o "$work/repricer-beam" ./cmd/repricer-beam)
if [ ! -f "$work/data/claims.csv" ] || [ "$(cat "$work/data/lines" 2>/dev/null)" != "$lines" ]; then
	"$work/repricer" gen --out "$work/data" --lines "$lines" -q
	echo "$lines" > "$work/data/lines"
fi
rm -rf "$work/out-single" "$work/out-beam"

# Wall-clock and CPU seconds (user + system) of each process.
/usr/bin/time -o "$work/single.time" -f "%e %U %S" \
	"$work/repricer" reprice --contracts "$work/data/contracts" --claims "$work/data/claims.csv" \
	--out "$work/out-single" --ledger none >/dev/null
/usr/bin/time -o "$work/beam.time" -f "%e %U %S" \
	"$work/repricer-beam" --contracts "$work/data/contracts" --claims "$work/data/claims.csv" \
	--out "$work/out-beam" --cpuprofile "$work/beam.pprof" 2>"$work/beam.log"

python3 - "$lines" "$work/single.time" "$work/beam.time" <<'PY'
import sys
n = float(sys.argv[1])
(sw, su, ss), (bw, bu, bs) = (map(float, open(f).read().split()) for f in sys.argv[2:])
sc, bc = su + ss, bu + bs
print(f"lines {int(n)}: repricer reprice {sw:.1f}s wall, {sc:.1f}s CPU; "
      f"repricer-beam on Prism {bw:.1f}s wall, {bc:.1f}s CPU")
print(f"Prism / repricer reprice: {bw/sw:.1f}x the wall-clock time, {bc/sc:.1f}x the CPU time; "
      f"Prism {n/bc:,.0f} lines per CPU-second, repricer reprice {n/sc:,.0f}")
PY
echo "profile: go tool pprof -top $work/repricer-beam $work/beam.pprof"
