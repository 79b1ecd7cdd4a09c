/* ngrams.c — frequent runs of 3-4 CJK characters and their doc-level
 * postings (ngrams.h).  Two passes over the documents, each split by
 * document range across threads: the first counts, per candidate run, the
 * documents it occurs in (a run is a candidate only when all its adjacent
 * pairs are frequent bigrams, which keeps the tables small); the second
 * writes the (document, frequency) entries of the runs that reached min_df
 * straight into arrays sized by the first pass. */
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

/* Per-thread table of candidate runs. */
typedef struct {
	uint64_t key;      /* 0 = empty */
	uint32_t df;       /* documents of this thread's range */
	uint32_t last;     /* last document counted, UINT32_MAX before */
	uint32_t fill;     /* pass 2: next entry to write, absolute in the arrays */
	int32_t list;      /* pass 2: index in the result, -1 if not kept */
} slot;

typedef struct {
	slot *s;
	size_t mask, n;
} table;

static int table_grow(table *t)
{
	size_t cap = t->mask ? (t->mask + 1) * 2 : 1u << 16;
	slot *s = malloc(cap * sizeof *s);
	if (!s)
		return -1;
	for (size_t i = 0; i < cap; i++)
		s[i].key = 0;
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
	*s = (slot){ key, 0, UINT32_MAX, 0, -1 };
	t->n++;
	return s;
}

typedef struct {
	const char *const *bodies;
	const size_t *lens;
	uint32_t lo, hi;          /* document range */
	const keyset *pairs;
	table tab;
	int pass;                 /* 1 count, 2 collect */
	ngram_list *lists;        /* pass 2 */
	uint64_t occurrences;
	int failed;
} job;

/* Calls visit for every candidate run of document doc. */
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
			if (run < n)
				break;
			int ok = 1;
			for (int k = 3 - (n - 1); k < 3 && ok; k++)
				ok = pair[k] != 0;
			if (!ok)
				continue;
			uint64_t key = keys_ngram(cp + 4 - n, (size_t)n);
			j->occurrences++;
			if (j->pass == 1) {
				slot *s = table_get(&j->tab, key, 1);
				if (!s) {
					j->failed = 1;
					return;
				}
				if (s->last != doc) {
					s->last = doc;
					s->df++;
				}
			} else {
				slot *s = table_get(&j->tab, key, 0);
				if (!s || s->list < 0)
					continue;
				ngram_list *l = &j->lists[s->list];
				if (s->last != doc) {
					s->last = doc;
					l->docs[s->fill] = doc;
					l->tfs[s->fill++] = 1;
				} else {
					l->tfs[s->fill - 1]++;
				}
			}
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
	for (uint32_t d = j->lo; d < j->hi && !j->failed; d++)
		scan_doc(j, tk, d);
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
	job *jobs = calloc((size_t)threads, sizeof *jobs);
	int rc = -1;
	if (!jobs)
		goto out;
	/* split by bytes: documents differ a lot in length */
	uint64_t total = 0, at = 0;
	for (uint32_t d = 0; d < ndocs; d++)
		total += lens[d];
	uint32_t d = 0;
	for (int i = 0; i < threads; i++) {
		jobs[i] = (job){ bodies, lens, d, d, &pairs, { 0 }, 1, NULL, 0, 0 };
		uint64_t until = total * (uint64_t)(i + 1) / (uint64_t)threads;
		while (d < ndocs && (at < until || i == threads - 1))
			at += lens[d++];
		jobs[i].hi = d;
	}
	if (run_all(jobs, threads))
		goto out;

	/* keep the runs whose documents over all ranges reach min_df; every
	 * thread's slot learns where its range's entries start */
	size_t nkeep = 0, cap = 0;
	ngram_list *lists = NULL;
	for (int i = 0; i < threads; i++) {
		table *t = &jobs[i].tab;
		for (size_t k = 0; t->mask && k <= t->mask; k++) {
			slot *s = &t->s[k];
			if (!s->key || s->list != -1)
				continue;   /* empty, or decided from an earlier range */
			uint64_t df = 0;
			for (int m = 0; m < threads; m++) {
				slot *o = m == i ? s : table_get(&jobs[m].tab, s->key, 0);
				if (o)
					df += o->df;
			}
			if (df < min_df) {
				s->list = -2;   /* decided: not kept */
				for (int m = i + 1; m < threads; m++) {
					slot *o = table_get(&jobs[m].tab, s->key, 0);
					if (o)
						o->list = -2;
				}
				continue;
			}
			if (nkeep == cap) {
				cap = cap ? cap * 2 : 1024;
				ngram_list *l = realloc(lists, cap * sizeof *l);
				if (!l) {
					free(lists);
					goto out;
				}
				lists = l;
			}
			lists[nkeep] = (ngram_list){ s->key, (uint32_t)df, NULL, NULL };
			uint32_t fill = 0;
			for (int m = 0; m < threads; m++) {
				slot *o = m == i ? s : table_get(&jobs[m].tab, s->key, 0);
				if (!o)
					continue;
				o->list = (int32_t)nkeep;
				o->fill = fill;
				o->last = UINT32_MAX;
				fill += o->df;
			}
			nkeep++;
		}
	}
	uint64_t entries = 0;
	for (size_t i = 0; i < nkeep; i++)
		entries += lists[i].df;
	uint32_t *pool = malloc((entries + 1) * 2 * sizeof *pool);
	if (!pool) {
		free(lists);
		goto out;
	}
	uint64_t off = 0;
	for (size_t i = 0; i < nkeep; i++) {
		lists[i].docs = pool + off;
		lists[i].tfs = pool + entries + off;
		off += lists[i].df;
	}
	/* runs not kept (list -2) are passed over in pass 2 */
	for (int i = 0; i < threads; i++) {
		jobs[i].pass = 2;
		jobs[i].lists = lists;
		jobs[i].occurrences = 0;
	}
	if (run_all(jobs, threads)) {
		free(pool);
		free(lists);
		goto out;
	}
	qsort(lists, nkeep, sizeof *lists, cmp_list);
	out->lists = lists;
	out->n = nkeep;
	out->pool = pool;
	for (int i = 0; i < threads; i++)
		out->occurrences += jobs[i].occurrences;
	rc = 0;
out:
	if (jobs)
		for (int i = 0; i < threads; i++)
			free(jobs[i].tab.s);
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
	memset(r, 0, sizeof *r);
}
