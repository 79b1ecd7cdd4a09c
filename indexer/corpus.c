/* corpus.c — the corpus reader API (corpus.h: corpus_open/next/close/error/
 * skipped), called by the indexer: input checks and dispatch, skip reporting,
 * shared helpers, and whole-file reads of .md/.txt files with the size / NUL /
 * UTF-8 checks.  The walk, JSON Lines, Markdown and dates are in corpus_*.c. */
#include "indexer/corpus_int.h"
#include "indexer/limits.h"
#include "indexer/text.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

char *corpus_dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

char *corpus_dup_s(const char *s)
{
	return corpus_dup_n(s, strlen(s));
}

const char *corpus_base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

int corpus_kind_of_name(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (!dot || dot == name)
		return K_NONE;
	if (strcasecmp(dot, ".md") == 0)
		return K_MD;
	if (strcasecmp(dot, ".txt") == 0)
		return K_TXT;
	if (strcasecmp(dot, ".jsonl") == 0)
		return K_JSONL;
	return K_NONE;
}

/* Cuts an incomplete UTF-8 sequence off the end of a truncated message. */
static void trim_partial_utf8(char *buf, size_t size, int written)
{
	if (written < 0 || (size_t)written < size)
		return;
	size_t len = strlen(buf);
	size_t k = len;
	while (k > 0 && len - k < 3 && ((unsigned char)buf[k - 1] & 0xC0) == 0x80)
		k--;
	if (k > 0 && (unsigned char)buf[k - 1] >= 0xC0 && !text_utf8_valid(buf + k - 1, len - k + 1))
		buf[k - 1] = '\0';
}

static void set_err(corpus_reader *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(r->err, sizeof r->err, fmt, ap);
	va_end(ap);
	trim_partial_utf8(r->err, sizeof r->err, w);
	r->failed = 1;
}

int corpus_oom(corpus_reader *r)
{
	set_err(r, "out of memory");
	return -1;
}

/* Reports one skipped input; returns -1 in strict mode (the error is set),
 * else 0. */
int corpus_skip_input(corpus_reader *r, const char *what, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	trim_partial_utf8(why, sizeof why, w);
	r->skipped++;
	if (r->skip)
		r->skip(r->skip_ctx, what, why);
	if (r->strict) {
		set_err(r, "%s: %s", what, why);
		return -1;
	}
	return 0;
}

void corpus_free_doc(corpus_doc *d)
{
	free(d->path);
	free(d->title);
	free(d->short_title);
	free(d->category);
	free(d->ext_id);
	free(d->body);
	memset(d, 0, sizeof *d);
}

/* text_utf8_valid with a fast path for the common cases (ASCII, and the
 * 3-byte sequences led by E1..EC / EE..EF, which are valid whatever their
 * continuation bytes); every other sequence is judged by text_utf8_get, so
 * the rules stay those of utf8.c.  About 3x faster on Chinese text. */
int corpus_utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		unsigned c = u[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xE1 && c != 0xED && c <= 0xEF && len - i >= 3 &&
		    (u[i + 1] & 0xC0) == 0x80 && (u[i + 2] & 0xC0) == 0x80) {
			i += 3;
			continue;
		}
		uint32_t cp;
		i += text_utf8_get(s + i, len - i, &cp);
		if (cp == UINT32_MAX)
			return 0;
	}
	return 1;
}

/* ---------------------------------------------------------------- reading */

/* Reads a whole regular file.  Returns 1 with the bytes in *buf (NUL-
 * terminated), 0 when skipped (reason in why), -1 when out of memory. */
static int read_whole(const char *fs, char **buf, size_t *len, char *why, size_t whylen)
{
	*buf = NULL;
	*len = 0;
	int fd = open(fs, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(why, whylen, "cannot open: %s", strerror(errno));
		return 0;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		snprintf(why, whylen, "cannot stat: %s", strerror(errno));
		close(fd);
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "not a regular file");
		close(fd);
		return 0;
	}
	if ((uint64_t)st.st_size > SOUSUO_MAX_DOC_BYTES) {
		snprintf(why, whylen, "larger than %u bytes (%llu bytes)", SOUSUO_MAX_DOC_BYTES,
		         (unsigned long long)st.st_size);
		close(fd);
		return 0;
	}
	size_t cap = (size_t)st.st_size + 1, n = 0;
	char *b = malloc(cap + 1);
	if (!b) {
		close(fd);
		return -1;
	}
	for (;;) {
		if (n == cap) {  /* the file grew since fstat */
			if (cap > SOUSUO_MAX_DOC_BYTES) {
				snprintf(why, whylen, "larger than %u bytes", SOUSUO_MAX_DOC_BYTES);
				free(b);
				close(fd);
				return 0;
			}
			size_t nc = cap * 2 > (size_t)SOUSUO_MAX_DOC_BYTES + 1 ? (size_t)SOUSUO_MAX_DOC_BYTES + 1 : cap * 2;
			char *nb = realloc(b, nc + 1);
			if (!nb) {
				free(b);
				close(fd);
				return -1;
			}
			b = nb;
			cap = nc;
		}
		ssize_t k = read(fd, b + n, cap - n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			snprintf(why, whylen, "read error: %s", strerror(errno));
			free(b);
			close(fd);
			return 0;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	if (n > SOUSUO_MAX_DOC_BYTES) {
		snprintf(why, whylen, "larger than %u bytes", SOUSUO_MAX_DOC_BYTES);
		free(b);
		return 0;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 1;
}

static char *category_of(const char *rel)
{
	const char *s = strrchr(rel, '/');
	return s ? corpus_dup_n(rel, (size_t)(s - rel)) : corpus_dup_s("");
}

/* Reads one .md/.txt file into r->cur.  Returns 1 (document), 0 (skipped),
 * -1 (fatal). */
int corpus_load_file(corpus_reader *r, const char *rel, const char *fs, int kind)
{
	char why[256];
	if (!corpus_utf8_valid(rel, strlen(rel)))
		return corpus_skip_input(r, fs, "file name is not valid UTF-8");
	char *buf;
	size_t len;
	int rc = read_whole(fs, &buf, &len, why, sizeof why);
	if (rc < 0)
		return corpus_oom(r);
	if (rc == 0)
		return corpus_skip_input(r, fs, "%s", why);
	size_t off = 0;
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		off = 3;
	const char *reason = NULL;
	if (len == off)
		reason = "empty file";
	else if (memchr(buf + off, '\0', len - off))
		reason = "binary file (contains NUL bytes)";
	else if (!corpus_utf8_valid(buf + off, len - off))
		reason = "invalid UTF-8";
	if (reason) {
		free(buf);
		return corpus_skip_input(r, fs, "%s", reason);
	}

	corpus_doc *d = &r->cur;
	d->date = corpus_date_from_name(rel);
	if (!d->date)
		d->date = corpus_date_from_text(buf + off, len - off);
	if (kind == K_MD) {
		d->body = corpus_clean_markdown(buf + off, len - off, &d->body_len, &d->title);
		free(buf);
		if (!d->body)
			return corpus_oom(r);
	} else {
		if (off) {
			memmove(buf, buf + off, len - off + 1);
			len -= off;
		}
		d->body = buf;
		d->body_len = len;
	}
	d->short_title = corpus_title_from_name(rel);
	if (!d->title)
		d->title = corpus_dup_s(d->short_title ? d->short_title : "");
	d->path = corpus_dup_s(rel);
	d->category = category_of(rel);
	if (!d->title || !d->short_title || !d->path || !d->category)
		return corpus_oom(r);
	return 1;
}

/* ---------------------------------------------------------------- API */

corpus_reader *corpus_open(const char *const *inputs, int n, int strict,
                           corpus_skip_fn skip, void *skip_ctx,
                           char *err, size_t errlen)
{
	char dummy[1];
	if (!err || errlen == 0) {
		err = dummy;
		errlen = sizeof dummy;
	}
	err[0] = '\0';
	if (n < 0 || (n > 0 && !inputs)) {
		snprintf(err, errlen, "no inputs");
		return NULL;
	}
	corpus_reader *r = calloc(1, sizeof *r);
	if (!r || (n > 0 && (!(r->inputs = calloc((size_t)n, sizeof *r->inputs)) ||
	                     !(r->kinds = calloc((size_t)n, sizeof *r->kinds))))) {
		snprintf(err, errlen, "out of memory");
		corpus_close(r);
		return NULL;
	}
	r->strict = strict;
	r->skip = skip;
	r->skip_ctx = skip_ctx;
	for (int i = 0; i < n; i++) {
		const char *in = inputs[i];
		struct stat st;
		int w = -1;  /* >= 0 once an error message is written */
		if (!in || !*in) {
			w = snprintf(err, errlen, "empty input path");
		} else if (stat(in, &st) != 0) {
			w = snprintf(err, errlen, "%s: %s", in, strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			DIR *dir = opendir(in);
			if (!dir)
				w = snprintf(err, errlen, "%s: %s", in, strerror(errno));
			else
				closedir(dir);
			r->kinds[i] = K_DIR;
		} else if (S_ISREG(st.st_mode)) {
			r->kinds[i] = corpus_kind_of_name(corpus_base_name(in));
			if (r->kinds[i] == K_NONE) {
				w = snprintf(err, errlen, "%s: not a .md, .txt or .jsonl file", in);
			} else {
				int fd = open(in, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
				if (fd < 0)
					w = snprintf(err, errlen, "%s: %s", in, strerror(errno));
				else
					close(fd);
			}
		} else {
			w = snprintf(err, errlen, "%s: not a regular file or folder", in);
		}
		if (w >= 0) {
			trim_partial_utf8(err, errlen, w);
			corpus_close(r);
			return NULL;
		}
		r->inputs[i] = corpus_dup_s(in);
		r->n = i + 1;
		if (!r->inputs[i]) {
			snprintf(err, errlen, "out of memory");
			corpus_close(r);
			return NULL;
		}
	}
	r->n = n;
	return r;
}

int corpus_next(corpus_reader *r, corpus_doc *doc)
{
	if (!r)
		return -1;
	corpus_free_doc(&r->cur);
	for (;;) {
		if (r->failed)
			return -1;
		int rc;
		if (r->jf) {
			rc = corpus_jsonl_next(r);
		} else if (r->depth > 0) {
			rc = corpus_walk_step(r);
		} else if (r->next_input < r->n) {
			int i = r->next_input++;
			const char *in = r->inputs[i];
			if (r->kinds[i] == K_DIR) {
				char *rel = corpus_dup_s(""), *fs = corpus_dup_s(in);
				if (!rel || !fs) {
					free(rel);
					free(fs);
					return corpus_oom(r);
				}
				rc = corpus_walk_push(r, rel, fs);
			} else if (r->kinds[i] == K_JSONL) {
				rc = corpus_jsonl_open(r, corpus_base_name(in), in);
			} else {
				rc = corpus_load_file(r, corpus_base_name(in), in, r->kinds[i]);
			}
		} else {
			return 0;
		}
		if (rc == 1) {
			if (doc)
				*doc = r->cur;
			return 1;
		}
		corpus_free_doc(&r->cur);
		if (rc < 0) {
			if (!r->failed)
				corpus_oom(r);
			return -1;
		}
	}
}

const char *corpus_error(const corpus_reader *r)
{
	return r ? r->err : "";
}

uint64_t corpus_skipped(const corpus_reader *r)
{
	return r ? r->skipped : 0;
}

void corpus_close(corpus_reader *r)
{
	if (!r)
		return;
	corpus_free_doc(&r->cur);
	corpus_jsonl_close(r);
	while (r->depth > 0)
		corpus_walk_pop(r);
	free(r->stack);
	if (r->inputs)
		for (int i = 0; i < r->n; i++)
			free(r->inputs[i]);
	free(r->inputs);
	free(r->kinds);
	free(r);
}
