#!/bin/sh
# bench/peers/sphinx/run.sh OUTDIR — the Sphinx peer of `make bench-compare`.
#
# Installs Debian's sphinxsearch (2.2.11) and libmariadb-dev when missing,
# indexes the shared corpus with Sphinx's recommended Chinese setup
# (ngram_len = 1), starts a private searchd (SphinxQL on 127.0.0.1), runs the
# benchmark queries over one connection (latency, hit counts against
# expected-hits.tsv) and then at 1, 16 and 64 connections (sqlload.c), stops
# searchd, and writes OUTDIR/sphinx.env (key=value) plus OUTDIR/sphinx/
# (config, index, logs, hits.tsv, per-query and load results).
#
# Environment: SHARED (default ../shared beside the project root), QUICK=1
# (~200 documents, 50 queries, short runs: only checks that every step
# works), PORT_BASE (default 9312; the first free port from there is used).
# Exit 3 when packages are missing and this is not root (the apt-get command
# is printed).  README.md beside this file explains the setup and results.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: sh bench/peers/sphinx/run.sh OUTDIR" >&2
	exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
W=$OUT/sphinx
if [ -n "${SHARED:-}" ]; then
	SHARED=$(cd "$SHARED" && pwd)
else
	SHARED=$(cd "$ROOT/../shared" && pwd)
fi
QUICK=${QUICK:-0}
[ "$QUICK" = 1 ] || QUICK=0
PORT_BASE=${PORT_BASE:-9312}

if [ "$QUICK" = 1 ]; then
	NDOCS=200 NQUERIES=50 PASSES=1 DUR=1
else
	NDOCS='' NQUERIES='' PASSES=3 DUR=5
fi
CONNS="1 16 64"
MAX_CHILDREN=128

say() { printf 'sphinx: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# ------------------------------------------------------------ 1. packages
need=
command -v indexer > /dev/null 2>&1 && command -v searchd > /dev/null 2>&1 || need="$need sphinxsearch"
command -v pkg-config > /dev/null 2>&1 || need="$need pkg-config"
if ! pkg-config --exists libmariadb 2> /dev/null && ! command -v mysql_config > /dev/null 2>&1; then
	need="$need libmariadb-dev"
fi
command -v cc > /dev/null 2>&1 || need="$need gcc libc6-dev"
command -v python3 > /dev/null 2>&1 || need="$need python3"
if [ -n "$need" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "sphinx: missing packages; as root run:" >&2
		echo "apt-get install -y$need" >&2
		exit 3
	fi
	had_service=0
	[ -e /etc/init.d/sphinxsearch ] && had_service=1
	say "installing$need"
	# shellcheck disable=SC2086
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need > "${TMPDIR:-/tmp}/sphinx-apt.$$.log" 2>&1; then
		DEBIAN_FRONTEND=noninteractive apt-get update -q > /dev/null 2>&1 || true
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need > "${TMPDIR:-/tmp}/sphinx-apt.$$.log" 2>&1 ||
			{ tail -20 "${TMPDIR:-/tmp}/sphinx-apt.$$.log" >&2; fail "apt-get install$need failed"; }
	fi
	rm -f "${TMPDIR:-/tmp}/sphinx-apt.$$.log"
	# Debian's package ships an init script (START=no in /etc/default/
	# sphinxsearch, so it normally does not start); should it have started
	# the system searchd just now, stop it: ours runs on its own config/port.
	if [ "$had_service" = 0 ] && [ -e /etc/init.d/sphinxsearch ] && [ -s /run/sphinxsearch/searchd.pid ] &&
		kill -0 "$(cat /run/sphinxsearch/searchd.pid)" 2> /dev/null; then
		say "stopping the system searchd the package started"
		/etc/init.d/sphinxsearch stop > /dev/null 2>&1 || kill "$(cat /run/sphinxsearch/searchd.pid)" 2> /dev/null || true
	fi
fi
VERSION=$(searchd --help 2>&1 | sed -n 's/^Sphinx \([^ ]*\).*/\1/p' | head -1)
[ -n "$VERSION" ] || fail "cannot tell the searchd version"

# ------------------------------------------------- a free port, a clean dir
[ -d "$SHARED/corpus/laws" ] || fail "no corpus in $SHARED/corpus/laws"
[ -f "$SHARED/bench/queries.txt" ] || fail "no $SHARED/bench/queries.txt"
if [ -s "$W/searchd.pid" ] && kill -0 "$(cat "$W/searchd.pid")" 2> /dev/null; then
	fail "a searchd of an earlier run still serves $W (pid $(cat "$W/searchd.pid")); stop it first"
fi
rm -rf "$W" "$OUT/sphinx.env"
mkdir -p "$W"
PORT=$(python3 - "$PORT_BASE" <<'EOF'
import socket, sys
base = int(sys.argv[1])
for p in range(base, base + 200):
    s = socket.socket()
    # as searchd binds: SO_REUSEADDR, so only a listener makes a port busy
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
EOF
)
[ -n "$PORT" ] || fail "no free port from $PORT_BASE"

# -------------------------------------------------- the load client, built
CFLAGS_DB=$(pkg-config --cflags libmariadb 2> /dev/null || mysql_config --cflags)
LIBS_DB=$(pkg-config --libs libmariadb 2> /dev/null || mysql_config --libs)
# shellcheck disable=SC2086
cc -O2 -Wall -o "$W/sqlload" "$HERE/sqlload.c" $CFLAGS_DB $LIBS_DB -lpthread ||
	fail "cannot build sqlload.c"

# ----------------------------------------------- 2. documents and queries
t0=$(now)
if [ -d "$SHARED/corpus/seed" ]; then
	NDOC=$(python3 "$HERE/sphinxprep.py" docs "$W/docs.xml" ${NDOCS:+--limit $NDOCS} \
		"$SHARED/corpus/laws" "$SHARED/corpus/seed")
else
	NDOC=$(python3 "$HERE/sphinxprep.py" docs "$W/docs.xml" ${NDOCS:+--limit $NDOCS} "$SHARED/corpus/laws")
fi
t1=$(now)
say "$NDOC documents to xmlpipe2 in $(elapsed "$t0" "$t1") s"
QCOUNT=$(python3 "$HERE/sphinxprep.py" queries "$SHARED/bench/queries.txt" "$W/queries.tsv" \
	${NQUERIES:+--limit $NQUERIES} 2> "$W/untranslated.txt")
NQ=${QCOUNT% *} NBAD=${QCOUNT#* }
[ "$NBAD" = 0 ] || say "$NBAD queries have no translation (see $W/untranslated.txt)"

# ------------------------------------------------------ 3. config, index
sed -e "s#@DATA@#$W#g" -e "s#@PORT@#$PORT#g" -e "s#@MAX_CHILDREN@#$MAX_CHILDREN#g" \
	"$HERE/sphinx.conf.in" > "$W/sphinx.conf"
t0=$(now)
indexer --config "$W/sphinx.conf" --all > "$W/indexer.log" 2>&1 ||
	{ tail -20 "$W/indexer.log" >&2; fail "indexer failed"; }
t1=$(now)
BUILD_S=$(elapsed "$t0" "$t1")
grep -q "^total $NDOC docs" "$W/indexer.log" ||
	{ tail -20 "$W/indexer.log" >&2; fail "indexer did not take all $NDOC documents"; }
INDEX_BYTES=$(cat "$W"/idx.sp* | wc -c)
say "indexed in $BUILD_S s, $INDEX_BYTES bytes"

# ------------------------------------------------------- 4. searchd
stop_searchd() {
	if [ -s "$W/searchd.pid" ]; then
		pid=$(cat "$W/searchd.pid")
		searchd --config "$W/sphinx.conf" --stopwait > /dev/null 2>&1 || kill "$pid" 2> /dev/null || true
		i=0
		while kill -0 "$pid" 2> /dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		if kill -0 "$pid" 2> /dev/null; then
			kill -9 "$pid" 2> /dev/null || true
		fi
	fi
	rm -f "$W/searchd.pid"
}
trap 'stop_searchd' EXIT
trap 'exit 130' INT TERM HUP
searchd --config "$W/sphinx.conf" > "$W/searchd.start.log" 2>&1 ||
	{ tail -20 "$W/searchd.start.log" >&2; fail "searchd did not start"; }
i=0
until "$W/sqlload" -P "$PORT" ping 2> /dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || { tail -20 "$W/searchd.log" >&2; fail "searchd does not answer on port $PORT"; }
	sleep 0.2
done
say "searchd $VERSION on 127.0.0.1:$PORT (SphinxQL), pid $(cat "$W/searchd.pid")"

SQ="$W/sqlload -P $PORT -f $W/queries.tsv -m 10000 -k bm25"
$SQ seq -r "$PASSES" -w 1 > "$W/seq.tsv" 2> "$W/seq.log" || { cat "$W/seq.log" >&2; fail "sequential run failed"; }
SEQ=$(tail -1 "$W/seq.log")
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
P50=$(kv p50_us "$SEQ") P99=$(kv p99_us "$SEQ") PMAX=$(kv max_us "$SEQ")
SEQ_ERR=$(kv errors "$SEQ") MISMATCH=$(kv mismatch "$SEQ")
[ "$MISMATCH" = 0 ] || say "warning: $MISMATCH queries with total != total_found below max_matches"
REP=$(python3 "$HERE/sphinxprep.py" report "$W/seq.tsv" "$SHARED/bench/expected-hits.tsv" "$W/hits.tsv")
AGREE=$(kv agree "$REP")

ERRORS=$SEQ_ERR
: > "$W/load.txt"
for c in $CONNS; do
	line=$($SQ load -c "$c" -d "$DUR" 2>> "$W/load.log") || fail "load run at $c connections failed"
	echo "$line" >> "$W/load.txt"
	q=$(kv qps "$line") p=$(kv p99_us "$line")
	case $c in
	1) QPS_1=$q P99_1=$p ;;
	16) QPS_16=$q P99_16=$p ;;
	64) QPS_64=$q P99_64=$p ;;
	esac
	ERRORS=$((ERRORS + $(kv errors "$line")))
done

stop_searchd

cat > "$OUT/sphinx.env" <<EOF
sphinx_version=$VERSION
sphinx_build_s=$BUILD_S
sphinx_index_bytes=$INDEX_BYTES
sphinx_p50_us=$P50
sphinx_p99_us=$P99
sphinx_max_us=$PMAX
sphinx_agree=$AGREE
sphinx_nqueries=$NQ
sphinx_qps_c1=$QPS_1
sphinx_p99_c1_us=$P99_1
sphinx_qps_c16=$QPS_16
sphinx_p99_c16_us=$P99_16
sphinx_qps_c64=$QPS_64
sphinx_p99_c64_us=$P99_64
sphinx_errors=$ERRORS
EOF

cat <<EOF
Sphinx $VERSION (searchd, workers = threads, ngram_len = 1)$( [ "$QUICK" = 1 ] && echo ", QUICK: $NDOC documents, $NQ queries")
  index:     $NDOC documents in $BUILD_S s, $INDEX_BYTES bytes
  1 conn, sequential, median of $PASSES: p50 $P50 us, p99 $P99 us, max $PMAX us (ranker=bm25, LIMIT 10)
  hit counts equal to expected-hits.tsv: $AGREE of $NQ ($(echo "$REP" | cut -d' ' -f3-))$( [ "$QUICK" = 1 ] && echo " [QUICK: a subset of the corpus, not comparable]")
$(sed 's/^/  load: /' "$W/load.txt")
  errors: $ERRORS;  files: $W (hits.tsv, seq.tsv, load.txt, sphinx.conf, logs)
EOF
