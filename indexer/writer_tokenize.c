/* writer_tokenize.c — the tokenizing: each worker's term table and chains,
 * recording a document's occurrences, and the threads that take jobs off the
 * queue.  Called by writer.c (writer_int.h). */
#include "indexer/writer_int.h"
#include "indexer/keys.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CJK_DIRECT 0x30000u        /* body CJK terms below this code point (all
                                      of text.h's CJK) are in an array */
#define CHAIN_MAX (1u << 30)       /* a chain longer than this: out of memory */

/* ---- chains ---- */

/* A chain on the heap (longer than CHAIN_INLINE) has room for one more
 * varint: the allocation is the power of two (at least 32) that holds len +
 * CODEC_VARINT_MAX. */
static inline uint32_t chain_cap(uint32_t len)
{
	uint32_t need = len + CODEC_VARINT_MAX;
	return need <= 32 ? 32 : 2u << (31 - __builtin_clz(need - 1));
}

static int chain_grow(bterm *t, uint32_t old_cap)
{
	uint32_t cap = chain_cap(t->len);
	if (cap == old_cap)
		return 0;
	if (t->len > CHAIN_MAX)
		return -1;
	uint8_t *p = realloc(t->chain.p, cap);
	if (!p)
		return -1;
	t->chain.p = p;
	return 0;
}

static inline int chain_put(bterm *t, uint64_t v)
{
	if (t->len > CHAIN_INLINE) {
		uint32_t cap = chain_cap(t->len);
		t->len += (uint32_t)codec_varint_put(t->chain.p + t->len, v);
		return chain_cap(t->len) == cap ? 0 : chain_grow(t, cap);
	}
	/* inline there is no room to spare: the varint's length first */
	uint32_t n = v < 0x80 ? 1 : (70 - (uint32_t)__builtin_clzll(v)) / 7;
	if (t->len + n <= CHAIN_INLINE) {
		t->len += (uint32_t)codec_varint_put(t->chain.in + t->len, v);
		return 0;
	}
	uint8_t *p = malloc(chain_cap(t->len + n));
	if (!p)
		return -1;
	memcpy(p, t->chain.in, t->len);
	t->chain.p = p;
	t->len += (uint32_t)codec_varint_put(p + t->len, v);
	return 0;
}

/* ---- the term table (termtab) ---- */

static inline size_t tt_home(uint64_t key, unsigned bits)
{
	/* keys of bigrams are code points side by side: multiply to mix them
	 * into the high bits, which are the ones used */
	return (size_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

static inline uint32_t tt_tag(uint64_t key)
{
	return (uint32_t)key ^ (uint32_t)(key >> 32);
}

static inline bterm *tt_term(const termtab *tt, uint32_t idx)
{
	return &tt->chunk[idx >> TERM_CHUNK_BITS][idx & (TERM_CHUNK - 1)];
}

/* Puts term idx into the table, which has room and does not hold its key. */
static void tt_place(termtab *tt, uint64_t key, uint32_t idx)
{
	size_t mask = ((size_t)1 << tt->bits) - 1, i = tt_home(key, tt->bits);
	while (tt->slot[i].idx)
		i = (i + 1) & mask;
	tt->slot[i].tag = tt_tag(key);
	tt->slot[i].idx = idx + 1;
}

/* Doubles the slots.  The old ones go first and the new are refilled from
 * the chunks: no moment holds both.  On failure the table has no slots (the
 * terms, and so their chains, stay reachable for worker_free). */
static int tt_grow(termtab *tt)
{
	free(tt->slot);
	tt->bits++;
	if (!(tt->slot = calloc((size_t)1 << tt->bits, sizeof *tt->slot)))
		return -1;
	for (size_t i = 0; i < tt->n; i++)
		tt_place(tt, tt_term(tt, (uint32_t)i)->key, (uint32_t)i);
	return 0;
}

static bterm *tt_find(const termtab *tt, uint64_t key)
{
	size_t mask = ((size_t)1 << tt->bits) - 1;
	uint32_t tag = tt_tag(key);
	for (size_t i = tt_home(key, tt->bits);; i = (i + 1) & mask) {
		tslot s = tt->slot[i];
		if (!s.idx)
			return NULL;
		if (s.tag == tag) {
			bterm *t = tt_term(tt, s.idx - 1);
			if (t->key == key)
				return t;
		}
	}
}

/* Returns the term for key, creating it; NULL when out of memory.  The
 * pointer stays valid: terms do not move until the table is sealed. */
static inline bterm *tt_get(termtab *tt, uint64_t key)
{
	bterm *t = tt_find(tt, key);
	if (t)
		return t;
	if ((tt->n + 1) * 8 > ((size_t)5 << tt->bits) && tt_grow(tt))
		return NULL;
	if (tt->n >= UINT32_MAX - 1)
		return NULL;
	if (tt->n == tt->nchunks * TERM_CHUNK) {
		bterm **c = realloc(tt->chunk, (tt->nchunks + 1) * sizeof *c);
		if (!c)
			return NULL;
		tt->chunk = c;
		if (!(c[tt->nchunks] = malloc(TERM_CHUNK * sizeof(bterm))))
			return NULL;
		tt->nchunks++;
	}
	uint32_t idx = (uint32_t)tt->n++;
	t = tt_term(tt, idx);
	memset(t, 0, sizeof *t);
	t->key = key;
	t->last_doc = UINT32_MAX;
	tt_place(tt, key, idx);
	return t;
}

/* ---- tokenizing ---- */

static int touch(tworker *wk, uint64_t key)
{
	if (wk->ntouched == wk->captouched) {
		size_t cap = wk->captouched ? wk->captouched * 2 : 1024;
		uint64_t *p = realloc(wk->touched, cap * sizeof *p);
		if (!p)
			return -1;
		wk->touched = p;
		wk->captouched = cap;
	}
	wk->touched[wk->ntouched++] = key;
	return 0;
}

/* 1 if key's term lives in the worker's cjk array: a body CJK character. */
static inline int cjk_direct(uint64_t key)
{
	return fmt_key_kind(key) == FMT_KIND_CJK && !(key & FMT_KEY_TITLE) &&
	       (key & FMT_KEY_VALUE_MASK) < CJK_DIRECT;
}

/* Records one occurrence of key at pos in document doc. */
static inline int occur(tworker *wk, uint64_t key, uint32_t doc, uint32_t pos)
{
	bterm *t;
	if (!fmt_key_positional(key)) {
		if (cjk_direct(key)) {
			t = &wk->cjk[key & FMT_KEY_VALUE_MASK];
			if (!t->key) {
				t->key = key;
				t->last_doc = UINT32_MAX;
			}
		} else if (!(t = tt_get(&wk->tt, key))) {
			return -1;
		}
		if (t->last_doc != doc) {
			/* UINT32_MAX + 1 wraps to 0: the first gap is the doc */
			if (touch(wk, key) || chain_put(t, doc - (t->last_doc + 1)))
				return -1;
			t->df++;
			t->last_doc = doc;
			t->last = 0;
		}
		t->last++;
		return 0;
	}
	if (!(t = tt_get(&wk->tt, key)))
		return -1;
	wk->npositions++;
	if (t->last_doc != doc) {
		uint32_t gap = doc - (t->last_doc + 1);
		t->df++;
		t->last_doc = doc;
		t->last = pos;
		return chain_put(t, ((uint64_t)gap << 1) | 1) || chain_put(t, pos) ? -1 : 0;
	}
	uint32_t delta = pos - t->last;
	t->last = pos;
	return chain_put(t, (uint64_t)delta << 1);
}

/* Writes the tf of every doc-level term the document touched. */
static int flush_touched(tworker *wk)
{
	for (size_t i = 0; i < wk->ntouched; i++) {
		uint64_t key = wk->touched[i];
		bterm *t = cjk_direct(key) ? &wk->cjk[key & FMT_KEY_VALUE_MASK]
		                           : tt_find(&wk->tt, key);
		if (chain_put(t, t->last))
			return -1;
	}
	wk->ntouched = 0;
	return 0;
}

/* Keys are recorded in batches: computing a batch first lets the hash slots
 * and then the terms of the next keys be fetched while the current ones are
 * recorded. */
#define BATCH 256
#define AHEAD 8
typedef struct {
	uint64_t key[BATCH];
	uint32_t pos[BATCH];
	size_t n;
} kbatch;

/* What to fetch for a key 2 * AHEAD keys ahead: its CJK term, else its home
 * slot.  (__builtin_prefetch is called at the loop: GCC 12 drops it from the
 * branches of an inlined helper.) */
static inline const void *key_home(const tworker *wk, uint64_t key)
{
	return cjk_direct(key) ? (const void *)&wk->cjk[key & FMT_KEY_VALUE_MASK]
	                       : (const void *)&wk->tt.slot[tt_home(key, wk->tt.bits)];
}

/* What to fetch for a key AHEAD keys ahead, its home slot fetched by now:
 * the term that slot names when the tag matches (else the slot again, a
 * harmless fetch).  Without it every key would wait for its term on top of
 * its slot: on corpora with millions of terms this fetch saves about a sixth
 * of the tokenizing time. */
static inline const void *key_term(const tworker *wk, uint64_t key)
{
	if (cjk_direct(key))
		return &wk->cjk[key & FMT_KEY_VALUE_MASK];
	const tslot *s = &wk->tt.slot[tt_home(key, wk->tt.bits)];
	return s->idx && s->tag == tt_tag(key) ? (const void *)tt_term(&wk->tt, s->idx - 1)
	                                       : (const void *)s;
}

static int batch_flush(tworker *wk, kbatch *b, uint32_t doc)
{
	for (size_t i = 0; i < b->n && i < 2 * AHEAD; i++)
		__builtin_prefetch(key_home(wk, b->key[i]));
	for (size_t i = 0; i < b->n && i < AHEAD; i++)
		__builtin_prefetch(key_term(wk, b->key[i]));
	for (size_t i = 0; i < b->n; i++) {
		if (i + 2 * AHEAD < b->n)
			__builtin_prefetch(key_home(wk, b->key[i + 2 * AHEAD]));
		if (i + AHEAD < b->n)
			__builtin_prefetch(key_term(wk, b->key[i + AHEAD]));
		if (occur(wk, b->key[i], doc, b->pos[i]))
			return -1;
	}
	b->n = 0;
	return 0;
}

/* Tokenizes text into keys (with the title bit when title) for document doc;
 * returns the token count or -1.  A title also gets every run of 3 and of 4
 * adjacent CJK characters as its own key (not only the frequent ones, as in
 * bodies): titles are short, so this is cheap, and it turns the title check
 * of the commonest queries (3-4 characters) into a tf read instead of a
 * position alignment for each document with the characters in its title. */
static int64_t index_text(tworker *wk, const char *text, size_t len, uint32_t doc, int title)
{
	text_token tok;
	uint64_t prev_key = 0;
	uint32_t prev_pos = 0, run = 0, cps[4];   /* the title's current CJK run, its last 4 */
	int64_t n = 0;
	kbatch b;
	b.n = 0;
	text_tokenizer_reset(wk->tk, text, len);
	while (text_tokenizer_next(wk->tk, &tok)) {
		uint64_t key = keys_token(tok.kind, tok.cp, tok.word, tok.word_len);
		if (b.n + 4 > BATCH && batch_flush(wk, &b, doc))
			return -1;
		b.key[b.n] = title ? keys_title(key) : key;
		b.pos[b.n++] = tok.pos;
		if (n > 0 && tok.pos == prev_pos + 1) {
			uint64_t pk = keys_pair(prev_key, key);
			if (pk) {
				b.key[b.n] = title ? keys_title(pk) : pk;
				b.pos[b.n++] = prev_pos;
			}
		}
		if (title) {
			int cjk = tok.kind == TEXT_TOK_CJK;
			run = !cjk ? 0 : n > 0 && run && tok.pos == prev_pos + 1 ? run + 1 : 1;
			if (cjk) {
				memmove(cps, cps + 1, 3 * sizeof *cps);
				cps[3] = tok.cp;
			}
			for (uint32_t k = 3; k <= 4 && k <= run; k++) {
				b.key[b.n] = keys_title(keys_ngram(cps + 4 - k, k));
				b.pos[b.n++] = tok.pos + 1 - k;
			}
		}
		prev_key = key;
		prev_pos = tok.pos;
		n++;
		if (tok.pos >= UINT32_MAX - 4)
			break;  /* unreachable under SOUSUO_MAX_DOC_BYTES; keeps positions 32-bit */
	}
	if (batch_flush(wk, &b, doc))
		return -1;
	return n;
}

/* Records document id: its body and its title field. */
int tokenize_doc(tworker *wk, uint32_t id, jdoc *d)
{
	int64_t nb = index_text(wk, d->body, d->body_len, id, 0);
	if (nb < 0)
		return -1;
	int64_t nt = index_text(wk, d->name, strlen(d->name), id, 1);
	if (nt < 0 || flush_touched(wk))
		return -1;
	d->body_tokens = nb > UINT32_MAX ? UINT32_MAX : (uint32_t)nb;
	d->title_tokens = nt > 65535 ? 65535 : (uint32_t)nt;
	return 0;
}

static int cmp_key(const void *a, const void *b)
{
	uint64_t x = ((const bterm *)a)->key, y = ((const bterm *)b)->key;
	return x < y ? -1 : x > y;
}

/* Frees the table's slots and chunks; with chains, the terms' chains too. */
static void tt_free(termtab *tt, int chains)
{
	for (size_t i = 0; chains && i < tt->n; i++)
		chain_free(tt_term(tt, (uint32_t)i));
	for (size_t c = 0; c < tt->nchunks; c++)
		free(tt->chunk[c]);
	free(tt->chunk);
	free(tt->slot);
	memset(tt, 0, sizeof *tt);
}

/* Moves all of a worker's terms into one array sorted by key. */
static int worker_seal(tworker *wk)
{
	termtab *tt = &wk->tt;
	size_t n = tt->n, ncjk = 0;
	for (uint32_t cp = 0; cp < CJK_DIRECT; cp++)
		ncjk += wk->cjk[cp].key != 0;
	/* the slots first: they are of no use any more */
	free(tt->slot);
	tt->slot = NULL;
	bterm *a = malloc((n + ncjk + 1) * sizeof *a);
	if (!a)
		return -1;
	for (size_t c = 0; c < tt->nchunks; c++) {
		size_t k = n - c * TERM_CHUNK < TERM_CHUNK ? n - c * TERM_CHUNK : TERM_CHUNK;
		memcpy(a + c * TERM_CHUNK, tt->chunk[c], k * sizeof *a);
	}
	tt_free(tt, 0);  /* the chains are a's now */
	for (uint32_t cp = 0; cp < CJK_DIRECT; cp++)
		if (wk->cjk[cp].key)
			a[n++] = wk->cjk[cp];
	free(wk->cjk);
	wk->cjk = NULL;
	qsort(a, n, sizeof *a, cmp_key);
	wk->terms = a;
	wk->nterms = n;
	return 0;
}

/* ---- the tokenizing threads and their job queue ---- */

static void *tok_main(void *arg)
{
	tworker *wk = arg;
	index_writer *w = wk->w;
	int abort = 0;
	for (;;) {
		pthread_mutex_lock(&w->q_lock);
		while (!w->q_head && !w->q_closing)
			pthread_cond_wait(&w->q_cond, &w->q_lock);
		tjob *j = w->q_head;
		if (j) {
			w->q_head = j->next;
			if (!w->q_head)
				w->q_tail = NULL;
		}
		abort = w->q_abort;
		pthread_mutex_unlock(&w->q_lock);
		if (!j)
			break;
		j->next = wk->done;
		wk->done = j;
		if (abort || wk->failed)
			continue;
		for (uint32_t k = 0; k < j->n && !wk->failed; k++)
			if (tokenize_doc(wk, j->first + k, &j->d[k]))
				wk->failed = 1;
		if (wk->failed) {
			pthread_mutex_lock(&w->q_lock);
			w->q_failed = 1;
			pthread_mutex_unlock(&w->q_lock);
		}
	}
	if (!abort && !wk->failed && worker_seal(wk))
		wk->failed = 1;
	return NULL;
}

int queue_push(index_writer *w, tjob *j)
{
	pthread_mutex_lock(&w->q_lock);
	int failed = w->q_failed;
	if (!failed) {
		j->next = NULL;
		if (w->q_tail)
			w->q_tail->next = j;
		else
			w->q_head = j;
		w->q_tail = j;
		pthread_cond_signal(&w->q_cond);
	}
	pthread_mutex_unlock(&w->q_lock);
	if (failed)
		free(j);
	return failed ? -1 : 0;
}

/* Starts a tokenizing thread for each worker. */
void start_threads(index_writer *w)
{
	/* fewer threads than asked for (even none) still give the same index */
	for (size_t i = 0; i < w->nwk; i++) {
		if (pthread_create(&w->wk[i].th, NULL, tok_main, &w->wk[i]))
			break;
		w->wk[i].running = 1;
		w->nthreads++;
	}
}

/* Ends the tokenizing threads: with abort, dropping the jobs still queued. */
void stop_threads(index_writer *w, int abort)
{
	if (!w->nthreads)
		return;
	pthread_mutex_lock(&w->q_lock);
	w->q_closing = 1;
	w->q_abort |= abort;
	pthread_cond_broadcast(&w->q_cond);
	pthread_mutex_unlock(&w->q_lock);
	for (size_t i = 0; i < w->nwk; i++)
		if (w->wk[i].running) {
			pthread_join(w->wk[i].th, NULL);
			w->wk[i].running = 0;
		}
	w->nthreads = 0;
}

/* ---- workers ---- */

int worker_init(tworker *wk, index_writer *w)
{
	wk->w = w;
	wk->tk = text_tokenizer_new();
	wk->tt.bits = 14;
	wk->tt.slot = calloc((size_t)1 << wk->tt.bits, sizeof *wk->tt.slot);
	wk->cjk = calloc(CJK_DIRECT, sizeof(bterm));
	return wk->tk && wk->tt.slot && wk->cjk ? 0 : -1;
}

void free_terms(bterm *t, size_t n)
{
	if (t)
		for (size_t i = 0; i < n; i++)
			chain_free(&t[i]);
	free(t);
}

void worker_free(tworker *wk)
{
	text_tokenizer_free(wk->tk);
	tt_free(&wk->tt, 1);
	free_terms(wk->cjk, wk->cjk ? CJK_DIRECT : 0);
	free_terms(wk->terms, wk->nterms);
	free(wk->touched);
	while (wk->done) {
		tjob *j = wk->done;
		wk->done = j->next;
		free(j);
	}
}

/* Ends tokenizing: queues the last job, joins the threads, seals the tables
 * of workers that had no thread, and copies the jobs' results. */
int end_tokenizing(index_writer *w)
{
	if (w->cur) {
		tjob *j = w->cur;
		w->cur = NULL;
		if (!w->nthreads) {
			free(j);  /* cannot happen: jobs exist only with threads */
		} else if (queue_push(w, j)) {
			w->failed = 1;
		}
	}
	stop_threads(w, 0);
	for (size_t i = 0; i < w->nwk; i++) {
		tworker *wk = &w->wk[i];
		if (wk->failed || w->failed)
			return -1;
		/* a worker that had a thread sealed its table there */
		if (!wk->terms && worker_seal(wk))
			return -1;
		for (tjob *j = wk->done; j; j = j->next)
			for (uint32_t k = 0; k < j->n; k++) {
				w->docs[j->first + k].body_tokens = j->d[k].body_tokens;
				w->docs[j->first + k].title_tokens = j->d[k].title_tokens;
			}
		while (wk->done) {
			tjob *j = wk->done;
			wk->done = j->next;
			free(j);
		}
	}
	return 0;
}
