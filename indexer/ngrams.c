/* ngrams.c — frequent runs of 3-4 CJK characters and their postings
 * (ngrams.h).  Two passes, each split by document range across threads: the
 * first tokenizes, counts every candidate run's documents in a sketch and
 * keeps each occurrence's key and start position (a run is a candidate only
 * when all its adjacent pairs are frequent bigrams, which keeps it small);
 * the second replays the kept occurrences of the runs the sketch lets
 * through into exact (document, tf, positions) lists, and the runs that
 * reach min_df are returned. */
#include "indexer/ngrams.h"
#include "indexer/format.h"
#include "indexer/keys.h"
#include "indexer/text.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A small open-addressing set of bigram keys. */
typedef struct {
	uint64_t *keys;    /* 0 = empty (no bigram key is 0) */
	size_t mask;
} keyset;

static inline size_t mix(uint64_t k)
{
	k ^= k >> 31;
	k *= 0x9e3779b97f4a7c15ull;
	k ^= k >> 29;
	return (size_t)k;
}

static int keyset_init(keyset *s, const uint64_t *keys, size_t n)
{
	size_t cap = 64;
	while (cap < n * 2)
		cap *= 2;
	s->keys = calloc(cap, sizeof *s->keys);
	if (!s->keys)
		return -1;
	s->mask = cap - 1;
	for (size_t i = 0; i < n; i++) {
		size_t j = mix(keys[i]) & s->mask;
		while (s->keys[j] && s->keys[j] != keys[i])
			j = (j + 1) & s->mask;
		s->keys[j] = keys[i];
	}
	return 0;
}

static inline int keyset_has(const keyset *s, uint64_t k)
{
	size_t j = mix(k) & s->mask;
	while (s->keys[j]) {
		if (s->keys[j] == k)
			return 1;
		j = (j + 1) & s->mask;
	}
	return 0;
}

/* Pass 1 counts candidates in a sketch: direct-mapped counters by hash,
 * with the last document counted beside each, no keys.  Two runs sharing a
 * counter add up, so a count is never below either run's true document
 * count: the sketch can only let too many runs through, never drop one. */
#define SKETCH_BITS 18

/* Pass 2 keeps the runs the sketch let through, with their postings. */
typedef struct {
	uint64_t key;      /* 0 = empty */
	uint32_t df;       /* documents of this thread's range */
	uint32_t last;     /* last document, UINT32_MAX before */
	uint32_t cap;
	uint32_t *docs, *tfs;
	uint32_t *pos;     /* runs of 4: start positions */
	uint32_t npos, cappos;
} slot;

typedef struct {
	slot *s;
	size_t mask, n;
} table;

static int table_grow(table *t)
{
	size_t cap = t->mask ? (t->mask + 1) * 2 : 1u << 12;
	slot *s = calloc(cap, sizeof *s);
	if (!s)
		return -1;
	for (size_t i = 0; t->mask && i <= t->mask; i++) {
		if (!t->s[i].key)
			continue;
		size_t j = mix(t->s[i].key) & (cap - 1);
		while (s[j].key)
			j = (j + 1) & (cap - 1);
		s[j] = t->s[i];
	}
	free(t->s);
	t->s = s;
	t->mask = cap - 1;
	return 0;
}

/* The slot of key, created when `create`; NULL when absent or out of memory. */
static slot *table_get(table *t, uint64_t key, int create)
{
	if (create && (t->n + 1) * 2 > t->mask + 1 && table_grow(t))
		return NULL;
	if (!t->mask)
		return NULL;
	size_t j = mix(key) & t->mask;
	while (t->s[j].key) {
		if (t->s[j].key == key)
			return &t->s[j];
		j = (j + 1) & t->mask;
	}
	if (!create)
		return NULL;
	slot *s = &t->s[j];
	memset(s, 0, sizeof *s);
	s->key = key;
	s->last = UINT32_MAX;
	t->n++;
	return s;
}

static void table_free(table *t)
{
	for (size_t i = 0; t->mask && i <= t->mask; i++) {
		free(t->s[i].docs);
		free(t->s[i].tfs);
		free(t->s[i].pos);
	}
	free(t->s);
	memset(t, 0, sizeof *t);
}

typedef struct {
	const char *const *bodies;
	const size_t *lens;
	uint32_t lo, hi;          /* document range */
	const keyset *pairs;
	int pass;                 /* 1 sketch and keys, 2 collect */
	uint16_t *cnt;            /* pass 1: this thread's sketch; pass 2: the sum */
	uint32_t *lastdoc;        /* pass 1 */
	uint32_t min_df;
	table tab;                /* pass 2 */
	uint64_t *keys;           /* pass 1 keeps each candidate's key and start */
	uint32_t *kpos;           /* position here, so pass 2 needs no second */
	size_t nkeys, capkeys;    /* tokenizing */
	size_t *doc_start;        /* keys of document lo + i: [doc_start[i], doc_start[i + 1]) */
	uint64_t occurrences;
	int failed;
} job;

/* Pass 1 for document doc: counts its candidate runs in the sketch and
 * keeps their keys. */
static void scan_doc(job *j, text_tokenizer *tk, uint32_t doc)
{
	text_token t;
	uint32_t cp[4] = { 0 }, pos[4] = { 0 };
	uint64_t pair[3] = { 0 };   /* pair[k]: key of (cp[k], cp[k+1]) if frequent, else 0 */
	int run = 0;                /* adjacent CJK tokens ending here (capped at 4) */
	text_tokenizer_reset(tk, j->bodies[doc], j->lens[doc]);
	while (text_tokenizer_next(tk, &t)) {
		if (t.kind != TEXT_TOK_CJK) {
			run = 0;
			continue;
		}
		int adj = run > 0 && t.pos == pos[3] + 1;
		memmove(cp, cp + 1, 3 * sizeof *cp);
		memmove(pos, pos + 1, 3 * sizeof *pos);
		memmove(pair, pair + 1, 2 * sizeof *pair);
		cp[3] = t.cp;
		pos[3] = t.pos;
		run = adj ? (run < 4 ? run + 1 : 4) : 1;
		pair[2] = 0;
		if (run >= 2) {
			uint64_t k = keys_pair(fmt_key(FMT_KIND_CJK, cp[2]), fmt_key(FMT_KIND_CJK, cp[3]));
			if (keyset_has(j->pairs, k))
				pair[2] = k;
		}
		for (int n = 3; n <= 4; n++) {
			if (run < n || !pair[1] || !pair[2] || (n == 4 && !pair[0]))
				break;
			uint64_t key = keys_ngram(cp + 4 - n, (size_t)n);
			size_t h = mix(key) >> (sizeof(size_t) * 8 - SKETCH_BITS);
			j->occurrences++;
			if (j->lastdoc[h] != doc + 1) {
				j->lastdoc[h] = doc + 1;
				j->cnt[h] += j->cnt[h] < UINT16_MAX;
			}
			if (j->nkeys == j->capkeys) {
				size_t cap = j->capkeys ? j->capkeys * 2 : 1u << 16;
				uint64_t *k = realloc(j->keys, cap * sizeof *k);
				if (k)
					j->keys = k;
				uint32_t *kp = k ? realloc(j->kpos, cap * sizeof *kp) : NULL;
				if (kp)
					j->kpos = kp;
				if (!k || !kp) {
					j->failed = 1;
					return;
				}
				j->capkeys = cap;
			}
			j->kpos[j->nkeys] = pos[4 - n];
			j->keys[j->nkeys++] = key;
		}
	}
}

/* Pass 2 for document doc: its candidates whose sketch count reaches
 * min_df get their (document, tf) entries. */
static void collect_doc(job *j, uint32_t doc)
{
	for (size_t i = j->doc_start[doc - j->lo]; i < j->doc_start[doc - j->lo + 1]; i++) {
		uint64_t key = j->keys[i];
		size_t h = mix(key) >> (sizeof(size_t) * 8 - SKETCH_BITS);
		if (j->cnt[h] < (j->min_df < UINT16_MAX ? j->min_df : UINT16_MAX))
			continue;   /* (counters saturate: a full one always passes) */
		{
			slot *s = table_get(&j->tab, key, 1);
			if (!s) {
				j->failed = 1;
				return;
			}
			if (fmt_key_kind(key) == FMT_KIND_NGRAM4) {
				if (s->npos == s->cappos) {
					uint32_t cap = s->cappos ? s->cappos * 2 : 16;
					uint32_t *q = realloc(s->pos, cap * sizeof *q);
					if (!q) {
						j->failed = 1;
						return;
					}
					s->pos = q;
					s->cappos = cap;
				}
				s->pos[s->npos++] = j->kpos[i];
			}
			if (s->last == doc) {
				s->tfs[s->df - 1]++;
				continue;
			}
			if (s->df == s->cap) {
				uint32_t cap = s->cap ? s->cap * 2 : 16;
				uint32_t *d = realloc(s->docs, cap * sizeof *d), *f;
				if (d)
					s->docs = d;
				f = d ? realloc(s->tfs, cap * sizeof *f) : NULL;
				if (f)
					s->tfs = f;
				if (!d || !f) {
					j->failed = 1;
					return;
				}
				s->cap = cap;
			}
			s->last = doc;
			s->docs[s->df] = doc;
			s->tfs[s->df++] = 1;
		}
	}
}

static void *run_job(void *arg)
{
	job *j = arg;
	text_tokenizer *tk = text_tokenizer_new();
	if (!tk) {
		j->failed = 1;
		return NULL;
	}
	if (j->pass == 1) {
		for (uint32_t d = j->lo; d < j->hi && !j->failed; d++) {
			j->doc_start[d - j->lo] = j->nkeys;
			scan_doc(j, tk, d);
		}
		j->doc_start[j->hi - j->lo] = j->nkeys;
	} else {
		for (uint32_t d = j->lo; d < j->hi && !j->failed; d++)
			collect_doc(j, d);
	}
	text_tokenizer_free(tk);
	return NULL;
}

static int run_all(job *jobs, int n)
{
	pthread_t th[64];
	int started = 0;
	for (int i = 1; i < n; i++) {
		if (pthread_create(&th[i], NULL, run_job, &jobs[i]))
			break;
		started = i;
	}
	run_job(&jobs[0]);
	for (int i = 1; i <= started; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < n; i++)
		if (jobs[i].failed || (i > started && i > 0))
			return -1;
	return 0;
}

static int cmp_list(const void *a, const void *b)
{
	uint64_t x = ((const ngram_list *)a)->key, y = ((const ngram_list *)b)->key;
	return x < y ? -1 : x > y;
}

int ngrams_collect(const char *const *bodies, const size_t *lens, uint32_t ndocs,
                   const uint64_t *frequent_pairs, size_t npairs, uint32_t min_df,
                   int threads, ngram_result *out)
{
	memset(out, 0, sizeof *out);
	if (threads < 1)
		threads = 1;
	if (threads > 64)
		threads = 64;
	if ((uint32_t)threads > ndocs)
		threads = ndocs ? (int)ndocs : 1;
	keyset pairs;
	if (keyset_init(&pairs, frequent_pairs, npairs))
		return -1;
	const size_t nsk = (size_t)1 << SKETCH_BITS;
	job *jobs = calloc((size_t)threads, sizeof *jobs);
	ngram_list *lists = NULL;
	uint32_t *pool = NULL, *pospool = NULL;
	uint64_t npositions = 0;
	int rc = -1;
	if (!jobs)
		goto out;
	/* split by bytes: documents differ a lot in length */
	uint64_t total = 0, at = 0;
	for (uint32_t d = 0; d < ndocs; d++)
		total += lens[d];
	uint32_t d = 0;
	for (int i = 0; i < threads; i++) {
		jobs[i].bodies = bodies;
		jobs[i].lens = lens;
		jobs[i].pairs = &pairs;
		jobs[i].pass = 1;
		jobs[i].min_df = min_df;
		jobs[i].lo = d;
		uint64_t until = total * (uint64_t)(i + 1) / (uint64_t)threads;
		while (d < ndocs && (at < until || i == threads - 1))
			at += lens[d++];
		jobs[i].hi = d;
		jobs[i].cnt = calloc(nsk, sizeof *jobs[i].cnt);
		jobs[i].lastdoc = calloc(nsk, sizeof *jobs[i].lastdoc);
		jobs[i].doc_start = malloc((jobs[i].hi - jobs[i].lo + 1) * sizeof *jobs[i].doc_start);
		if (!jobs[i].cnt || !jobs[i].lastdoc || !jobs[i].doc_start)
			goto out;
	}
	if (run_all(jobs, threads))
		goto out;
	/* the ranges' sketches summed (saturating) into the first */
	for (int i = 1; i < threads; i++)
		for (size_t h = 0; h < nsk; h++) {
			uint32_t v = (uint32_t)jobs[0].cnt[h] + jobs[i].cnt[h];
			jobs[0].cnt[h] = v > UINT16_MAX ? UINT16_MAX : (uint16_t)v;
		}
	for (int i = 0; i < threads; i++) {
		free(jobs[i].lastdoc);
		jobs[i].lastdoc = NULL;
		if (i > 0)
			free(jobs[i].cnt);   /* summed into the first */
		jobs[i].cnt = jobs[0].cnt;
		jobs[i].pass = 2;
	}
	if (run_all(jobs, threads))
		goto out;

	/* a run's entries: its slots in range order, which is document order */
	size_t nkeep = 0, cap = 0;
	uint64_t entries = 0;
	for (int i = 0; i < threads; i++) {
		table *t = &jobs[i].tab;
		for (size_t k = 0; t->mask && k <= t->mask; k++) {
			slot *s = &t->s[k];
			if (!s->key || s->last == UINT32_MAX - 1)
				continue;   /* empty, or gathered from an earlier range */
			uint64_t df = 0;
			for (int m = i; m < threads; m++) {
				slot *o = m == i ? s : table_get(&jobs[m].tab, s->key, 0);
				if (o)
					df += o->df;
			}
			for (int m = i + 1; m < threads; m++) {
				slot *o = table_get(&jobs[m].tab, s->key, 0);
				if (o)
					o->last = UINT32_MAX - 1;
			}
			if (df < min_df)
				continue;
			if (nkeep == cap) {
				cap = cap ? cap * 2 : 1024;
				ngram_list *l = realloc(lists, cap * sizeof *l);
				if (!l)
					goto out;
				lists = l;
			}
			/* docs and tfs point into the slots for now; copied below */
			lists[nkeep++] = (ngram_list){ s->key, (uint32_t)df, NULL, NULL, NULL };
			entries += df;
			for (int m = i; m < threads; m++) {
				slot *o = m == i ? s : table_get(&jobs[m].tab, s->key, 0);
				if (o)
					npositions += o->npos;
			}
		}
	}
	pool = malloc((entries + 1) * 2 * sizeof *pool);
	pospool = malloc((npositions + 1) * sizeof *pospool);
	if (!pool || !pospool)
		goto out;
	uint64_t off = 0, poff = 0;
	for (size_t i = 0; i < nkeep; i++) {
		ngram_list *l = &lists[i];
		l->docs = pool + off;
		l->tfs = pool + entries + off;
		l->pos = fmt_key_kind(l->key) == FMT_KIND_NGRAM4 ? pospool + poff : NULL;
		uint32_t n = 0;
		for (int m = 0; m < threads; m++) {
			slot *o = table_get(&jobs[m].tab, l->key, 0);
			if (!o)
				continue;
			memcpy(l->docs + n, o->docs, o->df * sizeof *o->docs);
			memcpy(l->tfs + n, o->tfs, o->df * sizeof *o->tfs);
			if (l->pos) {
				memcpy(pospool + poff, o->pos, o->npos * sizeof *o->pos);
				poff += o->npos;
			}
			n += o->df;
		}
		off += l->df;
	}
	if (nkeep)
		qsort(lists, nkeep, sizeof *lists, cmp_list);
	out->lists = lists;
	out->n = nkeep;
	out->pool = pool;
	out->pospool = pospool;
	lists = NULL;
	pool = NULL;
	pospool = NULL;
	for (int i = 0; i < threads; i++)
		out->occurrences += jobs[i].occurrences;
	rc = 0;
out:
	free(lists);
	free(pool);
	free(pospool);
	if (jobs) {
		if (jobs[0].pass == 2)
			free(jobs[0].cnt);
		for (int i = 0; i < threads; i++) {
			if (jobs[i].pass == 1)
				free(jobs[i].cnt);
			free(jobs[i].lastdoc);
			free(jobs[i].keys);
			free(jobs[i].kpos);
			free(jobs[i].doc_start);
			table_free(&jobs[i].tab);
		}
	}
	free(jobs);
	free(pairs.keys);
	return rc;
}

void ngram_result_free(ngram_result *r)
{
	if (!r)
		return;
	free(r->lists);
	free(r->pool);
	free(r->pospool);
	memset(r, 0, sizeof *r);
}
