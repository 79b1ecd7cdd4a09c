/* index_holder.c — the refcounted, reloadable index (index_holder.h).
 *
 * Locking: `lock` guards only the `cur` pointer; acquire takes it for a load
 * and an increment (a few nanoseconds), so a reference can never be taken on
 * a version whose count already reached zero.  `reload_lock` serializes
 * reloads so that the slow open runs outside `lock`.  Lock order:
 * reload_lock, then lock. */
#include "daemon/index_holder.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"

struct index_ref {
	sousuo_index *ix;
	atomic_uint refs;       /* the holder's (while current) + each user's */
	uint64_t generation;    /* 1 for the first version loaded */
};

struct index_holder {
	char *path;
	pthread_mutex_t lock;        /* guards cur */
	pthread_mutex_t reload_lock; /* one reload at a time */
	index_ref *cur;
	atomic_uint_fast64_t generation;
};

static index_ref *ref_open(const char *path, uint64_t gen, char *err, size_t errlen)
{
	index_ref *r = malloc(sizeof *r);
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (index_open(path, &r->ix, err, errlen)) {
		free(r);
		return NULL;
	}
	/* pinned, so that no query waits for the disk (index.h); without the
	 * privilege the index serves as well, only with that risk */
	char why[256];
	if (index_lock(r->ix, why, sizeof why))
		log_msg(LOGL_WARN, "%s: %s", path, why);
	atomic_init(&r->refs, 1);
	r->generation = gen;
	return r;
}

index_holder *index_holder_open(const char *path, char *err, size_t errlen)
{
	index_holder *h = calloc(1, sizeof *h);
	if (!h || !(h->path = strdup(path))) {
		free(h);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->cur = ref_open(path, 1, err, errlen);
	if (!h->cur) {
		free(h->path);
		free(h);
		return NULL;
	}
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_init(&h->reload_lock, NULL);
	atomic_init(&h->generation, 1);
	return h;
}

void index_holder_free(index_holder *h)
{
	if (!h)
		return;
	index_ref_release(h->cur);
	pthread_mutex_destroy(&h->lock);
	pthread_mutex_destroy(&h->reload_lock);
	free(h->path);
	free(h);
}

index_ref *index_holder_acquire(index_holder *h)
{
	pthread_mutex_lock(&h->lock);
	index_ref *r = h->cur;
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&h->lock);
	return r;
}

void index_ref_release(index_ref *r)
{
	if (!r)
		return;
	/* acq_rel: every use of the index by other holders happens before the close */
	if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
		uint64_t gen = r->generation;
		index_close(r->ix);
		free(r);
		log_msg(LOGL_DEBUG, "index version %llu closed (last reference released)",
		        (unsigned long long)gen);
	}
}

const sousuo_index *index_ref_index(const index_ref *r)
{
	return r->ix;
}

int index_holder_reload(index_holder *h, uint32_t *ndocs, char *err, size_t errlen)
{
	pthread_mutex_lock(&h->reload_lock);
	uint64_t gen = atomic_load(&h->generation) + 1;
	index_ref *fresh = ref_open(h->path, gen, err, errlen);
	if (!fresh) {
		pthread_mutex_unlock(&h->reload_lock);
		log_msg(LOGL_ERROR, "reload refused, still serving the previous index: %s", err);
		return -1;
	}
	*ndocs = index_ndocs(fresh->ix);
	pthread_mutex_lock(&h->lock);
	index_ref *old = h->cur;
	h->cur = fresh;
	pthread_mutex_unlock(&h->lock);
	atomic_store(&h->generation, gen);
	pthread_mutex_unlock(&h->reload_lock);
	log_msg(LOGL_INFO, "reloaded %s: %u documents (version %llu)", h->path, *ndocs,
	        (unsigned long long)gen);
	index_ref_release(old);
	return 0;
}

const char *index_holder_path(const index_holder *h)
{
	return h->path;
}

uint64_t index_holder_generation(index_holder *h)
{
	return atomic_load(&h->generation);
}
