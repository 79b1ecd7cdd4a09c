#!/bin/sh
# scripts/bench-plots.sh OUT PEERS: the report's plots with gnuplot, from
# OUT/classes.tsv (sousuo-hotpath --tsv) and OUT/wire.tsv (bench.sh), with
# the peers' figures from PEERS/*.env when present:
#   OUT/classes.png  p50, p90, p99 per query class, in-process (log scale)
#   OUT/wire.png     QPS and p99 against connections, over the wire
set -eu
out=$1
peers=$2
# peers as "name conns qps p99_us" lines; in-process peers as a flat QPS line
: > "$out/peers-wire.dat"
: > "$out/peers-flat.dat"
if ls "$peers"/*.env > /dev/null 2>&1; then
	cat "$peers"/*.env | awk -F= -v wire="$out/peers-wire.dat" -v flat="$out/peers-flat.dat" '
		{ v[$1] = $2 }
		END {
			for (c = 1; c <= 64; c *= 4) if (("sphinx_qps_c" c) in v)
				printf "%d %s %s\n", c, v["sphinx_qps_c" c], v["sphinx_p99_c" c "_us"] > wire
			if ("lucene_cjk_qps2" in v) printf "%s\n", v["lucene_cjk_qps2"] > flat
		}'
fi
awk -F'\t' 'NR > 1 && $2 == 1 && $3 == "off" { print $1, $4, $6 }' "$out/wire.tsv" > "$out/ours-wire.dat"
awk -F'\t' 'NR > 1 && $2 == 8 && $3 == "off" { print $1, $4, $6 }' "$out/wire.tsv" > "$out/ours-wire-p8.dat"
flat=$(head -1 "$out/peers-flat.dat" 2>/dev/null || true)
# gnuplot stops at an empty data file: only what exists is plotted
q1= q3=
if [ -s "$out/ours-wire-p8.dat" ]; then
	q1="$q1, \"$out/ours-wire-p8.dat\" using 1:2 title 'sousuo, pipeline 8' lw 2 pt 5"
	q3="$q3, \"$out/ours-wire-p8.dat\" using 1:3 title 'sousuo, pipeline 8' lw 2 pt 5"
fi
if [ -s "$out/peers-wire.dat" ]; then
	q1="$q1, \"$out/peers-wire.dat\" using 1:2 title 'Sphinx searchd' lw 2 pt 9"
	q3="$q3, \"$out/peers-wire.dat\" using 1:3 title 'Sphinx searchd' lw 2 pt 9"
fi
[ -n "$flat" ] && q1="$q1, $flat title 'Lucene in-process, 2 threads' lw 2 dt 2"
gnuplot <<GP
set terminal pngcairo size 900,480 font ",10" noenhanced
set output "$out/classes.png"
set title "sousuo in-process latency per query class (2,000 queries, warm, exact totals, top 10)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set ylabel "microseconds (log scale)"
set key top left
set xtics rotate by -20
set datafile separator "\t"
plot "$out/classes.tsv" every ::1 using 3:xtic(1) title "p50", '' every ::1 using 4 title "p90", \
     '' every ::1 using 5 title "p99"
set datafile separator whitespace

set output "$out/wire.png"
set terminal pngcairo size 1000,420 font ",10" noenhanced
set multiplot layout 1,2 title "over the wire: sousuo-server (2 threads) and the load generator on the same 2 cores"
unset style
set style data linespoints
set logscale x 2
set xrange [0.8:80]
set xlabel "connections"
set logscale y
set ylabel "queries per second (log scale)"
set key top left
set title "throughput"
plot "$out/ours-wire.dat" using 1:2 title "sousuo" lw 2 pt 7 $q1
set title "p99 latency"
set ylabel "p99, microseconds (log scale)"
set key top left
plot "$out/ours-wire.dat" using 1:3 title "sousuo" lw 2 pt 7 $q3
unset multiplot
GP
rm -f "$out/peers-wire.dat" "$out/peers-flat.dat" "$out/ours-wire.dat" "$out/ours-wire-p8.dat"
