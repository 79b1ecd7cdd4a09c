/* corpus_jsonl.c — reading JSON Lines files (one document per line, parsed
 * with cJSON); called by corpus_next / corpus_close in corpus.c and by the
 * walk in corpus_walk.c. */
#include "indexer/corpus_int.h"
#include "indexer/limits.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RBUF_BYTES (64u << 10)

/* A line longer than this is skipped: the document it holds could only be
 * larger still, and the bound keeps the reader's memory from growing with a
 * file that has no newline (SOUSUO_MAX_DOC_BYTES also bounds a .md file). */
#define MAX_LINE_BYTES ((size_t)SOUSUO_MAX_DOC_BYTES)

enum { LINE_OK, LINE_TOO_LONG, LINE_NUL };

void corpus_jsonl_close(corpus_reader *r)
{
	if (r->jf)
		fclose(r->jf);
	r->jf = NULL;
	free(r->jpath);
	free(r->jfs);
	r->jpath = r->jfs = NULL;
	free(r->line);
	r->line = NULL;
	r->line_cap = 0;
	free(r->rbuf);
	r->rbuf = NULL;
	r->rpos = r->rlen = 0;
}

/* Starts reading a JSON Lines file; returns 0 or -1 (fatal). */
int corpus_jsonl_open(corpus_reader *r, const char *rel, const char *fs)
{
	if (!corpus_utf8_valid(rel, strlen(rel)))
		return corpus_skip_input(r, fs, "file name is not valid UTF-8");
	int fd = open(fs, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return corpus_skip_input(r, fs, "cannot open: %s", strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return corpus_skip_input(r, fs, "not a regular file");
	}
	if (st.st_size == 0) {
		close(fd);
		return corpus_skip_input(r, fs, "empty file");
	}
	FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return corpus_oom(r);
	}
	r->jf = f;
	r->jpath = corpus_dup_s(rel);
	r->jfs = corpus_dup_s(fs);
	r->jline = 0;
	r->rbuf = malloc(RBUF_BYTES);
	r->rpos = r->rlen = 0;
	if (!r->jpath || !r->jfs || !r->rbuf) {
		corpus_jsonl_close(r);
		return corpus_oom(r);
	}
	return 0;
}

static int json_str(const cJSON *o, const char *key, const char **out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsString(it) || !it->valuestring)
		return 0;
	*out = it->valuestring;
	return 1;
}

/* Builds r->cur from one parsed line; returns 1, 0 (skipped) or -1. */
static int json_doc(corpus_reader *r, const cJSON *root, const char *what)
{
	const char *title, *body, *s;
	if (!cJSON_IsObject(root))
		return corpus_skip_input(r, what, "not a JSON object");
	if (!json_str(root, "title", &title))
		return corpus_skip_input(r, what, "\"title\" missing or not a string");
	if (!json_str(root, "body", &body))
		return corpus_skip_input(r, what, "\"body\" missing or not a string");
	size_t tl = strlen(title), bl = strlen(body);
	if (!corpus_utf8_valid(title, tl) || !corpus_utf8_valid(body, bl))
		return corpus_skip_input(r, what, "invalid UTF-8");
	if (tl + 1 + bl > SOUSUO_MAX_DOC_BYTES)
		return corpus_skip_input(r, what, "larger than %u bytes", SOUSUO_MAX_DOC_BYTES);

	corpus_doc *d = &r->cur;
	const char *cat = "";
	if (json_str(root, "category", &s)) {
		if (!corpus_utf8_valid(s, strlen(s)))
			return corpus_skip_input(r, what, "invalid UTF-8");
		cat = s;
	}
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
	if (cJSON_IsString(id) && id->valuestring) {
		if (!corpus_utf8_valid(id->valuestring, strlen(id->valuestring)))
			return corpus_skip_input(r, what, "invalid UTF-8");
		d->ext_id = corpus_dup_s(id->valuestring);
		if (!d->ext_id)
			return corpus_oom(r);
	} else if (cJSON_IsNumber(id)) {
		char nb[64];
		double v = id->valuedouble;
		if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(long long)v)
			snprintf(nb, sizeof nb, "%lld", (long long)v);
		else
			snprintf(nb, sizeof nb, "%.17g", v);
		d->ext_id = corpus_dup_s(nb);
		if (!d->ext_id)
			return corpus_oom(r);
	}
	if (json_str(root, "date", &s))
		d->date = corpus_date_from_iso(s);

	char ln[32];
	snprintf(ln, sizeof ln, ":%llu", (unsigned long long)r->jline);
	size_t pl = strlen(r->jpath), ll = strlen(ln);
	d->path = malloc(pl + ll + 1);
	d->body = malloc(tl + 1 + bl + 1);
	d->title = corpus_make_title(title, tl, 0);
	d->short_title = d->title ? corpus_dup_s(d->title) : NULL;
	d->category = corpus_dup_s(cat);
	if (!d->path || !d->body || !d->title || !d->short_title || !d->category)
		return corpus_oom(r);
	memcpy(d->path, r->jpath, pl);
	memcpy(d->path + pl, ln, ll + 1);
	memcpy(d->body, title, tl);
	d->body[tl] = '\n';
	memcpy(d->body + tl + 1, body, bl + 1);
	d->body_len = tl + 1 + bl;
	return 1;
}

/* Reads the next line of r->jf into r->line (NUL-terminated, newline kept)
 * like getline, but stops keeping its bytes once the line is known to be
 * skipped: past MAX_LINE_BYTES, or once a NUL byte was seen; the rest is
 * read and dropped, so memory stays bounded whatever the file holds.
 * Returns the kept length (>= 0), -1 at the end of the file, -2 on a read
 * error (errno set), -3 when out of memory; *state says why bytes were
 * dropped. */
static ssize_t read_line(corpus_reader *r, int *state)
{
	size_t n = 0;
	int any = 0;
	*state = LINE_OK;
	for (;;) {
		if (r->rpos == r->rlen) {
			size_t k = fread(r->rbuf, 1, RBUF_BYTES, r->jf);
			if (k == 0) {
				if (ferror(r->jf))
					return -2;
				if (!any)
					return -1;
				break;
			}
			r->rpos = 0;
			r->rlen = k;
		}
		any = 1;
		const char *at = r->rbuf + r->rpos;
		size_t avail = r->rlen - r->rpos;
		const char *nl = memchr(at, '\n', avail);
		size_t take = nl ? (size_t)(nl - at) + 1 : avail;
		r->rpos += take;
		if (*state == LINE_OK && n + take > MAX_LINE_BYTES)
			*state = LINE_TOO_LONG;
		if (*state == LINE_OK && memchr(at, '\0', take))
			*state = LINE_NUL;
		if (*state == LINE_OK) {
			if (n + take + 1 > r->line_cap) {
				size_t cap = r->line_cap ? r->line_cap : 256;
				while (cap < n + take + 1)
					cap *= 2;
				if (cap > MAX_LINE_BYTES + 1)
					cap = MAX_LINE_BYTES + 1;
				char *p = realloc(r->line, cap);
				if (!p)
					return -3;
				r->line = p;
				r->line_cap = cap;
			}
			memcpy(r->line + n, at, take);
			n += take;
		}
		if (nl)
			break;
	}
	if (!r->line && !(r->line = malloc(r->line_cap = 1)))
		return -3;
	r->line[n] = '\0';
	return (ssize_t)n;
}

/* 1 if the JSON text s holds the escape \u0000, which cJSON decodes into a
 * NUL that would silently cut the string short. */
static int has_nul_escape(const char *s, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++)
		if (s[i] == '\\') {
			if (s[i + 1] == 'u' && len - i >= 6 && !memcmp(s + i + 2, "0000", 4))
				return 1;
			i++;  /* the escaped character: "\\u0000" is no NUL */
		}
	return 0;
}

/* Next document of the open JSON Lines file: 1, 0 at its end (closed), -1. */
int corpus_jsonl_next(corpus_reader *r)
{
	for (;;) {
		errno = 0;
		int state;
		ssize_t n = read_line(r, &state);
		if (n < 0) {
			int e = errno;
			char *fs = r->jfs;
			r->jfs = NULL;
			corpus_jsonl_close(r);
			int rc = 0;
			if (n == -3)
				rc = corpus_oom(r);
			else if (n == -2)
				rc = corpus_skip_input(r, fs, "read error: %s", strerror(e ? e : EIO));
			free(fs);
			return rc;
		}
		r->jline++;
		char *s = r->line;
		size_t len = (size_t)n;
		if (len && s[len - 1] == '\n')
			len--;
		if (len && s[len - 1] == '\r')
			len--;
		s[len] = '\0';
		if (r->jline == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
			s += 3;
			len -= 3;
		}
		size_t k = 0;
		while (k < len && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r'))
			k++;
		if (k == len && state == LINE_OK)
			continue;  /* blank line (a dropped one may look blank) */

		char what[64];
		snprintf(what, sizeof what, ":%llu", (unsigned long long)r->jline);
		char *w = malloc(strlen(r->jfs) + strlen(what) + 1);
		if (!w)
			return corpus_oom(r);
		strcpy(w, r->jfs);
		strcat(w, what);

		int rc;
		if (state == LINE_TOO_LONG) {
			rc = corpus_skip_input(r, w, "line longer than %zu bytes", MAX_LINE_BYTES);
		} else if (state == LINE_NUL || memchr(s, '\0', len)) {
			rc = corpus_skip_input(r, w, "contains NUL bytes");
		} else if (!corpus_utf8_valid(s, len)) {
			rc = corpus_skip_input(r, w, "invalid UTF-8");
		} else {
			const char *end = NULL;
			cJSON *root = cJSON_ParseWithOpts(s, &end, 1);
			int nul = root && has_nul_escape(s, len);
			if (r->line_cap > (1u << 20)) {
				/* keep peak memory near one line plus its parse */
				free(r->line);
				r->line = NULL;
				r->line_cap = 0;
			}
			if (!root)
				rc = corpus_skip_input(r, w, "malformed JSON");
			else if (nul)
				rc = corpus_skip_input(r, w, "contains NUL bytes (\\u0000)");
			else
				rc = json_doc(r, root, w);
			cJSON_Delete(root);
		}
		if (r->line_cap > (1u << 20)) {  /* a long line that was skipped */
			free(r->line);
			r->line = NULL;
			r->line_cap = 0;
		}
		free(w);
		if (rc != 0)
			return rc;
		corpus_free_doc(&r->cur);  /* a skipped line may have set some fields */
	}
}
