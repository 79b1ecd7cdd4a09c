/* index_holder.h — the index the server answers from, swappable while
 * queries run.  Each version of the index is an index_ref with an atomic
 * reference count; the holder owns one reference to the current version and
 * every request takes its own for as long as it uses the index, so a RELOAD
 * never pulls an index out from under a query: the old mapping is closed when
 * its last reference is released.  Called by the workers (per request,
 * RELOAD) and by server_main.c (open, SIGHUP, close). */
#ifndef SOUSUO_DAEMON_INDEX_HOLDER_H
#define SOUSUO_DAEMON_INDEX_HOLDER_H

#include <stddef.h>
#include <stdint.h>

#include "search/index.h"

typedef struct index_holder index_holder;
typedef struct index_ref index_ref;

/* Opens and verifies path (index_open).  Returns the holder, or NULL with a
 * message in err.  The holder keeps a copy of path for reloads. */
index_holder *index_holder_open(const char *path, char *err, size_t errlen);

/* Releases the holder's reference; references still held by others keep
 * their index open until released.  Call after the workers have stopped. */
void index_holder_free(index_holder *h);

/* The current version, with one reference taken for the caller, who must
 * give it back with index_ref_release.  Thread-safe; never NULL. */
index_ref *index_holder_acquire(index_holder *h);
void index_ref_release(index_ref *r);

/* The reference's index: valid until the reference is released. */
const sousuo_index *index_ref_index(const index_ref *r);

/* Opens the file at the holder's path again and verifies it; on success it
 * becomes the current version (queries already running finish on the old
 * one) and *ndocs is its document count.  On failure the current version
 * stays and err says why.  Logs one line either way.  Reloads are
 * serialized; the open itself runs in the caller's thread.  Returns 0 or -1. */
int index_holder_reload(index_holder *h, uint32_t *ndocs, char *err, size_t errlen);

/* The configured path (owned by the holder). */
const char *index_holder_path(const index_holder *h);

/* How many versions have been loaded (1 after open). */
uint64_t index_holder_generation(index_holder *h);

#endif
