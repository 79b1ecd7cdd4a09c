#!/bin/sh
# fetch.sh — makes the law corpus available at corpus/laws (`make corpus`).
#
# usage: sh corpus/fetch.sh [SHARED]      (SHARED defaults to ../shared)
#
# 1. If SHARED/corpus/laws exists (developers and CI have it), corpus/laws
#    becomes a symbolic link to it.  Nothing is copied: the laws never go into
#    git (.gitignore lists corpus/laws and corpus/laws.src).
# 2. Otherwise the public repository LawRefBook/Laws is cloned (depth 1) into
#    corpus/laws.src and corpus/laws becomes a link to that.  Its layout
#    differs from the shared copy, which was flattened from it: the laws sit
#    under a DLC/<region> prefix, and the repository has index pages and
#    tooling folders besides.  We index it as it is: categories then carry
#    that prefix and a few non-law .md files become documents.
#
# Idempotent: an existing corpus/laws (link or folder) that holds files is
# kept, a broken link is replaced, an existing clone is reused.  Exits
# non-zero with a message when neither source can be had.
set -eu

SHARED=${1:-../shared}
URL=https://github.com/LawRefBook/Laws

# Work from the repository root (this script lives in corpus/).  A relative
# SHARED is relative to the directory we were started from: resolve it first.
if [ -d "$SHARED" ]; then
	SHARED=$(cd "$SHARED" && pwd -P)
fi
cd "$(dirname "$0")/.."

say() { printf 'corpus: %s\n' "$*"; }
die() { printf 'corpus: error: %s\n' "$*" >&2; exit 1; }

# A usable corpus already in place?
if [ -d corpus/laws ]; then
	if [ -n "$(ls -A corpus/laws 2>/dev/null)" ]; then
		if [ -L corpus/laws ]; then
			say "corpus/laws is ready (link to $(readlink corpus/laws))"
		else
			say "corpus/laws is ready (a folder; left as it is)"
		fi
		exit 0
	fi
	[ -L corpus/laws ] || die "corpus/laws is an empty folder: remove it and run again"
fi
if [ -L corpus/laws ]; then
	say "replacing the broken or empty link corpus/laws"
	rm -f corpus/laws
elif [ -e corpus/laws ]; then
	die "corpus/laws exists but is not a folder: remove it and run again"
fi

# 1. The shared copy.
if [ -d "$SHARED/corpus/laws" ]; then
	src=$(cd "$SHARED/corpus/laws" && pwd -P)
	ln -s "$src" corpus/laws
	say "linked corpus/laws -> $src"
	exit 0
fi

# 2. The public repository.
say "no $SHARED/corpus/laws; using the public repository $URL"
if [ -d corpus/laws.src/.git ]; then
	say "reusing the clone in corpus/laws.src"
else
	command -v git >/dev/null 2>&1 || die "git is not installed (apt-get install git), and there is no $SHARED/corpus/laws"
	rm -rf corpus/laws.src.tmp
	say "cloning $URL into corpus/laws.src (depth 1)"
	if ! git clone --depth 1 "$URL" corpus/laws.src.tmp; then
		rm -rf corpus/laws.src.tmp
		die "git clone $URL failed (network?); alternatively put the laws at $SHARED/corpus/laws"
	fi
	rm -rf corpus/laws.src
	mv corpus/laws.src.tmp corpus/laws.src
fi
ln -s laws.src corpus/laws
[ -n "$(ls -A corpus/laws 2>/dev/null)" ] || die "corpus/laws.src is empty"
say "linked corpus/laws -> laws.src"
