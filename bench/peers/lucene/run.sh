#!/bin/sh
# The Apache Lucene peer of `make bench-compare` (README.md beside this file).
#
#   sh bench/peers/lucene/run.sh OUTDIR
#
# Installs Lucene 8 (Debian liblucene8-java) and a JDK when missing, compiles
# LuceneBench.java into OUTDIR/lucene/classes, builds two on-disk indexes of the
# shared corpus (cjk: CJKAnalyzer, bigrams; cjk-uni: unigrams and bigrams), runs
# the benchmark queries warm and in-process against each, and writes
# OUTDIR/lucene.env (key=value, read by the aggregator), OUTDIR/lucene/<variant>-hits.tsv
# (query, expected, lucene) and a summary on stdout.
#
# Environment:
#   SHARED      the shared folder (default: ../shared beside the project root)
#   QUICK=1     CI check: first 200 documents, first 50 queries, 1 timed run
#   RUNS        timed passes (default 5, QUICK 1)
#   WARMUP_S    untimed warm-up before them, seconds (default 10, QUICK 0: one pass)
#   LUCENE_UNI_QUERY=bigrams|all
#               cjk-uni query terms: the analyzer's tokens less the unigrams that
#               a bigram covers (default: the same hits, far fewer positions read),
#               or every token the analyzer gives (README.md, "Query translation")
#   JAVA_HEAP   JVM heap, fixed: -Xms and -Xmx (default 1g)
# Exit status: 0 done, 2 usage, 3 packages missing and not root, 1 any other failure.
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: [SHARED=DIR] [QUICK=1] sh bench/peers/lucene/run.sh OUTDIR" >&2
	exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
SHARED=${SHARED:-$root/../shared}
SHARED=$(cd "$SHARED" && pwd) || { echo "lucene: no shared folder at $SHARED" >&2; exit 1; }
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
QUICK=${QUICK:-0}
JAVA_HEAP=${JAVA_HEAP:-1g}
LUCENE_UNI_QUERY=${LUCENE_UNI_QUERY:-bigrams}
if [ "$QUICK" = 1 ]; then
	RUNS=${RUNS:-1}
	WARMUP_S=${WARMUP_S:-0}
	limits="--docs 200 --queries-max 50"
else
	RUNS=${RUNS:-5}
	WARMUP_S=${WARMUP_S:-10}
	limits=
fi

for f in "$SHARED/corpus/laws" "$SHARED/bench/queries.txt" "$SHARED/bench/expected-hits.tsv"; do
	[ -e "$f" ] || { echo "lucene: missing $f" >&2; exit 1; }
done

# 1. Packages: Lucene 8 jars and javac.
lucene_jar() {   # $1: module name, e.g. core; prints the jar path of liblucene8-java
	dpkg -L liblucene8-java 2>/dev/null | grep -E "^/usr/share/java/lucene-$1-[0-9][0-9.]*\.jar\$" | head -1
}
need=
if [ -z "$(lucene_jar core)" ] || [ -z "$(lucene_jar analyzers-common)" ]; then
	need=" liblucene8-java"
fi
if ! command -v javac >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then
	need="$need default-jdk-headless"
fi
if [ -n "$need" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "lucene: missing packages; install them with:" >&2
		echo "  sudo apt-get install -y$need" >&2
		exit 3
	fi
	echo "lucene: installing$need"
	# shellcheck disable=SC2086
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y $need >"$OUT/lucene-apt.log" 2>&1; then
		apt-get update >>"$OUT/lucene-apt.log" 2>&1 || true
		DEBIAN_FRONTEND=noninteractive apt-get install -y $need >>"$OUT/lucene-apt.log" 2>&1 ||
			{ echo "lucene: apt-get install failed, see $OUT/lucene-apt.log" >&2; exit 1; }
	fi
fi
core=$(lucene_jar core)
common=$(lucene_jar analyzers-common)
if [ -z "$core" ] || [ -z "$common" ]; then
	echo "lucene: liblucene8-java has no core/analyzers-common jar" >&2
	exit 1
fi
cp="$core:$common"

# 2. Compile.
work=$OUT/lucene
rm -f "$OUT/lucene.env"
rm -rf "$work/classes" "$work/index-cjk" "$work/index-cjk-uni"
mkdir -p "$work/classes"
javac -encoding UTF-8 -nowarn -d "$work/classes" -cp "$cp" "$here/LuceneBench.java"

# 3-5. Index, query, compare.  One JVM per variant: the searches run warm and
# in-process, and neither variant runs on code that HotSpot compiled for the
# other (in one JVM the second variant measured 25-40% slower, whichever it was).
jvm="-Xms$JAVA_HEAP -Xmx$JAVA_HEAP"
pkgver=$(dpkg-query -W -f '${Version}' liblucene8-java 2>/dev/null || echo unknown)
echo "lucene: liblucene8-java $pkgver ($(basename "$core")), $(java -version 2>&1 | head -1)"
echo "lucene: java $jvm, corpus $SHARED/corpus, warm-up ${WARMUP_S} s, runs $RUNS$( [ "$QUICK" = 1 ] && echo ', QUICK (200 documents, 50 queries)'), cjk-uni query terms: $LUCENE_UNI_QUERY"
echo "lucene: load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores; the machine is shared)"
start=$(date +%s)
for v in cjk cjk-uni; do
	rm -f "$work/$v.env"
	# shellcheck disable=SC2086
	java $jvm -cp "$work/classes:$cp" LuceneBench \
		--out "$work" --env "$work/$v.env" --variants "$v" \
		--queries "$SHARED/bench/queries.txt" --expected "$SHARED/bench/expected-hits.tsv" \
		--runs "$RUNS" --warmup-s "$WARMUP_S" --uni-query "$LUCENE_UNI_QUERY" $limits \
		"$SHARED/corpus/laws" "$SHARED/corpus/seed"
done
{
	grep -E '^(lucene_version|java_version)=' "$work/cjk.env"
	grep -h -v -E '^(lucene_version|java_version)=' "$work/cjk.env" "$work/cjk-uni.env"
} >"$OUT/lucene.env.tmp"
mv "$OUT/lucene.env.tmp" "$OUT/lucene.env"
echo "lucene: done in $(( $(date +%s) - start )) s, load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "lucene: wrote $OUT/lucene.env, $work/cjk-hits.tsv, $work/cjk-uni-hits.tsv"
