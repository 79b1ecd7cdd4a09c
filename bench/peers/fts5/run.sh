#!/bin/sh
# The SQLite FTS5 peer of `make bench-compare` (README.md beside this file).
#
#   sh bench/peers/fts5/run.sh OUTDIR
#
# Installs libsqlite3-dev (and pkg-config) when missing, compiles fts5bench.c
# into OUTDIR/fts5/, builds OUTDIR/fts5/laws.db (an FTS5 trigram table of the
# shared corpus), runs the benchmark queries warm and in-process, and writes
# OUTDIR/fts5.env (key=value, read by the aggregator), OUTDIR/fts5/hits.tsv
# (query, expected, fts5), OUTDIR/fts5/sql.tsv (the SQL each query ran) and a
# summary on stdout.
#
# Environment:
#   SHARED   the shared folder (default: ../shared beside the project root)
#   QUICK=1  CI check: first 200 documents, first 50 queries, 1 timed run
#   RUNS     timed passes (default 1, not 3: a pass takes ~1.5 min, mostly
#            full scans for 1-2 character terms; README.md, "Timing")
#   CC       the C compiler (default cc)
# Exit status: 0 done, 2 usage, 3 packages missing and not root, 1 any other failure.
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: [SHARED=DIR] [QUICK=1] [RUNS=N] sh bench/peers/fts5/run.sh OUTDIR" >&2
	exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
shared_in=${SHARED:-$root/../shared}
SHARED=$(cd "$shared_in" 2>/dev/null && pwd) || { echo "fts5: no shared folder at $shared_in" >&2; exit 1; }
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
QUICK=${QUICK:-0}
CC=${CC:-cc}
RUNS=${RUNS:-1}
limits=
[ "$QUICK" = 1 ] && limits="--max-docs 200 --max-queries 50"

for f in "$SHARED/corpus/laws" "$SHARED/corpus/seed" "$SHARED/bench/queries.txt" \
	"$SHARED/bench/expected-hits.tsv"; do
	[ -e "$f" ] || { echo "fts5: missing $f" >&2; exit 1; }
done

# 1. Packages: the SQLite headers and library, and pkg-config to find them.
need=
dpkg-query -W -f '${Status}' libsqlite3-dev 2>/dev/null | grep -q 'install ok installed' ||
	need=" libsqlite3-dev"
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
if [ -n "$need" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "fts5: missing packages; install them with:" >&2
		echo "  sudo apt-get install -y$need" >&2
		exit 3
	fi
	echo "fts5: installing$need"
	mkdir -p "$OUT/fts5"
	log=$OUT/fts5/apt.log
	# shellcheck disable=SC2086
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y $need >"$log" 2>&1; then
		apt-get update >>"$log" 2>&1 || true
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y $need >>"$log" 2>&1 ||
			{ echo "fts5: apt-get install failed, see $log" >&2; exit 1; }
	fi
fi
command -v "$CC" >/dev/null 2>&1 || { echo "fts5: no C compiler ($CC); apt-get install -y build-essential" >&2; exit 1; }

# 2. Compile.
work=$OUT/fts5
mkdir -p "$work"
rm -f "$OUT/fts5.env" "$OUT/fts5.env.tmp" "$work/fts5bench"
# shellcheck disable=SC2046
"$CC" -O2 -Wall -Wextra -Werror -o "$work/fts5bench" "$here/fts5bench.c" \
	$(pkg-config --cflags --libs sqlite3)

# 3. Build the database, run the queries, compare (one process: the queries
#    run warm and in-process).
echo "fts5: libsqlite3 $(pkg-config --modversion sqlite3), $("$CC" --version | head -1)"
echo "fts5: corpus $SHARED/corpus, $RUNS timed run(s)$( [ "$QUICK" = 1 ] && echo ', QUICK (200 documents, 50 queries)')"
start=$(date +%s)
# shellcheck disable=SC2086
"$work/fts5bench" --db "$work/laws.db" --env "$OUT/fts5.env.tmp" --hits "$work/hits.tsv" \
	--sql "$work/sql.tsv" --queries "$SHARED/bench/queries.txt" \
	--expected "$SHARED/bench/expected-hits.tsv" --runs "$RUNS" $limits \
	"$SHARED/corpus/laws" "$SHARED/corpus/seed"
mv "$OUT/fts5.env.tmp" "$OUT/fts5.env"
echo "fts5: done in $(( $(date +%s) - start )) s; $OUT/fts5.env, $work/hits.tsv, $work/sql.tsv"
