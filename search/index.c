/* index.c — maps and verifies an index file (format: indexer/writer.c) and
 * answers lookups into it.  Everything read from the file is checked before
 * it is trusted: section bounds at open, checksums at open, and every offset
 * taken from a table against the section it points into. */
#include "search/index.h"
#include "indexer/codec.h"
#include "indexer/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

static const char *const section_names[FMT_NSECTIONS] = {
	"DICTINDEX", "DICT", "POSTINGS", "POSITIONS", "DOCS", "CATEGORIES", "ZDICT", "STORE"
};

struct sousuo_index {
	void *map;
	size_t size;
	const fmt_header *h;
	const fmt_group *groups;
	size_t ngroups;
	const uint8_t *dict;
	size_t dict_len;
	const uint8_t *postings, *positions, *store;
	size_t postings_len, positions_len, store_len;
	const fmt_doc *docs;
	const uint32_t *cat_off;
	const char *cat_bytes;
	uint32_t ncat;
	ZSTD_DDict *ddict;
	double avg_body, avg_title;
	struct meta_cache *meta;   /* mutable behind the const index handles */
};

/* Every result line shows a document's path and title, and decompressing
 * that small frame cost as much as formatting the whole reply; so each
 * document's metadata is kept once decompressed, by whichever thread gets
 * there first, up to INDEX_META_CACHE_BYTES in all (then frames are
 * decompressed per call as before).  Freed with the index. */
struct meta_cache {
	atomic_size_t bytes;
	_Atomic(char *) slot[];    /* per document: uint32 length, bytes, NUL */
};

/* Two buffers, so that a document's metadata stays valid while its body is
 * decompressed: [0] meta, [1] body. */
struct index_store_ctx {
	ZSTD_DCtx *dctx;
	char *buf[2];
	size_t cap[2];
};

static int fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		int n = snprintf(err, errlen, "%s: ", path);
		va_start(ap, fmt);
		if (n >= 0 && (size_t)n < errlen)
			vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static const void *sec(const sousuo_index *ix, int s)
{
	return (const uint8_t *)ix->map + ix->h->sections[s].offset;
}

static size_t sec_len(const sousuo_index *ix, int s)
{
	return (size_t)ix->h->sections[s].length;
}

/* Checks the fixed tables: sizes that must agree, offsets within bounds,
 * keys strictly ascending. */
static int check_tables(sousuo_index *ix, const char *path, char *err, size_t errlen)
{
	const fmt_header *h = ix->h;
	ix->ngroups = (size_t)((h->nterms + FMT_GROUP - 1) / FMT_GROUP);
	if (sec_len(ix, FMT_SEC_DICTINDEX) != ix->ngroups * sizeof(fmt_group))
		return fail(err, errlen, path, "section DICTINDEX: %zu bytes for %llu terms",
		            sec_len(ix, FMT_SEC_DICTINDEX), (unsigned long long)h->nterms);
	if (sec_len(ix, FMT_SEC_DOCS) != (uint64_t)h->ndocs * sizeof(fmt_doc))
		return fail(err, errlen, path, "section DOCS: %zu bytes for %u documents",
		            sec_len(ix, FMT_SEC_DOCS), h->ndocs);
	ix->groups = sec(ix, FMT_SEC_DICTINDEX);
	ix->dict = sec(ix, FMT_SEC_DICT);
	ix->dict_len = sec_len(ix, FMT_SEC_DICT);
	ix->docs = sec(ix, FMT_SEC_DOCS);
	ix->postings = sec(ix, FMT_SEC_POSTINGS);
	ix->postings_len = sec_len(ix, FMT_SEC_POSTINGS);
	ix->positions = sec(ix, FMT_SEC_POSITIONS);
	ix->positions_len = sec_len(ix, FMT_SEC_POSITIONS);
	ix->store = sec(ix, FMT_SEC_STORE);
	ix->store_len = sec_len(ix, FMT_SEC_STORE);
	/* the group table: what lookups binary-search must be ordered and in
	 * bounds; the entries inside a group are checked when it is decoded */
	for (size_t g = 0; g < ix->ngroups; g++) {
		const fmt_group *gr = &ix->groups[g];
		if (gr->dict >= ix->dict_len || gr->postings >= ix->postings_len ||
		    (g && (gr->first_key <= gr[-1].first_key || gr->dict <= gr[-1].dict ||
		           gr->postings <= gr[-1].postings)))
			return fail(err, errlen, path, "section DICTINDEX: bad group %zu", g);
	}
	/* categories */
	size_t clen = sec_len(ix, FMT_SEC_CATEGORIES);
	const uint8_t *c = sec(ix, FMT_SEC_CATEGORIES);
	uint32_t n;
	if (clen < 8)
		return fail(err, errlen, path, "section CATEGORIES: too short");
	memcpy(&n, c, 4);
	if (n != h->ncategories || (uint64_t)n * 4 + 8 > clen)
		return fail(err, errlen, path, "section CATEGORIES: bad count %u", n);
	ix->ncat = n;
	ix->cat_off = (const uint32_t *)(c + 4);
	ix->cat_bytes = (const char *)(c + 8 + (size_t)n * 4);
	size_t room = clen - 8 - (size_t)n * 4;
	for (uint32_t i = 0; i < n; i++)
		if (ix->cat_off[i] > ix->cat_off[i + 1] || ix->cat_off[i + 1] > room)
			return fail(err, errlen, path, "section CATEGORIES: bad offset %u", i);
	for (uint32_t d = 0; d < h->ndocs; d++) {
		const fmt_doc *fd = &ix->docs[d];
		if (fd->category >= n)
			return fail(err, errlen, path, "section DOCS: document %u has bad category", d);
		if (fd->store > ix->store_len ||
		    (uint64_t)fd->meta_bytes + fd->body_bytes > ix->store_len - fd->store)
			return fail(err, errlen, path, "section DOCS: document %u points outside STORE", d);
	}
	return 0;
}

int index_open(const char *path, sousuo_index **out, char *err, size_t errlen)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, path, "cannot open: %s", strerror(errno));
	struct stat st;
	if (fstat(fd, &st)) {
		close(fd);
		return fail(err, errlen, path, "cannot stat: %s", strerror(errno));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(err, errlen, path, "not a regular file");
	}
	if ((size_t)st.st_size < sizeof(fmt_header)) {
		close(fd);
		return fail(err, errlen, path, "too short to be an index (%lld bytes)",
		            (long long)st.st_size);
	}
	void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return fail(err, errlen, path, "cannot map: %s", strerror(errno));
	sousuo_index *ix = calloc(1, sizeof *ix);
	if (!ix) {
		munmap(map, (size_t)st.st_size);
		return fail(err, errlen, path, "out of memory");
	}
	ix->map = map;
	ix->size = (size_t)st.st_size;
	ix->h = map;
	const fmt_header *h = ix->h;
	if (h->magic != FMT_MAGIC) {
		fail(err, errlen, path, "not a sousuo index (bad magic)");
		goto bad;
	}
	if (h->version != FMT_VERSION) {
		fail(err, errlen, path, "index format version %u, this program reads %u",
		     h->version, FMT_VERSION);
		goto bad;
	}
	if (h->header_checksum != XXH3_64bits(h, offsetof(fmt_header, header_checksum))) {
		fail(err, errlen, path, "header checksum mismatch");
		goto bad;
	}
	if (h->header_bytes != sizeof *h || h->nsections != FMT_NSECTIONS ||
	    h->block != SOUSUO_BLOCK) {
		fail(err, errlen, path, "header: unexpected layout");
		goto bad;
	}
	if (h->file_bytes != ix->size) {
		fail(err, errlen, path, "file is %zu bytes, header says %llu (truncated?)",
		     ix->size, (unsigned long long)h->file_bytes);
		goto bad;
	}
	if (h->ndocs > SOUSUO_MAX_DOCS) {
		fail(err, errlen, path, "header: %u documents is over the limit", h->ndocs);
		goto bad;
	}
	for (int s = 0; s < FMT_NSECTIONS; s++) {
		const fmt_section *fs = &h->sections[s];
		if (fs->offset < sizeof *h || fs->offset > ix->size ||
		    fs->length > ix->size - fs->offset || (fs->offset & 63)) {
			fail(err, errlen, path, "section %s: outside the file", section_names[s]);
			goto bad;
		}
		if (XXH3_64bits((const uint8_t *)map + fs->offset, fs->length) != fs->checksum) {
			fail(err, errlen, path, "section %s: checksum mismatch", section_names[s]);
			goto bad;
		}
	}
	if (check_tables(ix, path, err, errlen))
		goto bad;
	if (sec_len(ix, FMT_SEC_ZDICT)) {
		ix->ddict = ZSTD_createDDict(sec(ix, FMT_SEC_ZDICT), sec_len(ix, FMT_SEC_ZDICT));
		if (!ix->ddict) {
			fail(err, errlen, path, "section ZDICT: not a zstd dictionary");
			goto bad;
		}
	}
	ix->meta = calloc(1, sizeof *ix->meta + (size_t)h->ndocs * sizeof ix->meta->slot[0]);
	if (!ix->meta) {
		fail(err, errlen, path, "out of memory");
		goto bad;
	}
	ix->avg_body = h->ndocs ? (double)h->body_tokens / h->ndocs : 1.0;
	ix->avg_title = h->ndocs ? (double)h->title_tokens / h->ndocs : 1.0;
	if (ix->avg_body < 1)
		ix->avg_body = 1;
	if (ix->avg_title < 1)
		ix->avg_title = 1;
	*out = ix;
	return 0;
bad:
	index_close(ix);
	return -1;
}

int index_lock(sousuo_index *ix, char *err, size_t errlen)
{
	if (mlock(ix->map, ix->size) == 0)
		return 0;
	snprintf(err, errlen, "cannot lock %zu MB of index in memory: %s", ix->size >> 20,
	         strerror(errno));
	return -1;
}

void index_close(sousuo_index *ix)
{
	if (!ix)
		return;
	if (ix->meta) {
		for (uint32_t i = 0; i < ix->h->ndocs; i++)
			free(atomic_load_explicit(&ix->meta->slot[i], memory_order_relaxed));
		free(ix->meta);
	}
	ZSTD_freeDDict(ix->ddict);
	munmap(ix->map, ix->size);
	free(ix);
}

const fmt_header *index_header(const sousuo_index *ix) { return ix->h; }
uint32_t index_ndocs(const sousuo_index *ix) { return ix->h->ndocs; }
double index_avg_body(const sousuo_index *ix) { return ix->avg_body; }
double index_avg_title(const sousuo_index *ix) { return ix->avg_title; }
const fmt_doc *index_doc(const sousuo_index *ix, uint32_t doc) { return &ix->docs[doc]; }
uint32_t index_ncategories(const sousuo_index *ix) { return ix->ncat; }

const char *index_category(const sousuo_index *ix, uint32_t id, size_t *len)
{
	*len = ix->cat_off[id + 1] - ix->cat_off[id];
	return ix->cat_bytes + ix->cat_off[id];
}

int index_lookup(const sousuo_index *ix, uint64_t key, index_term *t)
{
	/* the last group whose first key is <= key */
	size_t lo = 0, hi = ix->ngroups;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ix->groups[mid].first_key <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return 0;
	size_t g = lo - 1;
	const fmt_group *gr = &ix->groups[g];
	const uint8_t *p = ix->dict + gr->dict;
	const uint8_t *end = g + 1 < ix->ngroups ? ix->dict + gr[1].dict : ix->dict + ix->dict_len;
	uint64_t postings_end = g + 1 < ix->ngroups ? gr[1].postings : ix->postings_len;
	uint64_t k = gr->first_key, off = gr->postings;
	uint64_t n = ix->h->nterms - (uint64_t)g * FMT_GROUP;
	if (n > FMT_GROUP)
		n = FMT_GROUP;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t delta = 0, df, bytes;
		if (i && !(p = codec_varint_get(p, end, &delta)))
			return 0;
		if (!(p = codec_varint_get(p, end, &df)) || !(p = codec_varint_get(p, end, &bytes)))
			return 0;
		if ((i && delta == 0) || k + delta < k || df == 0 || df > ix->h->ndocs ||
		    bytes > postings_end - off)
			return 0;   /* corrupt group: the term is treated as absent */
		k += delta;
		if (k == key) {
			t->key = key;
			t->df = (uint32_t)df;
			t->blob = ix->postings + off;
			t->blob_end = t->blob + bytes;
			t->pos_base = ix->positions;
			t->pos_end = ix->positions + ix->positions_len;
			t->ndocs = ix->h->ndocs;
			return 1;
		}
		if (k > key)
			return 0;
		off += bytes;
	}
	return 0;
}

index_store_ctx *index_store_ctx_new(void)
{
	index_store_ctx *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->dctx = ZSTD_createDCtx();
	if (!c->dctx) {
		free(c);
		return NULL;
	}
	return c;
}

void index_store_ctx_free(index_store_ctx *c)
{
	if (!c)
		return;
	ZSTD_freeDCtx(c->dctx);
	free(c->buf[0]);
	free(c->buf[1]);
	free(c);
}

/* Decompresses one frame into c->buf[which] (+ NUL); returns its length or -1. */
static ssize_t frame(const sousuo_index *ix, index_store_ctx *c, int which,
                     const uint8_t *src, size_t n)
{
	unsigned long long size = ZSTD_getFrameContentSize(src, n);
	if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
	    size > SOUSUO_MAX_DOC_BYTES)
		return -1;
	if (size + 1 > c->cap[which]) {
		char *b = realloc(c->buf[which], size + 1);
		if (!b)
			return -1;
		c->buf[which] = b;
		c->cap[which] = size + 1;
	}
	char *out = c->buf[which];
	size_t r = ix->ddict ? ZSTD_decompress_usingDDict(c->dctx, out, size, src, n, ix->ddict)
	                     : ZSTD_decompressDCtx(c->dctx, out, size, src, n);
	if (ZSTD_isError(r) || r != size)
		return -1;
	out[r] = 0;
	return (ssize_t)r;
}

/* The three NUL-terminated strings of a meta frame p[0..n), p[n] = 0. */
static int parse_meta(const char *p, size_t n, index_meta *m)
{
	const char *end = p + n;
	m->path = p;
	p = memchr(p, 0, (size_t)(end - p));
	if (!p || p + 1 >= end)
		return -1;
	m->title = ++p;
	p = memchr(p, 0, (size_t)(end - p));
	if (!p)
		return -1;
	m->ext_id = p + 1 <= end ? p + 1 : end;
	return 0;
}

int index_doc_meta(const sousuo_index *ix, index_store_ctx *c, uint32_t doc, index_meta *m)
{
	_Atomic(char *) *slot = &ix->meta->slot[doc];
	char *hit = atomic_load_explicit(slot, memory_order_acquire);
	uint32_t len;
	if (hit) {
		memcpy(&len, hit, sizeof len);
		return parse_meta(hit + sizeof len, len, m);
	}
	const fmt_doc *d = &ix->docs[doc];
	ssize_t n = frame(ix, c, 0, ix->store + d->store, d->meta_bytes);
	if (n < 0 || parse_meta(c->buf[0], (size_t)n, m))
		return -1;
	size_t need = sizeof len + (size_t)n + 1;
	if (atomic_fetch_add_explicit(&ix->meta->bytes, need, memory_order_relaxed) + need >
	    INDEX_META_CACHE_BYTES)
		return 0;   /* the cache is full: this copy in c serves */
	char *copy = malloc(need);
	if (!copy)
		return 0;
	len = (uint32_t)n;
	memcpy(copy, &len, sizeof len);
	memcpy(copy + sizeof len, c->buf[0], (size_t)n + 1);
	char *expected = NULL;
	if (!atomic_compare_exchange_strong_explicit(slot, &expected, copy, memory_order_acq_rel,
	                                             memory_order_acquire)) {
		free(copy);   /* another thread cached it first */
		copy = expected;
	}
	return parse_meta(copy + sizeof len, len, m);
}

const char *index_doc_body(const sousuo_index *ix, index_store_ctx *c, uint32_t doc, size_t *len)
{
	const fmt_doc *d = &ix->docs[doc];
	ssize_t n = frame(ix, c, 1, ix->store + d->store + d->meta_bytes, d->body_bytes);
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return c->buf[1];
}
