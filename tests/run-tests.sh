#!/bin/sh
# Runs every cmocka test binary given as an argument and sums their results.
# The last line is the plain summary CI reads: "N passed, N failed".
passed=0; failed=0; broken=""
for t in "$@"; do
	echo "== $t"
	out=$("$t" 2>&1); rc=$?
	printf '%s\n' "$out"
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
	# A binary that crashed or exited non-zero without reporting a failure
	# still counts as one failure.
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; broken="$broken $t"; fi
	passed=$((passed + p)); failed=$((failed + f))
done
[ -n "$broken" ] && echo "crashed or failed to run:$broken"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
