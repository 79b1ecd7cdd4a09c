#!/bin/sh
# run.sh — what `make run` does until the daemon exists (issue 3): makes sure
# the law corpus is there, (re)builds the index laws.idx when it is missing,
# stale or unreadable, and shows one search.  Run from the repository root
# after `make all` (which `make run` does first).
set -eu

INDEX=laws.idx
SHARED=../shared

say() { printf 'run: %s\n' "$*"; }
die() { printf 'run: error: %s\n' "$*" >&2; exit 1; }

[ -f Makefile ] && [ -d indexer ] || die "run me from the repository root (make run)"
[ -x bin/sousuo-index ] && [ -x bin/sousuo-search ] || die "bin/ is not built: run make run (or make all)"

# The corpus: the shared copy when present, else corpus/laws (fetched or
# linked by corpus/fetch.sh when missing), plus the seed document in git.
if [ -d "$SHARED/corpus/laws" ]; then
	laws=$SHARED/corpus/laws
else
	[ -d corpus/laws ] || sh corpus/fetch.sh "$SHARED"
	laws=corpus/laws
fi

# Rebuild when the index is missing, older than any input file or folder
# (a folder's time changes when a file is added or removed) or than the
# indexer itself (a new indexer may index differently), or does not verify
# (e.g. written by an older format version).
why=""
if [ ! -f "$INDEX" ]; then
	why="$INDEX is missing"
elif [ -n "$(find -H "$laws" corpus/seed bin/sousuo-index -newer "$INDEX" -print | sed -n 1p)" ]; then
	why="the corpus or the indexer changed since $INDEX was built"
elif ! bin/sousuo-index --check "$INDEX" >/dev/null 2>&1; then
	why="$INDEX does not verify"
fi
if [ -n "$why" ]; then
	say "$why: indexing $laws and corpus/seed into $INDEX (about 5 s)"
	bin/sousuo-index -o "$INDEX" "$laws" corpus/seed
else
	say "$INDEX is up to date"
fi

PORT=${PORT:-7878}
say "starting sousuo-server on 127.0.0.1:$PORT (Ctrl-C stops it); in another terminal:"
say "  bin/sousuo-cli -p $PORT SEARCH 外商投资 负面清单      (or bin/sousuo-cli -p $PORT for a prompt)"
say "  printf 'PING\\nCOUNT 外商投资\\n' | nc 127.0.0.1 $PORT"
say "without the server: bin/sousuo-search -i $INDEX '外商投资 -category:地方性法规'"
exec bin/sousuo-server -i "$INDEX" --port "$PORT"
