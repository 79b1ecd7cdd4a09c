#!/bin/sh
# `make bench-compare` (scripts/bench-compare.sh [--quick]): the peers and
# sousuo in one run.  Each peer's bench/peers/NAME/run.sh installs what it
# needs (Debian packages; nothing of theirs is committed), indexes the same
# corpus, runs the same queries and leaves NAME.env in bench/results/peers;
# then scripts/bench.sh measures sousuo and writes the report with the
# comparison table and plots.  --quick: every step on a small sample (CI).
set -eu
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
export SHARED=${SHARED:-../shared}
if [ "$QUICK" = 1 ]; then
	peers=$(mktemp -d "${TMPDIR:-/tmp}/sousuo-peers.XXXXXX")
	trap 'rm -rf "$peers"' EXIT INT TERM
	export QUICK=1
else
	peers=bench/results/peers
	rm -rf "$peers"
	mkdir -p "$peers"
fi
status=0
for name in lucene sphinx fts5; do
	echo "== $name"
	if ! sh "bench/peers/$name/run.sh" "$peers/work"; then
		echo "bench-compare: the $name peer failed (see above); the table goes on without it" >&2
		status=1
	fi
	[ -f "$peers/work/$name.env" ] && cp "$peers/work/$name.env" "$peers/$name.env"
done
rm -rf "$peers/work"
echo "== sousuo"
if [ "$QUICK" = 1 ]; then
	sh scripts/bench-table.sh "$peers"/*.env
	sh scripts/bench.sh --quick > /dev/null
else
	sh scripts/bench.sh
fi
exit "$status"
