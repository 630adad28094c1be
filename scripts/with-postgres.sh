#!/usr/bin/env bash
# with-postgres.sh CMD [ARGS...]
#
# Starts a throwaway PostgreSQL cluster, exports DATABASE_URL (and
# REPRICER_REQUIRE_POSTGRES=1, so Postgres-backed tests fail instead of
# skipping), runs CMD, then stops and removes the cluster. Exits with CMD's
# exit code.
#
# The cluster is tuned for tests, not durability: fsync, synchronous_commit
# and full_page_writes are off. It listens on 127.0.0.1 at a free port and on
# a unix socket in its own temporary directory. When run as root, the server
# runs as the "postgres" OS user (initdb refuses root).
#
# Environment:
#   PG_BIN      directory holding initdb/pg_ctl (default: found on PATH or
#               the newest /usr/lib/postgresql/*/bin)
#   PG_KEEP=1   keep the cluster directory after the run (for debugging)
#
# Without server binaries it runs CMD without a database (tests that need one
# skip), unless REPRICER_REQUIRE_POSTGRES=1, when it fails with status 3.
set -euo pipefail

if [ "$#" -eq 0 ]; then
	echo "usage: $0 CMD [ARGS...]" >&2
	exit 2
fi

find_bin() {
	if [ -n "${PG_BIN:-}" ]; then
		echo "$PG_BIN"
		return
	fi
	if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
		dirname "$(command -v pg_ctl)"
		return
	fi
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
	if [ -n "$d" ] && [ -x "$d/initdb" ]; then
		echo "$d"
		return
	fi
	echo "with-postgres.sh: no PostgreSQL server binaries (initdb, pg_ctl) found; set PG_BIN" >&2
	exit 3
}
if ! bin=$(find_bin); then
	# On a laptop without PostgreSQL the database tests skip; where they are
	# required (CI sets REPRICER_REQUIRE_POSTGRES=1) this is a failure.
	if [ "${REPRICER_REQUIRE_POSTGRES:-}" = "1" ]; then
		exit 3
	fi
	echo "with-postgres.sh: running without a database; the tests that need PostgreSQL will skip" >&2
	exec "$@"
fi

free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$(( (RANDOM % 20000) + 30000 ))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo "with-postgres.sh: no free port found" >&2
	exit 3
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/with-postgres.XXXXXX")
chmod 755 "$tmp"
data="$tmp/data"
sock="$tmp/sock"
mkdir -p "$sock"

as_pg=()
if [ "$(id -u)" -eq 0 ]; then
	chown -R postgres:postgres "$tmp"
	as_pg=(runuser -u postgres --)
fi

stop_cluster() {
	if [ -f "$data/postmaster.pid" ]; then
		"${as_pg[@]}" "$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ "${PG_KEEP:-}" != 1 ]; then
		rm -rf "$tmp"
	else
		echo "with-postgres.sh: kept cluster in $tmp" >&2
	fi
}
trap stop_cluster EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"${as_pg[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >"$tmp/initdb.log" 2>&1 || {
	cat "$tmp/initdb.log" >&2
	exit 3
}

started=0
for _ in 1 2 3 4 5; do
	port=$(free_port)
	if "${as_pg[@]}" "$bin/pg_ctl" -D "$data" -l "$tmp/server.log" -w -t 30 \
		-o "-p $port -k $sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=64MB -c max_connections=200 -c work_mem=16MB" \
		start >/dev/null 2>&1; then
		started=1
		break
	fi
done
if [ "$started" != 1 ]; then
	echo "with-postgres.sh: the server did not start:" >&2
	cat "$tmp/server.log" >&2 || true
	exit 3
fi

export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
export REPRICER_REQUIRE_POSTGRES=1
export PGHOST="$sock" PGPORT="$port" PGUSER=postgres

set +e
"$@"
rc=$?
set -e
exit "$rc"
