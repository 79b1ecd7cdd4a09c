#!/usr/bin/env bash
# make-seeds.sh — writes the seed corpora of the fuzz targets,
# tests/fuzz/corpus/TARGET/, from real inputs: the request lines of
# docs/PROTOCOL.md, a sample of ../shared/bench/queries.txt, excerpts of the
# law corpus and the PDF-extracted seed document, tiny index files written by
# bin/sousuo-index, and reply streams recorded from bin/sousuo-server.  Run
# by hand from the top of the tree after `make` when the formats change
# (usage: bash tests/fuzz/make-seeds.sh [SHARED]; bash for /dev/tcp); the committed seeds are its
# output.  Each seed stays small (well under 20 KB) so that the corpus is
# cheap to keep in git and fast to replay in `make test`.
set -eu -o pipefail
shared=${1:-../shared}
out=tests/fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null; true' EXIT
for t in request query text index reply; do
	rm -rf "${out:?}/$t"
	mkdir -p "$out/$t"
done

# ---- queries: every 20th benchmark query, and the README's query language ----
awk 'NR % 20 == 1' "$shared/bench/queries.txt" | head -n 100 >"$tmp/queries"
cat >>"$tmp/queries" <<'EOF'
外商投资 负面清单
外商投资 | 外资
外商投资 -行政法规
(外商投资 | 外资) -category:地方性法规
"covid 19"
title:外商投资
category:地方性法规/北京
date>=2019-01-01 外商投资
date<2021
date=2020-05
外商投资 sort:date
covid-19
500万元
ＡＰＰ
title:"外商 投资" | -(-数据)
((((a))))
外，资
a - b
--x
(外商
date>=2021-02-30
"unterminated
sort:date sort:relevance
category:地方性//法规
外商　投资（一）｜“法”
EOF
i=0
while IFS= read -r q; do
	i=$((i + 1))
	printf '%s' "$q" >"$out/query/q$(printf %03d $i)"
done <"$tmp/queries"

# ---- requests: PROTOCOL.md's commands and options, and queries as requests ----
i=0
while IFS= read -r line; do
	i=$((i + 1))
	printf '%s' "$line" >"$out/request/r$(printf %03d $i)"
done <<'EOF'
PING
ping
SEARCH 外商投资
COUNT 外商投资
SEARCH limit=2 fields=rank,path 外商投资
SEARCH limit=0 offset=10000 sort=date snippet=off total=fast -- limit=3
SEARCH fields=rank,id,score,title,path,category,date,snippet 外商投资 负面清单
SEARCH Limit=5 SORT=Relevance 外商投资 | 外资
search limit=1001 x
SEARCH fields=rank,rank x
SEARCH fields= x
SEARCH limit=3 limit=4 x
GET 0
GET 00042
GET 18446744073709551616
GET 12x
GET
STATS
RELOAD
HELP
QUIT
FOO bar
	  SEARCH	 外商投资  	
COUNT
STATS extra
EOF
awk 'NR % 5 == 1' "$tmp/queries" | head -n 20 | while IFS= read -r q; do
	i=$((i + 1))
	printf 'SEARCH limit=3 %s' "$q" >"$out/request/q$(printf %03d $i)"
done
printf 'SEARCH \377bad' >"$out/request/bad-utf8"
printf 'COUNT a\000b' >"$out/request/nul"

# ---- text: Markdown and PDF-like text, and the awkward cases of text.h ----
i=0
find "$shared/corpus/laws" -name '*.md' | sort | awk 'NR % 400 == 1' | head -n 8 |
while IFS= read -r f; do
	i=$((i + 1))
	head -c 3000 "$f" >"$out/text/law$i"
done
head -c 3000 "$shared/corpus/seed/"*.txt >"$out/text/pdf-seed"
printf '外商投\n资 外商，投资 外商\n\n投资' >"$out/text/cjk-whitespace"
printf 'ＡＰＰ Ａｐｐ app ＡＰＰＬＥ　全角　空格 （一）１２３' >"$out/text/fullwidth"
printf 'covid-19 COVID 19 covid19 500万元 5G网络 罚款500元' >"$out/text/words-and-pairs"
printf 'e\314\201t\303\251 Stra\303\237e \357\254\201 \343\210\261 \357\267\272 \341\204\200\341\205\241\341\206\250' >"$out/text/compose"
printf 'ok\377\376 \300\257 \355\240\200 \364\220\200\200 \342\202 end' >"$out/text/invalid-utf8"
printf '\357\273\277---\ntitle: x\n---\n# 标题\n<!-- 注释 -->正文\037第一条\000尾' >"$out/text/markdown-bom-nul"
{ printf 'a'; i=0; while [ $i -lt 300 ]; do printf '\314\201'; i=$((i + 1)); done; printf '中'; } \
	>"$out/text/long-mark-run"
printf '二〇一九年 〇 ⺠ 𠀀𪜀 丽 \342\200\250 \302\205 \342\200\213中文' >"$out/text/cjk-edges"

# ---- index: tiny files from bin/sousuo-index ----
idx() { name=$1; shift; bin/sousuo-index "$@" -o "$tmp/x.idx" >/dev/null 2>&1; cp "$tmp/x.idx" "$out/index/$name"; }
mkdir -p "$tmp/c1"
printf '外商投资' >"$tmp/c1/a.txt"
printf '投资外商投资' >"$tmp/c1/b.txt"
idx worked-example "$tmp/c1"                      # docs/INDEX-FORMAT.md, its worked example
idx worked-example-ngrams --ngram-min-df 2 "$tmp/c1"
mkdir -p "$tmp/c2"
i=1
while [ $i -le 130 ]; do printf '外商' >"$tmp/c2/f$(printf %03d $i).txt"; i=$((i + 1)); done
idx two-blocks --level 1 "$tmp/c2"               # a directory: 130 documents
mkdir -p "$tmp/c3/法律" "$tmp/c3/地方性法规/北京"
printf -- '---\nx: 1\n---\n# 中华人民共和国外商投资法\n\n2019年3月15日通过\n\n<!-- INFO END -->\n第一条 为了进一步扩大对外开放，积极促进外商投资。\n罚款500万元。covid-19 APP\n' \
	>"$tmp/c3/法律/外商投资法(2019-03-15).md"
printf '# 北京市外商投资条例\n第二条 外商投\n资企业 数据安全 人民代表大会常务委员会\n' \
	>"$tmp/c3/地方性法规/北京/北京市外商投资条例(2021-01-01).md"
printf '{"title":"数据安全法","body":"数据安全 个人信息保护 app","id":42,"date":"2021-06-10","category":"法律"}\n{"title":"x","body":"外商投资 负面清单","id":"n-1"}\n' \
	>"$tmp/c3/docs.jsonl"
idx small-corpus --ngram-min-df 1 "$tmp/c3"
idx small-corpus-jsonl "$tmp/c3/docs.jsonl"
: >"$out/index/patch-none"                        # the built-in base index unchanged
printf '\020\001\000\000\377\000\002\000\000\000' >"$out/index/patch-two"

# ---- reply: streams recorded from the server, and the PROTOCOL.md example ----
printf 'OK 0 PONG\nOK 0 132\nOK 2 total=132 exact=1 took_us=41\n1\t法律/外商投资法(2019-03-15).md\n2\t地方性法规/上海/上海市外商投资条例(2020-09-25).md\nERR UNKNOWN unknown command "FOO" (try HELP)\n' \
	>"$out/reply/protocol-example"
printf 'OK 1 x\r\nfield\\twith\\\\escapes\\x00\\x7f\tsecond\r\nERR FUTURE99 a code we do not know\nOK 4294967295' \
	>"$out/reply/escapes-crlf"
port=$((20000 + $$ % 20000))
if [ -x bin/sousuo-server ] && [ -f laws.idx ]; then
	bin/sousuo-server -i laws.idx --port "$port" --threads 1 >/dev/null 2>&1 &
	srv=$!
	sleep 2
	# each stream ends with QUIT, whose reply is the server closing
	rec() {
		name=$1; shift
		exec 3<>"/dev/tcp/127.0.0.1/$port"
		printf '%s\n' "$@" QUIT >&3
		timeout 5 cat <&3 | head -c 16000 >"$out/reply/$name" || true
		exec 3<&-
	}
	rec ping-count PING 'COUNT 外商投资' 'COUNT title:外商投资法 | 数据'
	rec search 'SEARCH limit=3 外商投资 负面清单'
	rec search-fields 'SEARCH limit=5 fields=rank,id,score,date snippet=off 法' 'SEARCH limit=2 sort=date covid-19'
	rec errors FOO 'SEARCH limit=9999 x' 'SEARCH (外商' 'GET 99999999' "$(printf 'SEARCH a\377')"
	rec stats-help STATS HELP
	rec get 'GET 1'
fi
find "$out" -type f -size +20k -exec ls -l {} \;
echo "seeds: $(find "$out" -type f | wc -l) files, $(du -sk "$out" | cut -f1) KB"
