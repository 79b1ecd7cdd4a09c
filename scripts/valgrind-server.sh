#!/bin/sh
# `make test-valgrind` (scripts/valgrind-server.sh): the daemon under
# valgrind's memcheck, end to end.  Starts bin/sousuo-server under valgrind on
# an index of the shared corpus, drives it with every kind of request (the
# query file through the load generator, the HTTP port, errors, RELOAD, a
# line over the limit, a client that leaves mid-line), then stops it with
# SIGTERM: the run passes when the server exits 0 and valgrind reports no
# error and no definite leak (--error-exitcode).  Prints "N passed, N failed".
set -u
SHARED=${SHARED:-../shared}
command -v valgrind > /dev/null || { echo "valgrind is not installed"; echo "0 passed, 1 failed"; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/sousuo-vg.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM
idx=$dir/laws.idx
bin/sousuo-index -o "$idx" "$SHARED/corpus/laws" "$SHARED/corpus/seed" > /dev/null || exit 1
valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	--log-file="$dir/vg.log" bin/sousuo-server -i "$idx" --port 0 --http-port 0 --threads 2 \
	2> "$dir/server.log" &
vg=$!
port= hport=
for _ in $(seq 300); do
	port=$(sed -n 's/.* info .*[^p] listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/server.log" | head -1)
	hport=$(sed -n 's/.*http listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/server.log" | head -1)
	[ -n "$port" ] && [ -n "$hport" ] && break
	sleep 0.2
done
fail=0 pass=0
check() { if "$@"; then pass=$((pass + 1)); else echo "valgrind run: failed: $*"; fail=$((fail + 1)); fi; }
if [ -z "$port" ]; then
	cat "$dir/server.log"
	fail=1
else
	check bin/sousuo-benchmark -p "$port" -c 4 -n 2000 -f "$SHARED/bench/queries.txt" --timeout 60 > /dev/null
	check bin/sousuo-benchmark -p "$port" -c 2 -P 4 -n 400 -f "$SHARED/bench/queries.txt" --prefix 'limit=3 fields=id,title,snippet' --timeout 60 > /dev/null
	for req in "PING" "HELP" "STATS" "GET 5" "GET 99999999" "SEARCH sort=date limit=5 外商投资" \
	           "COUNT (外商 | 投资) -法" "SEARCH ((" "NOPE" "RELOAD" "SEARCH limit=2000 x"; do
		bin/sousuo-cli -p "$port" -t 60 --raw "$req" > /dev/null
		[ $? -le 1 ] && pass=$((pass + 1)) || { echo "valgrind run: no reply to $req"; fail=$((fail + 1)); }
	done
	python3 - "$port" "$hport" <<'PY' && pass=$((pass + 1)) || fail=$((fail + 1))
import socket, sys, time
port, hport = int(sys.argv[1]), int(sys.argv[2])
def talk(p, data, wait=10):
    s = socket.create_connection(("127.0.0.1", p), timeout=60)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    return out
assert talk(port, b"PING\n" + b"x" * 70000 + b"\n").startswith(b"OK 0 PONG\nERR TOOLONG")
assert talk(port, b"PING\nSEARCH \xff\xfe\nCOUNT abc").startswith(b"OK 0 PONG\nERR UTF8")
for path in ("/search?q=%E5%A4%96%E5%95%86&limit=3", "/count?q=x", "/doc/3", "/stats", "/health", "/nope", "/search?q=(("):
    r = talk(hport, ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
    assert r.startswith(b"HTTP/1.1 "), r[:40]
s = socket.create_connection(("127.0.0.1", port))
s.sendall("SEARCH 外商".encode())   # no newline: the client leaves mid-line
s.close()
PY
fi
kill -TERM "$vg" 2>/dev/null
wait "$vg"
rc=$?
if [ "$rc" -eq 0 ]; then pass=$((pass + 1)); else
	echo "valgrind run: the server exited $rc (99: valgrind found errors or leaks)"
	cat "$dir/vg.log"
	fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
