#!/bin/sh
# `make bench`: builds the index of the shared corpus (timed, with sizes and
# peak memory), then runs the query file in-process, warm, several times, and
# the known-item file; writes everything to bench/results/REPORT.md.
set -eu
SHARED=${SHARED:-../shared}
out=bench/results
mkdir -p "$out"
idx=$out/laws.idx
report=$out/REPORT.md
{
	echo "# sousuo benchmark report"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- git revision: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)"
	echo "- compiler: $(cc --version | head -1)"
	echo
	echo "## Index build"
	echo
	echo '```'
	echo "\$ bin/sousuo-index -o $idx $SHARED/corpus/laws $SHARED/corpus/seed"
	bin/sousuo-index -o "$idx" "$SHARED/corpus/laws" "$SHARED/corpus/seed"
	echo '```'
	echo
	echo "Two more builds (the machine is shared: read the median of the three):"
	echo
	echo '```'
	for i in 2 3; do
		bin/sousuo-index -o "$idx" "$SHARED/corpus/laws" "$SHARED/corpus/seed" | tail -1
	done
	echo '```'
	echo
	echo "## Hot path, in-process"
	echo
	echo '```'
	echo "\$ bin/sousuo-hotpath -i $idx -f $SHARED/bench/queries.txt -r 7 --known $SHARED/bench/known-item.tsv"
	bin/sousuo-hotpath -i "$idx" -f "$SHARED/bench/queries.txt" -r 7 --known "$SHARED/bench/known-item.tsv"
	echo '```'
	echo
	echo "Without exact totals (pruned top-k, the same top 10):"
	echo
	echo '```'
	echo "\$ bin/sousuo-hotpath -i $idx -f $SHARED/bench/queries.txt -r 7 --fast"
	bin/sousuo-hotpath -i "$idx" -f "$SHARED/bench/queries.txt" -r 7 --fast
	echo '```'
} > "$report"
cat "$report"
