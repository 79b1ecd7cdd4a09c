/* fuzz_index.c — libFuzzer target for the index loader and everything that
 * reads an opened index: index_open's checks (search/index.c), dictionary
 * lookups, the postings decoder (search/postings.c, indexer/codec.c), the
 * document store, and the engine and snippets over what they return.  An
 * index file is untrusted input (a bad disk, a half-copied file, RELOAD of
 * the wrong file): the reader must refuse it or serve it without reading
 * outside the mapping, whatever the bytes.
 *
 * An input is one of two things:
 *  - a whole index file (it starts with the magic "SOUSUOIX"; the seeds in
 *    tests/fuzz/corpus/index are real files from bin/sousuo-index), or
 *  - anything else: a list of 5-byte patches (u32 little-endian offset,
 *    modulo the size, and the byte to put there) applied to a valid index
 *    written at start-up, so short inputs reach deep into a real file.
 * A file is opened as it is, then again with its checksums recomputed
 * (and file_bytes set to its size): nearly every mutation breaks a
 * checksum, and this second open is what lets the fuzzer past them to the
 * structural checks and the decoders behind them.
 *
 * index_open wants a path, so the bytes go into a memfd opened through
 * /proc/self/fd: no file on disk per input. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "indexer/codec.h"
#include "indexer/format.h"
#include "indexer/keys.h"
#include "search/engine.h"
#include "search/index.h"
#include "search/postings.h"
#include "search/query.h"
#include "search/snippet.h"
#include "tests/fuzz/fuzz_util.h"

/* Bounds on the work per input, so that a large but valid-looking file
 * cannot make one input take seconds. */
#define IX_MAX_DOCS 64
#define IX_MAX_TERMS 2048
#define IX_MAX_POSTINGS 4096

static const char *const ix_queries[] = {
	"外商投资", "外商", "外", "投资外商投资", "中华人民共和国", "人民代表大会常务委员会",
	"covid-19", "\"covid 19\"", "500万元", "app", "5g网络", "title:外商投资法",
	"title:法", "外商 | 投资", "外商投资 -负面清单", "(外商 | 数据) 安全 -title:a",
	"category:法律", "category:地方性法规/北京 外商", "date>=2019 外商", "date<2021",
	"外商投资 sort:date", "-外商", "安全 法 | 条例",
};
#define IX_NQUERIES (sizeof ix_queries / sizeof ix_queries[0])

static struct {
	int ready;
	int fd;                    /* the memfd the bytes are written to */
	char path[64];             /* /proc/self/fd/N */
	uint8_t *base;             /* the valid index patches apply to */
	size_t base_len;
	uint8_t *buf;              /* the file being tried */
	size_t cap;
	query *q[IX_NQUERIES];
	engine_ctx *ec;
	snippet_ctx *sn;
	index_store_ctx *st;
} ix_g;

/* The base index: more than one postings block for the common keys, n-gram
 * terms, words, pairs, categories, dates, external ids. */
static void ix_init(void)
{
	static const char *const bodies[] = {
		"外商投资", "投资外商投资", "中华人民共和国外商投资法\n第一条 为了进一步扩大对外开放",
		"covid-19 防控 500万元 罚款", "app 5G网络 数据安全", "人民代表大会常务委员会",
		"外商投\n资 负面清单", "ＡＰＰ 个人信息保护",
	};
	static const char *const names[] = { "外商投资法", "数据安全法", "a", "北京市外商投资条例" };
	static const char *const cats[] = { "", "法律", "地方性法规/北京", "地方性法规/上海" };
	enum { N = 140 };
	static fuzz_doc docs[N];
	static char paths[N][32], ids[N][16];
	for (int i = 0; i < N; i++) {
		snprintf(paths[i], sizeof paths[i], "d%03d.md", i);
		snprintf(ids[i], sizeof ids[i], "%d", i * 7);
		docs[i] = (fuzz_doc){ paths[i], names[i % 4], names[(i / 4) % 4], cats[i % 4],
		                      i % 5 ? NULL : ids[i], bodies[i % 8],
		                      i % 3 ? 20190101u + (uint32_t)(i % 12) * 100 : 0 };
	}
	sousuo_index *ix = fuzz_build_index(docs, N, 1, "index", &ix_g.base, &ix_g.base_len);
	FUZZ_CHECK(ix != NULL && ix_g.base_len > sizeof(fmt_header));
	index_close(ix);

	ix_g.fd = memfd_create("sousuo-fuzz-index", MFD_CLOEXEC);
	FUZZ_CHECK(ix_g.fd >= 0);
	snprintf(ix_g.path, sizeof ix_g.path, "/proc/self/fd/%d", ix_g.fd);
	for (size_t i = 0; i < IX_NQUERIES; i++) {
		ix_g.q[i] = query_parse(ix_queries[i], strlen(ix_queries[i]), NULL);
		FUZZ_CHECK(ix_g.q[i] != NULL);
	}
	ix_g.ec = engine_ctx_new();
	ix_g.sn = snippet_ctx_new();
	ix_g.st = index_store_ctx_new();
	FUZZ_CHECK(ix_g.ec && ix_g.sn && ix_g.st);
	ix_g.ready = 1;
}

/* Recomputes what a mutation breaks first: file_bytes, every in-bounds
 * section's checksum, and the header checksum. */
static void ix_repair(uint8_t *b, size_t len)
{
	if (len < sizeof(fmt_header))
		return;
	fmt_header h;
	memcpy(&h, b, sizeof h);
	h.file_bytes = len;
	for (int s = 0; s < FMT_NSECTIONS; s++) {
		fmt_section *fs = &h.sections[s];
		if (fs->offset <= len && fs->length <= len - fs->offset)
			fs->checksum = XXH3_64bits(b + fs->offset, fs->length);
	}
	h.header_checksum = XXH3_64bits(&h, offsetof(fmt_header, header_checksum));
	memcpy(b, &h, sizeof h);
}

/* Every key of the dictionary, decoded from DICTINDEX and DICT as
 * docs/INDEX-FORMAT.md describes, so that lookups reach every term (and
 * some keys that are not there). */
static size_t ix_keys(const uint8_t *b, size_t len, uint64_t *keys, size_t max)
{
	fmt_header h;
	memcpy(&h, b, sizeof h);
	const fmt_section *gi = &h.sections[FMT_SEC_DICTINDEX], *di = &h.sections[FMT_SEC_DICT];
	if (gi->offset > len || gi->length > len - gi->offset || di->offset > len ||
	    di->length > len - di->offset)
		return 0;
	size_t n = 0, ngroups = (size_t)(gi->length / sizeof(fmt_group));
	const uint8_t *dict = b + di->offset, *dend = dict + di->length;
	for (size_t g = 0; g < ngroups && n < max; g++) {
		fmt_group gr;
		memcpy(&gr, b + gi->offset + g * sizeof gr, sizeof gr);
		uint64_t k = gr.first_key;
		keys[n++] = k;
		if (gr.dict >= di->length)
			continue;
		const uint8_t *p = dict + gr.dict;
		for (int i = 0; i < FMT_GROUP && n < max; i++) {
			uint64_t delta = 0, df, bytes;
			if (i && !(p = codec_varint_get(p, dend, &delta)))
				break;
			if (!(p = codec_varint_get(p, dend, &df)) || !(p = codec_varint_get(p, dend, &bytes)))
				break;
			k += delta;
			if (i)
				keys[n++] = k;
			if (n < max)
				keys[n++] = k + 1;   /* usually absent */
		}
	}
	return n;
}

/* Walks one term's postings with every cursor call the engine makes.  The
 * cursor's buffers may never outgrow what the file's bytes could fill (a
 * block of up to 128 values takes at least a byte): a corrupt count must
 * not turn into a huge allocation, which a plain build would not notice. */
static void ix_walk_term(const sousuo_index *ix, uint64_t key, pcur *c, uint32_t *budget,
                         size_t len)
{
	uint64_t most = (uint64_t)len * SOUSUO_BLOCK + 64;
	index_term t;
	if (!index_lookup(ix, key, &t))
		return;
	FUZZ_CHECK(t.key == key && t.df >= 1 && t.df <= index_ndocs(ix));
	FUZZ_CHECK(t.blob <= t.blob_end && t.pos_base <= t.pos_end);
	if (pcur_open(c, &t))
		return;
	uint32_t prev = 0, seen = 0;
	while (c->doc != PCUR_END && *budget > 0) {
		FUZZ_CHECK(seen == 0 || c->doc > prev);
		FUZZ_CHECK(pcur_tf(c) >= 1);
		prev = c->doc;
		seen++;
		(*budget)--;
		uint32_t n;
		const uint32_t *pos = pcur_positions(c, &n);
		FUZZ_CHECK(c->pos_cap <= most && c->docpos_cap <= most);
		if (pos) {
			FUZZ_CHECK(n == pcur_tf(c));
			for (uint32_t i = 1; i < n; i++)
				FUZZ_CHECK(pos[i] > pos[i - 1]);
		}
		if (seen % 3 == 0)
			pcur_seek(c, c->doc + 2 + seen % 50);
		else
			pcur_next(c);
	}
	FUZZ_CHECK(seen <= t.df);
	/* the block-at-a-time interface of the scoring loops */
	if (pcur_open(c, &t))
		return;
	while (*budget > 0) {
		if (pcur_block_load(c))
			break;
		FUZZ_CHECK(c->n >= 1 && c->n <= SOUSUO_BLOCK);
		*budget -= *budget < c->n ? *budget : c->n;
		if (pcur_block_next(c))
			break;
	}
}

/* Uses an opened index the way the daemon would. */
static void ix_exercise(sousuo_index *ix, const uint8_t *b, size_t len)
{
	uint32_t ndocs = index_ndocs(ix);
	for (uint32_t d = 0; d < ndocs && d < IX_MAX_DOCS; d++) {
		index_meta m;
		if (index_doc_meta(ix, ix_g.st, d, &m) == 0) {
			FUZZ_CHECK(m.path && m.title && m.ext_id);
			(void)(strlen(m.path) + strlen(m.title) + strlen(m.ext_id));
		}
		size_t blen = 0;
		const char *body = index_doc_body(ix, ix_g.st, d, &blen);
		if (body)
			FUZZ_CHECK(body[blen] == 0);
		const fmt_doc *fd = index_doc(ix, d);
		size_t cl;
		FUZZ_CHECK(fd->category < index_ncategories(ix));
		const char *cat = index_category(ix, fd->category, &cl);
		(void)memchr(cat, 0, cl);   /* the sanitizer checks the range */
	}

	static uint64_t keys[IX_MAX_TERMS];
	static pcur cur;
	size_t nk = ix_keys(b, len, keys, IX_MAX_TERMS);
	uint32_t budget = IX_MAX_POSTINGS;
	for (size_t i = 0; i < nk && budget > 0; i++)
		ix_walk_term(ix, keys[i], &cur, &budget, len);
	pcur_free(&cur);

	for (size_t i = 0; i < IX_NQUERIES; i++) {
		engine_opts o;
		engine_opts_default(&o);
		o.generic = (int)(i & 1);
		o.exact_total = (int)(i % 3 != 0);
		engine_result r;
		char err[256];
		if (engine_search(ix_g.ec, ix, ix_g.q[i], &o, &r, err, sizeof err) != 0)
			continue;
		FUZZ_CHECK(r.nhits <= o.limit && r.nhits <= r.total);
		for (uint32_t h = 0; h < r.nhits && h < 3; h++) {
			uint32_t d = r.hits[h].doc;
			FUZZ_CHECK(d < ndocs);
			size_t blen;
			const char *body = index_doc_body(ix, ix_g.st, d, &blen);
			if (body) {
				snippet_opts so;
				snippet_opts_default(&so);
				FUZZ_CHECK(snippet_make(ix_g.sn, ix_g.q[i], body, blen, &so) != NULL);
			}
			char out[1024];
			engine_explain(ix_g.ec, ix, ix_g.q[i], &o, d, out, sizeof out);
		}
	}
}

/* Writes the bytes to the memfd and opens them; on success, uses the index. */
static void ix_try(const uint8_t *b, size_t len)
{
	FUZZ_CHECK(ftruncate(ix_g.fd, 0) == 0);
	FUZZ_CHECK(len == 0 || pwrite(ix_g.fd, b, len, 0) == (ssize_t)len);
	sousuo_index *ix = NULL;
	char err[512];
	err[0] = 0;
	if (index_open(ix_g.path, &ix, err, sizeof err) != 0) {
		FUZZ_CHECK(ix == NULL && err[0] != 0 && strnlen(err, sizeof err) < sizeof err);
		return;
	}
	FUZZ_CHECK(ix != NULL && len >= sizeof(fmt_header));
	ix_exercise(ix, b, len);
	index_close(ix);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ix_g.ready)
		ix_init();
	bool raw = size >= 8 && memcmp(data, "SOUSUOIX", 8) == 0;
	size_t len = raw ? size : ix_g.base_len;
	if (len > ix_g.cap) {
		uint8_t *p = realloc(ix_g.buf, len);
		FUZZ_CHECK(p != NULL);
		ix_g.buf = p;
		ix_g.cap = len;
	}
	if (raw) {
		memcpy(ix_g.buf, data, len);
		ix_try(ix_g.buf, len);
	} else {
		memcpy(ix_g.buf, ix_g.base, len);
		for (size_t i = 0; i + 5 <= size; i += 5) {
			uint32_t off;
			memcpy(&off, data + i, 4);
			ix_g.buf[off % len] = data[i + 4];
		}
	}
	ix_repair(ix_g.buf, len);
	ix_try(ix_g.buf, len);
	return 0;
}
