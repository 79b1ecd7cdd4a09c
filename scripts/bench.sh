#!/bin/sh
# `make bench` (scripts/bench.sh [--quick]): the benchmark report.
#
#   1. index build of the shared corpus, three times (time, MB/s, peak memory,
#      each section against the text);
#   2. the 2,000 queries in-process, warm (per query class, postings decoded
#      per second, the codec's and memcpy's ceilings), exact and pruned, and
#      the known-item MRR@10;
#   3. hit counts against expected-hits.tsv;
#   4. over the wire: sousuo-server with 2 threads and sousuo-benchmark on the
#      same machine, at 1, 16 and 64 connections, without and with
#      pipelining, and with snippets; three runs each, the median kept;
#   5. when `make bench-compare` has left peer results in bench/results/peers,
#      the table of sousuo against them;
#   6. gnuplot plots: latency per query class, QPS and p99 against connections.
#
# Everything goes to bench/results/ (REPORT.md, *.tsv, *.png).  --quick only
# checks that every step runs (one short run of each, in a temporary
# directory; CI uses it and asserts nothing about timings).
set -eu
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
SHARED=${SHARED:-../shared}
Q=$SHARED/bench/queries.txt
if [ "$QUICK" = 1 ]; then
	out=$(mktemp -d "${TMPDIR:-/tmp}/sousuo-bench.XXXXXX")
	RUNS=1 WIRE_S=1 WIRE_RUNS=1 BUILDS=1
else
	out=bench/results
	RUNS=7 WIRE_S=4 WIRE_RUNS=3 BUILDS=3
fi
mkdir -p "$out"
if ! command -v gnuplot > /dev/null && [ "$(id -u)" = 0 ]; then
	echo "bench: installing gnuplot-nox for the plots" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox > /dev/null 2>&1 ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox > /dev/null; } ||
		echo "bench: could not install gnuplot-nox; no plots" >&2
fi
idx=$out/laws.idx
report=$out/REPORT.md
server_pid=
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	rm -f "$idx"
	[ "$QUICK" = 1 ] && rm -rf "$out"
	return 0
}
trap cleanup EXIT INT TERM

# The median of the values in column $2 of the lines in file $1, and the line
# it is on: the run whose figure is the median one.
median_line() {
	sort -t, -k"$2" -g "$1" | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'
}

section() { printf '\n## %s\n\n' "$1"; }

{
	echo "# sousuo benchmark report"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- git revision: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
	echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)"
	echo "- compiler: $(cc --version | head -1)"
	echo "- the machine is shared: every figure is the median of several runs; compare ratios within one report"

	section "Index build"
	echo '```'
	echo "\$ bin/sousuo-index -o $idx $SHARED/corpus/laws $SHARED/corpus/seed"
	bin/sousuo-index -o "$idx" "$SHARED/corpus/laws" "$SHARED/corpus/seed" | tee "$out/build1.txt"
	echo '```'
	if [ "$BUILDS" -gt 1 ]; then
		echo
		echo "Two more builds:"
		echo
		echo '```'
		for i in 2 3; do
			bin/sousuo-index -o "$idx" "$SHARED/corpus/laws" "$SHARED/corpus/seed" | tail -1
		done
		echo '```'
	fi

	section "Hot path, in-process"
	echo '```'
	echo "\$ bin/sousuo-hotpath -i $idx -f $Q -r $RUNS --known $SHARED/bench/known-item.tsv --tsv classes.tsv"
	bin/sousuo-hotpath -i "$idx" -f "$Q" -r "$RUNS" --known "$SHARED/bench/known-item.tsv" \
		--tsv "$out/classes.tsv" | tee "$out/hotpath.txt"
	echo '```'
	echo
	echo "Without exact totals (pruned top-k, the same top 10):"
	echo
	echo '```'
	echo "\$ bin/sousuo-hotpath -i $idx -f $Q -r $RUNS --fast"
	bin/sousuo-hotpath -i "$idx" -f "$Q" -r "$RUNS" --fast | sed -n '2,5p'
	echo '```'

	section "Hit counts"
	bin/sousuo-search -i "$idx" --count < "$Q" > "$out/counts.tsv"
	agree=$(awk -F'\t' 'NR == FNR { want[$1] = $2; next } ($1 in want) && want[$1] == $2 { n++ } END { print n + 0 }' \
		"$SHARED/bench/expected-hits.tsv" "$out/counts.tsv")
	nq=$(wc -l < "$Q")
	echo "$agree of $nq queries give exactly the number of documents in expected-hits.tsv."
	echo "sousuo_agree=$agree" > "$out/sousuo.env"

	section "Over the wire"
	bin/sousuo-server -i "$idx" --port 0 --threads 2 2> "$out/server.log" &
	server_pid=$!
	port=
	for _ in $(seq 100); do
		port=$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out/server.log" | head -1)
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "$port" ] || { echo "the server did not start:"; cat "$out/server.log"; exit 1; }
	echo "\`bin/sousuo-server -i laws.idx --threads 2\` and \`bin/sousuo-benchmark -d $WIRE_S -f queries.txt\`"
	echo "(one client thread) on the same $(nproc) cores, closed loop; $WIRE_RUNS runs of each line, the"
	echo "median by QPS shown. \`snippet=off\` returns what Sphinx and Lucene return (ids, stored"
	echo "fields, scores); the last line is plain \`SEARCH\` with snippets."
	echo
	echo "| connections | pipeline | request | QPS | p50 µs | p90 µs | p99 µs | p99.9 µs | errors |"
	echo "|---|---|---|---|---|---|---|---|---|"
	printf 'conns\tpipeline\tkind\tqps\tp50_us\tp99_us\n' > "$out/wire.tsv"
	for cfg in "1 1 off" "16 1 off" "64 1 off" "16 8 off" "64 8 off" "16 1 on"; do
		set -- $cfg
		[ "$QUICK" = 1 ] && [ "$1" = 64 ] && continue
		rm -f "$out/runs.csv"
		for _ in $(seq "$WIRE_RUNS"); do
			if [ "$3" = off ]; then
				bin/sousuo-benchmark -p "$port" -c "$1" -P "$2" -d "$WIRE_S" -f "$Q" \
					--prefix snippet=off --csv | tail -1 >> "$out/runs.csv"
			else
				bin/sousuo-benchmark -p "$port" -c "$1" -P "$2" -d "$WIRE_S" -f "$Q" \
					--csv | tail -1 >> "$out/runs.csv"
			fi
		done
		# csv: conns,pipeline,threads,rate,requests,errors,failures,seconds,qps,p50,p90,p99,p999,max,mean
		m=$(median_line "$out/runs.csv" 9)
		kind="SEARCH snippet=off"
		[ "$3" = on ] && kind="SEARCH"
		echo "$m" | awk -F, -v k="$kind" '{ printf "| %s | %s | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %d |\n", $1, $2, k, $9, $10, $11, $12, $13, $6 + $7 }'
		echo "$m" | awk -F, -v k="$3" '{ printf "%s\t%s\t%s\t%.0f\t%.0f\t%.0f\n", $1, $2, k, $9, $10, $12 }' >> "$out/wire.tsv"
	done
	kill "$server_pid"
	wait "$server_pid" 2>/dev/null || true
	server_pid=

	# the sousuo row of the comparison: build, size, in-process, wire
	build_s=$(sed -n 's/^time \([0-9.]*\) s.*/\1/p' "$out/build1.txt")
	bytes=$(stat -c %s "$idx")
	awk '/^per query:/ { printf "sousuo_p50_us=%s\nsousuo_p99_us=%s\n", $4, $10 }
	     /^whole file:/ { printf "sousuo_file_ms=%s\n", $4 }
	     /queries\/s on one core/ { for (i = 1; i < NF; i++) if ($(i+1) == "queries/s") printf "sousuo_qps1=%s\n", $i }' \
		"$out/hotpath.txt" >> "$out/sousuo.env"
	{
		echo "sousuo_build_s=$build_s"
		echo "sousuo_index_bytes=$bytes"
		awk -F'\t' '$2 == 1 && $3 == "off" { printf "sousuo_qps_c%s=%s\nsousuo_p99_c%s_us=%s\n", $1, $4, $1, $6 }' "$out/wire.tsv"
	} >> "$out/sousuo.env"

	if ls bench/results/peers/*.env > /dev/null 2>&1; then
		section "Against the peers (make bench-compare, same machine, same corpus and queries)"
		sh scripts/bench-table.sh "$out/sousuo.env" bench/results/peers/*.env
	fi

	if command -v gnuplot > /dev/null; then
		section "Plots"
		sh scripts/bench-plots.sh "$out" bench/results/peers
		echo "![latency per query class](classes.png)"
		echo
		echo "![QPS and p99 against connections](wire.png)"
	else
		echo
		echo "(gnuplot is not installed: no plots)"
	fi
} > "$report.tmp"
mv "$report.tmp" "$report"
cat "$report"
