/* writer_file.c — the category table and the file itself: section
 * checksums, header and the atomic write (format: writer.c's top comment).
 * Called by writer.c (writer_int.h). */
#include "indexer/writer_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY    /* XXH3_state_t on the stack */
#include <xxhash.h>

/* ---- categories ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Builds the sorted category table and sets each document's category id. */
int build_categories(const index_writer *w, buf *out, fmt_doc *fdocs, uint32_t *ncat)
{
	char **names = malloc((w->ndocs + 1) * sizeof *names);
	if (!names)
		return -1;
	for (size_t i = 0; i < w->ndocs; i++)
		names[i] = w->docs[i].category;
	qsort(names, w->ndocs, sizeof *names, cmp_str);
	size_t n = 0;
	for (size_t i = 0; i < w->ndocs; i++)
		if (n == 0 || strcmp(names[n - 1], names[i]))
			names[n++] = names[i];
	if (n > 65535) {
		free(names);
		return -1;
	}
	uint32_t count = (uint32_t)n, off = 0;
	int rc = buf_put(out, &count, 4);
	for (size_t i = 0; i <= n && !rc; i++) {
		rc = buf_put(out, &off, 4);
		if (i < n)
			off += (uint32_t)strlen(names[i]);
	}
	for (size_t i = 0; i < n && !rc; i++)
		rc = buf_put(out, names[i], strlen(names[i]));
	for (size_t i = 0; i < w->ndocs && !rc; i++) {
		char *key = w->docs[i].category;
		char **hit = bsearch(&key, names, n, sizeof *names, cmp_str);
		fdocs[i].category = (uint16_t)(hit - names);
	}
	*ncat = count;
	free(names);
	return rc;
}

/* ---- writing the file ---- */

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t r = write(fd, c, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

static uint64_t section_xxh3(const section *s)
{
	if (s->nparts == 1)
		return XXH3_64bits(s->part[0].p, s->part[0].len);
	XXH3_state_t st;   /* the same hash as of the pieces in one buffer */
	XXH3_64bits_reset(&st);
	for (size_t i = 0; i < s->nparts; i++)
		if (s->part[i].len)
			XXH3_64bits_update(&st, s->part[i].p, s->part[i].len);
	return XXH3_64bits_digest(&st);
}

/* TEMPORARIES.  A build writes "<path>.tmp.<pid>" and renames it to path.
 * A build that is killed (SIGKILL, power loss) leaves its temporary behind:
 * never loaded by a server, which opens path only, but as large as an index.
 * So the writer holds an exclusive flock on its temporary from creation to
 * the rename, and each build, before writing its own, removes the others'
 * that it can lock: their writers are gone (the kernel drops a dead
 * process's locks).  Only names of exactly that pattern in path's folder
 * are touched.  Where flock is not supported nothing is removed. */

/* 1 if name is base ".tmp." digits. */
static int is_temp_of(const char *name, const char *base, size_t blen)
{
	if (strncmp(name, base, blen) || strncmp(name + blen, ".tmp.", 5))
		return 0;
	const char *d = name + blen + 5;
	if (!*d)
		return 0;
	for (; *d; d++)
		if (*d < '0' || *d > '9')
			return 0;
	return 1;
}

/* Removes the temporaries of path left by builds that died; best effort
 * (a leftover costs only disk space). */
static void remove_stale_temps(const char *path)
{
	char *d1 = strdup(path), *d2 = strdup(path);
	int dfd = -1;
	DIR *dh = NULL;
	if (!d1 || !d2)
		goto out;
	const char *base = basename(d2);
	size_t blen = strlen(base);
	if ((dfd = open(dirname(d1), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    !(dh = fdopendir(dfd)))
		goto out;
	struct dirent *e;
	while ((e = readdir(dh))) {
		if (!is_temp_of(e->d_name, base, blen))
			continue;
		int fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			continue;
		struct stat a, b;
		/* locked: no live writer; same inode: the name was not reused
		 * since it was opened */
		if (fstat(fd, &a) == 0 && S_ISREG(a.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
		    fstatat(dfd, e->d_name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
		    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
			unlinkat(dfd, e->d_name, 0);
		close(fd);
	}
out:
	if (dh)
		closedir(dh);  /* closes dfd */
	else if (dfd >= 0)
		close(dfd);
	free(d1);
	free(d2);
}

/* Creates tmp locked (see TEMPORARIES); returns the descriptor or -1. */
static int create_temp(const char *tmp)
{
	for (int tries = 0; tries < 3; tries++) {
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return -1;
		if (flock(fd, LOCK_EX) != 0)
			return fd;  /* not supported here: then no build removes it */
		/* another build's cleanup may have removed it between the open
		 * and the lock: then make a new one */
		struct stat a, b;
		if (fstat(fd, &a) == 0 && stat(tmp, &b) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino)
			return fd;
		close(fd);
	}
	errno = EAGAIN;
	return -1;
}

int write_file(const char *path, fmt_header *h, const section *secs, char *err,
                      size_t errlen)
{
	static const char zeros[64];
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 32);
	if (!tmp) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
	remove_stale_temps(path);
	int fd = create_temp(tmp);
	if (fd < 0) {
		set_err(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	uint64_t off = (sizeof *h + 63) & ~63ull;
	for (int s = 0; s < FMT_NSECTIONS; s++) {
		h->sections[s].offset = off;
		h->sections[s].length = secs[s].len;
		h->sections[s].checksum = section_xxh3(&secs[s]);
		off = (off + secs[s].len + 63) & ~63ull;
	}
	h->file_bytes = off;
	h->header_checksum = XXH3_64bits(h, offsetof(fmt_header, header_checksum));
	int rc = write_all(fd, h, sizeof *h);
	uint64_t at = sizeof *h;
	for (int s = 0; s < FMT_NSECTIONS && !rc; s++) {
		rc = write_all(fd, zeros, h->sections[s].offset - at);
		for (size_t i = 0; i < secs[s].nparts && !rc; i++)
			rc = write_all(fd, secs[s].part[i].p, secs[s].part[i].len);
		at = h->sections[s].offset + secs[s].len;
	}
	if (!rc)
		rc = write_all(fd, zeros, off - at);
	if (!rc)
		rc = fsync(fd);
	int e = errno;
	/* renamed before the close, which drops the lock: until then no other
	 * build takes the temporary for a dead one's (fsync has reported any
	 * write error, so the close has none left to tell) */
	if (!rc && rename(tmp, path)) {
		rc = -1;
		e = errno;
	}
	if (rc)
		unlink(tmp);
	close(fd);
	if (rc) {
		set_err(err, errlen, "cannot write %s: %s", path, strerror(e));
		free(tmp);
		return -1;
	}
	/* make the rename itself durable */
	char *dir = strdup(path);
	if (dir) {
		int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(dir);
	}
	free(tmp);
	return 0;
}
