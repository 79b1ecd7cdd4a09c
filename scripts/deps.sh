#!/bin/sh
# Makes sure the Debian -dev packages sousuo builds against are installed.
# As root it installs what is missing with apt-get; otherwise it prints the
# exact command to run and fails, so `make` stops with a clear message.
set -u
PKGS="libevent-dev libzstd-dev libxxhash-dev libcmocka-dev libutf8proc-dev libcjson-dev libedit-dev pkg-config"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
	echo "deps: installing$missing" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null || {
		echo "deps: apt-get install failed for:$missing" >&2; exit 1; }
	exit 0
fi
echo "deps: missing packages:$missing" >&2
echo "deps: run: sudo apt-get update && sudo apt-get install -y$missing" >&2
exit 1
