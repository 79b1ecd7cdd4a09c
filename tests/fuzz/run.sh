#!/bin/sh
# run.sh — runs the libFuzzer targets one after another for a bounded time
# (`make fuzz`; usage: run.sh BUILD_DIR SECONDS TARGET...).
#
# Each target works on a scratch copy of tests/fuzz/corpus/TARGET and
# tests/fuzz/regress/TARGET in BUILD_DIR/work/TARGET, so what it discovers
# never lands in the committed corpus (copy an input there by hand when it
# is worth keeping).  A crash, hang (-timeout), leak or out-of-memory fails
# the target; libFuzzer writes the input as BUILD_DIR/TARGET-crash-..., and
# the full log stays in BUILD_DIR/work/TARGET.log.  The last line is the
# summary: "fuzz: N targets passed, N failed".
set -u
fb=$1 secs=$2
shift 2
here=$(dirname "$0")
passed=0 failed=0 broken=""
for t in "$@"; do
	work="$fb/work/$t"
	rm -rf "$work"
	mkdir -p "$work/corpus"
	for d in "$here/corpus/$t" "$here/regress/$t"; do
		[ -d "$d" ] && find "$d" -type f -exec cp {} "$work/corpus/" \;
	done
	dict=""
	[ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
	echo "== fuzz_$t: $secs s, $(ls "$work/corpus" | wc -l) seeds"
	# shellcheck disable=SC2086  # dict is one word or none
	"$fb/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$fb/$t-" $dict "$work/corpus" \
		>"$work.log" 2>&1
	rc=$?
	# the last status line carries the coverage; the stats the executions
	tail_line=$(grep -E '^#[0-9]+' "$work.log" | tail -n 1)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work.log")
	echo "   ${tail_line:-no status line}"
	echo "   executions: ${runs:-?}, exit status $rc"
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		broken="$broken $t"
		grep -E 'ERROR|invariant failed|Test unit written|SUMMARY' "$work.log" | head -n 20
	fi
done
[ -n "$broken" ] && echo "fuzz: failed:$broken (inputs in $fb/, logs in $fb/work/)"
echo "fuzz: $passed targets passed, $failed failed"
[ "$failed" -eq 0 ]
