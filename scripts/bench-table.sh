#!/bin/sh
# scripts/bench-table.sh ENV...: the comparison table of the benchmark report
# from the key=value files that scripts/bench.sh (sousuo.env) and each
# peer's bench/peers/NAME/run.sh (NAME.env) write, with the targets
# as ratios taken within this one run.  Missing figures print as "–".
set -eu
cat "$@" | awk -F= '
	NF >= 2 { k = $1; sub(/^[^=]*=/, ""); v[k] = $0 }
	function g(k) { return (k in v) && v[k] != "" ? v[k] : "–" }
	function mb(k) { return (k in v) && v[k] != "" ? sprintf("%.1f", v[k] / 1e6) : "–" }
	function n0(k) { return (k in v) && v[k] != "" ? sprintf("%.0f", v[k]) : "–" }
	function row(name, p) {
		if (!((p "build_s") in v) && !((p "agree") in v)) return
		printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s/%s |\n", name,
		       g(p "build_s"), mb(p "index_bytes"), n0(p "p50_us"), n0(p "p99_us"),
		       n0(p "qps1"), n0(p "qps2"), n0(p "qps_c1"), n0(p "qps_c16"), n0(p "qps_c64"),
		       n0(p "p99_c16_us"), g(p "agree"), (p "nqueries") in v ? v[p "nqueries"] : 2000
	}
	function ratio(what, a, b, want) {
		if (!(a in v) || !(b in v) || v[a] == "" || v[b] == "" || v[b] + 0 == 0) return
		printf "- %s: %.2f (target %s)\n", what, v[a] / v[b], want
	}
	END {
		print "| system | build s | index MB | p50 µs | p99 µs | QPS, 1 thread | QPS, 2 threads | QPS, 1 conn | 16 conns | 64 conns | p99 µs, 16 conns | hits agree |"
		print "|---|---|---|---|---|---|---|---|---|---|---|---|"
		row("sousuo", "sousuo_")
		row("Lucene, CJK bigrams", "lucene_cjk_")
		row("Lucene, unigrams + bigrams", "lucene_cjkuni_")
		row("Sphinx searchd (ngram_len 1)", "sphinx_")
		row("SQLite FTS5 (trigram)", "fts5_")
		print ""
		print "p50/p99: in-process per query (Sphinx: one connection, sequential). QPS per connection count: over the wire, closed loop."
		print ""
		ratio("Lucene p50 / sousuo p50", "lucene_cjk_p50_us", "sousuo_p50_us", ">= 10")
		ratio("Lucene p99 / sousuo p99", "lucene_cjk_p99_us", "sousuo_p99_us", ">= 5")
		ratio("sousuo QPS at 16 connections / Sphinx", "sousuo_qps_c16", "sphinx_qps_c16", ">= 50")
		ratio("sousuo QPS at 64 connections / Sphinx", "sousuo_qps_c64", "sphinx_qps_c64", ">= 50")
		ratio("sousuo QPS at 16 connections / Lucene in-process on 2 threads", "sousuo_qps_c16", "lucene_cjk_qps2", ">= 2")
		ratio("sousuo QPS at 64 connections / Lucene in-process on 2 threads", "sousuo_qps_c64", "lucene_cjk_qps2", ">= 2")
	}'
