/* fts5bench.c — the SQLite FTS5 peer of `make bench-compare`: builds an FTS5
 * database of the corpus with the trigram tokenizer, runs the benchmark
 * queries in-process and warm (top 10 by bm25 plus the exact total, as our
 * engine answers), compares the totals with expected-hits.tsv and writes
 * fts5.env for the aggregator.  Run by run.sh beside it; README.md there
 * gives the configuration, the query translation and why totals differ.
 *
 * Built against the system SQLite only:
 *   cc -O2 -Wall -Wextra -Werror fts5bench.c $(pkg-config --cflags --libs sqlite3)
 *
 * Layout of this file: small utilities (clock, buffers, UTF-8); the corpus
 * walk and the database build; the query parser (our query language, the
 * subset without filters); the translation to SQL; the statement cache and
 * the timed runs; statistics and output files; main.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PROG "fts5bench"

/* Limits.  Queries: the same bounds as our parser (indexer/limits.h) where
 * they exist; the node pool follows from the byte limit (each term or '-'
 * consumes its own bytes, each AND/OR node needs a '|', a '(' or the start). */
enum {
	MAX_QUERY_BYTES = 4096,
	MAX_TERMS = 64,
	MAX_DEPTH = 16,
	MAX_NODES = 3 * MAX_QUERY_BYTES + 8,
	MAX_PARAMS = MAX_TERMS + 1,
	MAX_DOC_BYTES = 256 << 20,     /* larger files are refused */
	MAX_WALK_DEPTH = 64,
	TOP_K = 10                     /* results a query returns, as our engine's default */
};

/* SQLite 3.34.0 (2020-12-01) introduced the trigram tokenizer. */
#define MIN_SQLITE_VERSION 3034000

/* ---------- utilities ---------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* A growable byte buffer with a sticky out-of-memory flag (checked once, at
 * the end of a run of appends).  p is NUL-terminated whenever len > 0 or
 * after sb_putc(b, 0) — callers that need a C string append the NUL. */
typedef struct {
	char *p;
	size_t len, cap;
	int oom;
} sbuf;

static void sb_reserve(sbuf *b, size_t extra)
{
	if (b->oom)
		return;
	if (extra > SIZE_MAX / 2 - b->len) {
		b->oom = 1;
		return;
	}
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = 1;
		return;
	}
	b->p = p;
	b->cap = cap;
}

static void sb_put(sbuf *b, const char *s, size_t n)
{
	sb_reserve(b, n);
	if (b->oom)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void sb_puts(sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void sb_putc(sbuf *b, char c)
{
	sb_put(b, &c, 1);
}

static void sb_putnum(sbuf *b, int n)
{
	char tmp[16];
	int k = snprintf(tmp, sizeof tmp, "%d", n);
	if (k > 0 && (size_t)k < sizeof tmp)
		sb_put(b, tmp, (size_t)k);
	else
		b->oom = 1;
}

static void sb_clear(sbuf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = 0;
	b->oom = 0;
}

static void sb_free(sbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* Decodes one code point from s[0..n), n > 0; returns the bytes used (1..4)
 * and stores the code point, or UINT32_MAX for an invalid sequence (1 byte). */
static size_t utf8_get(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned c = s[0];
	size_t k;
	uint32_t v, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		k = 2; v = c & 0x1F; min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		k = 3; v = c & 0x0F; min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		k = 4; v = c & 0x07; min = 0x10000;
	} else {
		*cp = UINT32_MAX;
		return 1;
	}
	if (n < k) {
		*cp = UINT32_MAX;
		return 1;
	}
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xC0) != 0x80) {
			*cp = UINT32_MAX;
			return 1;
		}
		v = v << 6 | (s[i] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
		*cp = UINT32_MAX;
		return 1;
	}
	*cp = v;
	return k;
}

/* Code points in s[0..n): UTF-8 lead bytes (what FTS5 counts, too). */
static size_t utf8_chars(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xC0) != 0x80;
	return c;
}

/* Whitespace in a query, as our parser has it (search/query.h): every ASCII
 * control character, space, and Unicode White_Space. */
static int is_space_cp(uint32_t c)
{
	return c <= 0x20 || c == 0x7F || c == 0x85 || c == 0xA0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
	       c == 0x205F || c == 0x3000;
}

/* ---------- corpus walk and database build ---------- */

typedef struct {
	char *full;   /* path to open */
	char *rel;    /* path relative to its input folder (stored in the table) */
} docfile;

typedef struct {
	docfile *v;
	size_t n, cap;
	size_t max;   /* stop after this many files (0: no limit) */
} doclist;

static int has_doc_ext(const char *name)
{
	size_t n = strlen(name);
	return (n > 3 && !strcasecmp(name + n - 3, ".md")) ||
	       (n > 4 && !strcasecmp(name + n - 4, ".txt"));
}

static int doclist_add(doclist *l, const char *full, const char *rel)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		docfile *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	char *f = strdup(full), *r = strdup(rel);
	if (!f || !r) {
		free(f);
		free(r);
		return -1;
	}
	l->v[l->n].full = f;
	l->v[l->n].rel = r;
	l->n++;
	return 0;
}

static void doclist_free(doclist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].full);
		free(l->v[i].rel);
	}
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *path_join(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	char *p = malloc(na + nb + 2);
	if (!p)
		return NULL;
	memcpy(p, a, na);
	size_t k = na;
	if (na && nb)
		p[k++] = '/';
	memcpy(p + k, b, nb + 1);
	return p;
}

/* Walks folder root/rel depth first, entries sorted byte-wise at each level
 * (as indexer/corpus.h does), adding .md/.txt files.  Names starting with
 * '.' are ignored; symbolic links to folders are not followed.  Returns 0,
 * or -1 after a message. */
static int walk(doclist *l, const char *root, const char *rel, int depth)
{
	if (depth > MAX_WALK_DEPTH) {
		report("%s/%s: folders nested too deep", root, rel);
		return -1;
	}
	char *dir = path_join(root, rel);
	if (!dir) {
		report("out of memory");
		return -1;
	}
	DIR *d = opendir(dir);
	if (!d) {
		report("%s: %s", dir, strerror(errno));
		free(dir);
		return -1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			size_t c2 = cap ? cap * 2 : 64;
			char **v = realloc(names, c2 * sizeof *v);
			if (!v) {
				rc = -1;
				break;
			}
			names = v;
			cap = c2;
		}
		if (!(names[n] = strdup(e->d_name))) {
			rc = -1;
			break;
		}
		n++;
	}
	closedir(d);
	if (rc)
		report("out of memory");
	if (!rc && n)
		qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 0; !rc && i < n; i++) {
		if (l->max && l->n >= l->max)
			break;
		char *full = path_join(dir, names[i]), *r = path_join(rel, names[i]);
		struct stat st;
		if (!full || !r) {
			report("out of memory");
			rc = -1;
		} else if (lstat(full, &st)) {
			report("%s: %s", full, strerror(errno));
			rc = -1;
		} else if (S_ISDIR(st.st_mode)) {
			rc = walk(l, root, r, depth + 1);
		} else if (has_doc_ext(names[i]) && (S_ISREG(st.st_mode) ||
		           (S_ISLNK(st.st_mode) && !stat(full, &st) && S_ISREG(st.st_mode)))) {
			if (doclist_add(l, full, r)) {
				report("out of memory");
				rc = -1;
			}
		}
		free(full);
		free(r);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(dir);
	return rc;
}

/* Adds an input: a folder (walked) or a single .md/.txt file (its base name
 * as path). */
static int add_input(doclist *l, const char *in)
{
	struct stat st;
	if (stat(in, &st)) {
		report("%s: %s", in, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode))
		return walk(l, in, "", 0);
	if (l->max && l->n >= l->max)
		return 0;
	const char *base = strrchr(in, '/');
	if (doclist_add(l, in, base ? base + 1 : in)) {
		report("out of memory");
		return -1;
	}
	return 0;
}

/* Reads a whole file into a new buffer (*out, *len; free it).  Returns 0, or
 * -1 after a message. */
static int read_file(const char *path, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		report("%s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) || st.st_size < 0 || st.st_size > MAX_DOC_BYTES) {
		report("%s: %s", path, st.st_size > MAX_DOC_BYTES ? "file too large" : strerror(errno));
		close(fd);
		return -1;
	}
	size_t n = (size_t)st.st_size, got = 0;
	char *buf = malloc(n + 1);
	if (!buf) {
		report("out of memory reading %s", path);
		close(fd);
		return -1;
	}
	while (got < n) {
		ssize_t k = read(fd, buf + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			report("%s: %s", path, k < 0 ? strerror(errno) : "file shrank while read");
			free(buf);
			close(fd);
			return -1;
		}
		got += (size_t)k;
	}
	close(fd);
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
}

/* Runs one SQL statement that returns no rows we need.  Returns 0 or -1
 * after a message. */
static int exec_sql(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		report("%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static const char CREATE_SQL[] =
	"CREATE VIRTUAL TABLE docs USING fts5(path UNINDEXED, body, tokenize = 'trigram')";

/* Checks that this SQLite has FTS5 with the trigram tokenizer, by creating
 * the table in a scratch in-memory database.  Returns 0 or -1 after a
 * message. */
static int check_fts5(void)
{
	if (sqlite3_libversion_number() < MIN_SQLITE_VERSION) {
		report("SQLite %s is too old: the FTS5 trigram tokenizer needs 3.34.0 or later",
		      sqlite3_libversion());
		return -1;
	}
	sqlite3 *db = NULL;
	int rc = sqlite3_open(":memory:", &db);
	if (rc != SQLITE_OK) {
		report("sqlite3_open(:memory:): %s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return -1;
	}
	rc = sqlite3_exec(db, CREATE_SQL, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		report("SQLite %s: FTS5 with the trigram tokenizer is not available: %s",
		      sqlite3_libversion(), sqlite3_errmsg(db));
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

typedef struct {
	size_t ndocs, skipped;
	double text_bytes;
	double seconds;
	long long file_bytes;
} build_stats;

/* Creates dbpath afresh and inserts every file of l in one transaction.
 * The time covers CREATE, the inserts and COMMIT (the index is complete and
 * durable when it stops).  Returns 0 or -1 after a message. */
static int build_db(const char *dbpath, const doclist *l, build_stats *bs)
{
	char side[4096];
	static const char *const sfx[] = { "", "-journal", "-wal", "-shm" };
	for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++) {
		int k = snprintf(side, sizeof side, "%s%s", dbpath, sfx[i]);
		if (k < 0 || (size_t)k >= sizeof side) {
			report("%s: path too long", dbpath);
			return -1;
		}
		if (unlink(side) && errno != ENOENT) {
			report("%s: %s", side, strerror(errno));
			return -1;
		}
	}
	memset(bs, 0, sizeof *bs);
	sqlite3 *db = NULL;
	sqlite3_stmt *ins = NULL;
	int ok = 0;
	double t0 = now_s();
	int rc = sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		report("%s: %s", dbpath, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto out;
	}
	if (exec_sql(db, CREATE_SQL) || exec_sql(db, "BEGIN"))
		goto out;
	if (sqlite3_prepare_v2(db, "INSERT INTO docs(path, body) VALUES(?1, ?2)", -1, &ins, NULL)
	    != SQLITE_OK) {
		report("prepare INSERT: %s", sqlite3_errmsg(db));
		goto out;
	}
	for (size_t i = 0; i < l->n; i++) {
		char *text;
		size_t len;
		if (read_file(l->v[i].full, &text, &len))
			goto out;
		const char *body = text;
		if (len >= 3 && !memcmp(body, "\xEF\xBB\xBF", 3)) {   /* a BOM, as corpus.c */
			body += 3;
			len -= 3;
		}
		if (len == 0) {
			report("%s: empty file, skipped", l->v[i].full);
			bs->skipped++;
			free(text);
			continue;
		}
		if (len > INT32_MAX) {
			report("%s: too large for one SQLite value", l->v[i].full);
			free(text);
			goto out;
		}
		rc = sqlite3_bind_text(ins, 1, l->v[i].rel, -1, SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_text(ins, 2, body, (int)len, SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(ins);
		sqlite3_reset(ins);
		sqlite3_clear_bindings(ins);
		free(text);
		if (rc != SQLITE_DONE) {
			report("INSERT %s: %s", l->v[i].rel, sqlite3_errmsg(db));
			goto out;
		}
		bs->ndocs++;
		bs->text_bytes += (double)len;
	}
	if (exec_sql(db, "COMMIT"))
		goto out;
	ok = 1;
out:
	sqlite3_finalize(ins);
	if (db && sqlite3_close(db) != SQLITE_OK) {
		report("close %s: %s", dbpath, sqlite3_errmsg(db));
		ok = 0;
	}
	bs->seconds = now_s() - t0;
	struct stat st;
	if (ok && stat(dbpath, &st)) {
		report("%s: %s", dbpath, strerror(errno));
		ok = 0;
	}
	if (ok)
		bs->file_bytes = (long long)st.st_size;
	return ok ? 0 : -1;
}

/* Prints how the database's bytes split between its tables (the dbstat
 * virtual table; silently nothing when this SQLite lacks it). */
static void print_layout(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT name, sum(pgsize) FROM dbstat GROUP BY name "
	                           "ORDER BY 2 DESC", -1, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return;
	}
	printf("fts5: database by table:");
	while (sqlite3_step(st) == SQLITE_ROW)
		printf(" %s %.1f MB;", (const char *)sqlite3_column_text(st, 0),
		       sqlite3_column_double(st, 1) / 1e6);
	printf("\n");
	sqlite3_finalize(st);
}

/* ---------- the query parser ---------- */

/* Our query language (search/query.h) without filters: terms separated by
 * whitespace are ANDed, '|' is OR (looser), '-' directly before an operand
 * at the start of a chunk is NOT, parentheses group, "..." is a phrase.  A
 * term is kept as written: FTS5 and LIKE search it as one literal string. */
enum { Q_TERM = 1, Q_AND, Q_OR, Q_NOT };

typedef struct qnode qnode;
struct qnode {
	int kind;            /* Q_TERM, Q_AND, Q_OR or Q_NOT */
	const char *text;    /* Q_TERM: the term as written (a phrase without its
	                        quotes), pointing into the query; not NUL-terminated */
	size_t len;          /* Q_TERM: bytes of text */
	size_t nchars;       /* Q_TERM: code points of text */
	qnode *kid;          /* Q_AND, Q_OR, Q_NOT: the first operand */
	qnode *next;         /* the next operand of the parent */
};

typedef struct {
	const char *s;
	size_t len, pos;
	qnode pool[MAX_NODES];
	size_t nnodes;
	int nterms, depth;
	const char *err;     /* static text; NULL while all is well */
	int unsupported;     /* the error is a filter we do not translate */
} qparser;

static qnode *node_new(qparser *p, int kind)
{
	if (p->nnodes >= MAX_NODES) {
		p->err = "query too complex";
		return NULL;
	}
	qnode *n = &p->pool[p->nnodes++];
	memset(n, 0, sizeof *n);
	n->kind = kind;
	return n;
}

/* Bytes of the whitespace character at p->pos, or 0. */
static size_t space_at(const qparser *p, size_t pos)
{
	if (pos >= p->len)
		return 0;
	uint32_t cp;
	size_t k = utf8_get((const unsigned char *)p->s + pos, p->len - pos, &cp);
	return cp != UINT32_MAX && is_space_cp(cp) ? k : 0;
}

static void skip_space(qparser *p)
{
	size_t k;
	while ((k = space_at(p, p->pos)))
		p->pos += k;
}

static int is_op(char c)
{
	return c == '(' || c == ')' || c == '|' || c == '"';
}

static qnode *parse_or(qparser *p);

static qnode *term_node(qparser *p, const char *text, size_t len)
{
	if (++p->nterms > MAX_TERMS) {
		p->err = "too many terms";
		return NULL;
	}
	qnode *n = node_new(p, Q_TERM);
	if (!n)
		return NULL;
	n->text = text;
	n->len = len;
	n->nchars = utf8_chars(text, len);
	return n;
}

/* A filter keyword (title:, category:, sort:, date<op>) at the start of a
 * term: our engine's fields, which an FTS5 table of bodies does not have. */
static int is_filter(const char *t, size_t n)
{
	return (n >= 6 && !strncasecmp(t, "title:", 6)) ||
	       (n >= 9 && !strncasecmp(t, "category:", 9)) ||
	       (n >= 5 && !strncasecmp(t, "sort:", 5)) ||
	       (n >= 5 && !strncasecmp(t, "date", 4) && t[4] && strchr("<>=:", t[4]));
}

static qnode *parse_primary(qparser *p)
{
	if (p->pos >= p->len) {
		p->err = "missing operand";
		return NULL;
	}
	char c = p->s[p->pos];
	if (c == '(') {
		if (++p->depth > MAX_DEPTH) {
			p->err = "parentheses nested too deep";
			return NULL;
		}
		p->pos++;
		qnode *n = parse_or(p);
		if (!n)
			return NULL;
		skip_space(p);
		if (p->pos >= p->len || p->s[p->pos] != ')') {
			p->err = "unbalanced parentheses";
			return NULL;
		}
		p->pos++;
		p->depth--;
		return n;
	}
	if (c == '"') {
		size_t start = ++p->pos;
		while (p->pos < p->len && p->s[p->pos] != '"')
			p->pos++;
		if (p->pos >= p->len) {
			p->err = "unterminated phrase";
			return NULL;
		}
		size_t end = p->pos++;
		if (end == start) {
			p->err = "empty phrase";
			return NULL;
		}
		return term_node(p, p->s + start, end - start);
	}
	if (is_op(c)) {
		p->err = "unexpected operator";
		return NULL;
	}
	size_t start = p->pos;
	while (p->pos < p->len && !is_op(p->s[p->pos]) && !space_at(p, p->pos))
		p->pos++;
	if (is_filter(p->s + start, p->pos - start)) {
		p->err = "filters (title:, category:, date, sort:) are not translated";
		p->unsupported = 1;
		return NULL;
	}
	return term_node(p, p->s + start, p->pos - start);
}

static qnode *parse_unary(qparser *p)
{
	if (p->pos < p->len && p->s[p->pos] == '-') {
		p->pos++;
		if (p->pos >= p->len || space_at(p, p->pos) || p->s[p->pos] == '-' ||
		    p->s[p->pos] == ')' || p->s[p->pos] == '|') {
			p->err = "'-' must be directly followed by its operand";
			return NULL;
		}
		qnode *n = node_new(p, Q_NOT), *k = n ? parse_primary(p) : NULL;
		if (!k)
			return NULL;
		n->kid = k;
		return n;
	}
	return parse_primary(p);
}

/* One or more unary operands up to '|', ')' or the end; a single one is
 * returned as is, several under a Q_AND. */
static qnode *parse_and(qparser *p)
{
	qnode *first = NULL, *last = NULL;
	int n = 0;
	for (;;) {
		skip_space(p);
		if (p->pos >= p->len || p->s[p->pos] == '|' || p->s[p->pos] == ')')
			break;
		qnode *u = parse_unary(p);
		if (!u)
			return NULL;
		if (last)
			last->next = u;
		else
			first = u;
		last = u;
		n++;
	}
	if (n == 0) {
		p->err = "missing operand";
		return NULL;
	}
	if (n == 1)
		return first;
	qnode *a = node_new(p, Q_AND);
	if (a)
		a->kid = first;
	return a;
}

static qnode *parse_or(qparser *p)
{
	qnode *first = parse_and(p), *last = first;
	int n = 1;
	if (!first)
		return NULL;
	for (;;) {
		skip_space(p);
		if (p->pos >= p->len || p->s[p->pos] != '|')
			break;
		p->pos++;
		qnode *k = parse_and(p);
		if (!k)
			return NULL;
		last->next = k;
		last = k;
		n++;
	}
	if (n == 1)
		return first;
	qnode *o = node_new(p, Q_OR);
	if (o)
		o->kid = first;
	return o;
}

/* Parses s[0..len).  Returns the root, or NULL with p->err set. */
static qnode *parse_query(qparser *p, const char *s, size_t len)
{
	p->s = s;
	p->len = len;
	p->pos = 0;
	p->nnodes = 0;
	p->nterms = 0;
	p->depth = 0;
	p->err = NULL;
	p->unsupported = 0;
	if (len > MAX_QUERY_BYTES) {
		p->err = "query too long";
		return NULL;
	}
	skip_space(p);
	if (p->pos >= p->len) {
		p->err = "empty query";
		return NULL;
	}
	qnode *root = parse_or(p);
	if (!root)
		return NULL;
	skip_space(p);
	if (p->pos < p->len) {
		p->err = "unbalanced parentheses";
		return NULL;
	}
	return root;
}

/* ---------- translation to SQL ----------
 *
 * A term of 3 or more characters is an FTS5 phrase ("term", quotes doubled):
 * with the trigram tokenizer that is an exact substring match through the
 * index.  A shorter term has no trigram; it becomes `+body LIKE '%term%'`, a
 * test of every row it reaches (the '+' keeps FTS5 from taking the LIKE
 * itself: SQLite 3.40 answers a LIKE of 1-2 non-ASCII characters on a
 * trigram column with no rows at all).
 *
 * exact(n):  the FTS5 expression of n matches exactly n's documents — every
 *            term long, every AND with a positive operand (FTS5's NOT is
 *            binary: "a NOT b").
 * driver(n): an FTS5 expression matching a superset of n exists: a long
 *            term; an OR whose operands all have one; an AND with one
 *            positive operand that has one.
 * The WHERE clause is, for the root:
 *   exact                  docs MATCH ?1                         (PLAN_MATCH)
 *   driver (AND root)      docs MATCH ?1 AND <the operands the MATCH
 *                          does not already decide exactly>      (PLAN_FILTER)
 *   driver (other)         docs MATCH ?1 AND <exact predicate>   (PLAN_FILTER)
 *   neither                <exact predicate>, every row tested   (PLAN_SCAN)
 * The exact predicate of a subtree is `+rowid IN (SELECT rowid FROM docs
 * WHERE docs MATCH ?k)` when the subtree is exact, `+body LIKE ?k ESCAPE
 * '\'` for a short term, and AND / OR / NOT of its operands' otherwise.
 * (The '+' on rowid keeps the planner from answering an OR through the
 * rowid constraints, one scan per branch, where the top-level MATCH is no
 * longer offered to FTS5: "unable to use function MATCH".)
 * With a MATCH at the top, bm25() ranks by the long terms; without one
 * FTS5 has no rank and the top 10 are the first 10 rows in rowid order. */
enum { PLAN_MATCH, PLAN_FILTER, PLAN_SCAN, NPLANS };
static const char *const plan_names[NPLANS] = { "match", "match+filter", "scan" };

typedef struct {
	sbuf where;               /* WHERE clause; parameters are ?1, ?2, ... */
	sbuf vals;                /* parameter values back to back, each NUL-terminated */
	size_t voff[MAX_PARAMS];  /* offset in vals of parameter i+1 */
	size_t vlen[MAX_PARAMS];  /* its length in bytes, without the NUL */
	int nparams;
	int plan;                 /* PLAN_* */
	int err;                  /* too many parameters or out of memory */
} sqlq;

static int is_long(const qnode *n)
{
	return n->kind == Q_TERM && n->nchars >= 3;
}

static int exact(const qnode *n)
{
	const qnode *k;
	int pos = 0;
	switch (n->kind) {
	case Q_TERM:
		return is_long(n);
	case Q_OR:
		for (k = n->kid; k; k = k->next)
			if (!exact(k))
				return 0;
		return 1;
	case Q_AND:
		for (k = n->kid; k; k = k->next) {
			if (k->kind == Q_NOT ? !exact(k->kid) : !exact(k))
				return 0;
			pos += k->kind != Q_NOT;
		}
		return pos > 0;
	default:
		return 0;
	}
}

static int driver(const qnode *n)
{
	const qnode *k;
	switch (n->kind) {
	case Q_TERM:
		return is_long(n);
	case Q_OR:
		for (k = n->kid; k; k = k->next)
			if (!driver(k))
				return 0;
		return 1;
	case Q_AND:
		for (k = n->kid; k; k = k->next)
			if (k->kind != Q_NOT && driver(k))
				return 1;
		return 0;
	default:
		return 0;
	}
}

/* Starts parameter nparams+1 in q->vals; returns its number, or 0 when there
 * is no room (q->err set). */
static int param_begin(sqlq *q)
{
	if (q->nparams >= MAX_PARAMS) {
		q->err = 1;
		return 0;
	}
	q->voff[q->nparams] = q->vals.len;
	return ++q->nparams;
}

static void param_end(sqlq *q)
{
	q->vlen[q->nparams - 1] = q->vals.len - q->voff[q->nparams - 1];
	sb_putc(&q->vals, 0);
}

/* Writes n's FTS5 expression into b: exact when exact(n), else a superset
 * (requires driver(n)).  An AND keeps its positive operands that have a
 * driver and its negated exact operands. */
static void emit_fts(sbuf *b, const qnode *n)
{
	const qnode *k;
	int first = 1;
	switch (n->kind) {
	case Q_TERM:
		sb_putc(b, '"');
		for (size_t i = 0; i < n->len; i++) {
			if (n->text[i] == '"')
				sb_putc(b, '"');
			sb_putc(b, n->text[i]);
		}
		sb_putc(b, '"');
		break;
	case Q_OR:
		sb_putc(b, '(');
		for (k = n->kid; k; k = k->next) {
			if (!first)
				sb_puts(b, " OR ");
			emit_fts(b, k);
			first = 0;
		}
		sb_putc(b, ')');
		break;
	case Q_AND:
		sb_puts(b, "((");
		for (k = n->kid; k; k = k->next)
			if (k->kind != Q_NOT && driver(k)) {
				if (!first)
					sb_puts(b, " AND ");
				emit_fts(b, k);
				first = 0;
			}
		sb_putc(b, ')');
		for (k = n->kid; k; k = k->next)
			if (k->kind == Q_NOT && exact(k->kid)) {
				sb_puts(b, " NOT ");
				emit_fts(b, k->kid);
			}
		sb_putc(b, ')');
		break;
	default:
		break;
	}
}

static void emit_match_param(sqlq *q, const qnode *n)
{
	int k = param_begin(q);
	if (!k)
		return;
	emit_fts(&q->vals, n);
	param_end(q);
	sb_putc(&q->where, '?');
	sb_putnum(&q->where, k);
}

/* Writes the exact SQL predicate of n into q->where (see above). */
static void emit_sql(sqlq *q, const qnode *n)
{
	const qnode *k;
	int first = 1, pk;
	if (exact(n)) {
		sb_puts(&q->where, "+rowid IN (SELECT rowid FROM docs WHERE docs MATCH ");
		emit_match_param(q, n);
		sb_putc(&q->where, ')');
		return;
	}
	switch (n->kind) {
	case Q_TERM:   /* a short term */
		if (!(pk = param_begin(q)))
			return;
		sb_putc(&q->vals, '%');
		for (size_t i = 0; i < n->len; i++) {
			char c = n->text[i];
			if (c == '%' || c == '_' || c == '\\')
				sb_putc(&q->vals, '\\');
			sb_putc(&q->vals, c);
		}
		sb_putc(&q->vals, '%');
		param_end(q);
		sb_puts(&q->where, "+body LIKE ?");
		sb_putnum(&q->where, pk);
		sb_puts(&q->where, " ESCAPE '\\'");
		break;
	case Q_AND:
	case Q_OR:
		sb_putc(&q->where, '(');
		for (k = n->kid; k; k = k->next) {
			if (!first)
				sb_puts(&q->where, n->kind == Q_AND ? " AND " : " OR ");
			emit_sql(q, k);
			first = 0;
		}
		sb_putc(&q->where, ')');
		break;
	case Q_NOT:
		sb_puts(&q->where, "NOT ");
		emit_sql(q, n->kid);
		break;
	default:
		break;
	}
}

/* Translates the parsed query into q (cleared first).  Returns 0, or -1 when
 * it needs more than MAX_PARAMS parameters or memory runs out. */
static int translate(sqlq *q, const qnode *root)
{
	sb_clear(&q->where);
	sb_clear(&q->vals);
	q->nparams = 0;
	q->err = 0;
	if (exact(root)) {
		q->plan = PLAN_MATCH;
		sb_puts(&q->where, "docs MATCH ");
		emit_match_param(q, root);
	} else if (driver(root)) {
		q->plan = PLAN_FILTER;
		sb_puts(&q->where, "docs MATCH ");
		emit_match_param(q, root);
		if (root->kind == Q_AND) {
			/* The MATCH decides the exact positive operands and the
			 * negated exact ones; the others are tested on its rows. */
			for (const qnode *k = root->kid; k; k = k->next) {
				int decided = k->kind == Q_NOT ? exact(k->kid) : exact(k);
				if (decided)
					continue;
				sb_puts(&q->where, " AND ");
				emit_sql(q, k);
			}
		} else {
			sb_puts(&q->where, " AND ");
			emit_sql(q, root);
		}
	} else {
		q->plan = PLAN_SCAN;
		emit_sql(q, root);
	}
	return q->err || q->where.oom || q->vals.oom ? -1 : 0;
}

/* ---------- prepared statements and the timed runs ---------- */

/* Statements are prepared once per distinct WHERE text (the parameters are
 * bound) and reused: the top 10 and the exact total. */
typedef struct {
	char *where;
	uint64_t hash;
	sqlite3_stmt *top, *count;
} stmt_entry;

typedef struct {
	sqlite3 *db;
	stmt_entry *v;
	size_t n, cap;
} stmt_cache;

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

static void cache_free(stmt_cache *c)
{
	for (size_t i = 0; i < c->n; i++) {
		sqlite3_finalize(c->v[i].top);
		sqlite3_finalize(c->v[i].count);
		free(c->v[i].where);
	}
	free(c->v);
	c->v = NULL;
	c->n = c->cap = 0;
}

/* Returns the statements for q's WHERE clause, preparing them the first
 * time; NULL after a message.  The entry belongs to the cache. */
static stmt_entry *cache_get(stmt_cache *c, const sqlq *q)
{
	uint64_t h = fnv1a(q->where.p, q->where.len);
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].hash == h && !strcmp(c->v[i].where, q->where.p))
			return &c->v[i];
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		stmt_entry *v = realloc(c->v, cap * sizeof *v);
		if (!v) {
			report("out of memory");
			return NULL;
		}
		c->v = v;
		c->cap = cap;
	}
	stmt_entry *e = &c->v[c->n];
	memset(e, 0, sizeof *e);
	sbuf sql = { 0 };
	if (q->plan == PLAN_SCAN)
		sb_puts(&sql, "SELECT rowid, NULL FROM docs WHERE ");
	else
		sb_puts(&sql, "SELECT rowid, bm25(docs) FROM docs WHERE ");
	sb_put(&sql, q->where.p, q->where.len);
	if (q->plan != PLAN_SCAN)
		sb_puts(&sql, " ORDER BY bm25(docs)");
	sb_puts(&sql, " LIMIT ");
	sb_putnum(&sql, TOP_K);
	size_t top_len = sql.len;
	sb_putc(&sql, 0);
	sb_puts(&sql, "SELECT count(*) FROM docs WHERE ");
	sb_put(&sql, q->where.p, q->where.len);
	e->where = strdup(q->where.p);
	if (sql.oom || !e->where) {
		report("out of memory");
		goto fail;
	}
	if (sqlite3_prepare_v2(c->db, sql.p, -1, &e->top, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(c->db, sql.p + top_len + 1, -1, &e->count, NULL) != SQLITE_OK) {
		report("prepare %s: %s", sql.p, sqlite3_errmsg(c->db));
		goto fail;
	}
	sb_free(&sql);
	e->hash = h;
	c->n++;
	return e;
fail:
	sb_free(&sql);
	sqlite3_finalize(e->top);
	sqlite3_finalize(e->count);
	free(e->where);
	return NULL;
}

static int bind_all(sqlite3_stmt *st, const sqlq *q)
{
	for (int i = 0; i < q->nparams; i++)
		if (sqlite3_bind_text(st, i + 1, q->vals.p + q->voff[i], (int)q->vlen[i],
		                      SQLITE_STATIC) != SQLITE_OK)
			return -1;
	return 0;
}

/* Everything one query costs: parse, translate, find or prepare the
 * statements, bind, step the top 10 and the count.  Returns the exact total
 * (>= 0), -2 for a query this peer does not translate (filters, or its
 * syntax is refused; *why says), or -1 after an SQLite error message. */
typedef struct {
	qparser *parser;
	sqlq q;
	stmt_cache cache;
	double sink;   /* keeps the top 10 observable */
} runner;

static long long run_query(runner *r, const char *text, size_t len, const char **why)
{
	qnode *root = parse_query(r->parser, text, len);
	if (!root) {
		*why = r->parser->err;
		return -2;
	}
	if (translate(&r->q, root)) {
		*why = "too many terms for one statement, or out of memory";
		return -2;
	}
	stmt_entry *e = cache_get(&r->cache, &r->q);
	if (!e)
		return -1;
	long long total = -1;
	int rc;
	if (bind_all(e->top, &r->q) || bind_all(e->count, &r->q)) {
		report("bind: %s", sqlite3_errmsg(r->cache.db));
		goto out;
	}
	while ((rc = sqlite3_step(e->top)) == SQLITE_ROW)
		r->sink += (double)sqlite3_column_int64(e->top, 0) + sqlite3_column_double(e->top, 1);
	if (rc != SQLITE_DONE) {
		report("query %.*s: top 10: %s", (int)len, text, sqlite3_errmsg(r->cache.db));
		goto out;
	}
	rc = sqlite3_step(e->count);
	if (rc != SQLITE_ROW) {
		report("query %.*s: count: %s", (int)len, text, sqlite3_errmsg(r->cache.db));
		goto out;
	}
	total = sqlite3_column_int64(e->count, 0);
out:
	sqlite3_reset(e->top);
	sqlite3_reset(e->count);
	sqlite3_clear_bindings(e->top);
	sqlite3_clear_bindings(e->count);
	return total;
}

/* ---------- queries, expected totals, statistics ---------- */

typedef struct {
	char **v;
	size_t n, cap;
} lines;

static void lines_free(lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* Reads path's lines (CR LF or LF, the newline removed), at most max (0: no
 * limit).  Returns 0 or -1 after a message. */
static int read_lines(const char *path, size_t max, lines *out)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		report("%s: %s", path, strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = 0;
	while ((!max || out->n < max) && (len = getline(&line, &cap, f)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (out->n == out->cap) {
			size_t c2 = out->cap ? out->cap * 2 : 1024;
			char **v = realloc(out->v, c2 * sizeof *v);
			if (!v) {
				rc = -1;
				break;
			}
			out->v = v;
			out->cap = c2;
		}
		if (!(out->v[out->n] = strdup(line))) {
			rc = -1;
			break;
		}
		out->n++;
	}
	if (rc)
		report("out of memory reading %s", path);
	else if (ferror(f)) {
		report("%s: read error", path);
		rc = -1;
	}
	free(line);
	fclose(f);
	return rc;
}

/* expected[i] for query i from the TSV "query TAB count TAB class": the
 * line with the same number when its query matches, else the first line
 * with that query, else -1. */
static int load_expected(const char *path, const lines *qs, long long *expected)
{
	lines ex = { 0 };
	if (read_lines(path, 0, &ex))
		return -1;
	for (size_t i = 0; i < qs->n; i++) {
		expected[i] = -1;
		size_t ql = strlen(qs->v[i]);
		for (size_t k = 0; k <= ex.n; k++) {
			size_t j = k == 0 ? i : k - 1;   /* the same line first */
			if (j >= ex.n)
				continue;
			const char *t = ex.v[j];
			if (strncmp(t, qs->v[i], ql) || t[ql] != '\t')
				continue;
			char *end;
			errno = 0;
			long long v = strtoll(t + ql + 1, &end, 10);
			if (!errno && end != t + ql + 1 && (*end == '\t' || !*end) && v >= 0) {
				expected[i] = v;
				break;
			}
		}
	}
	lines_free(&ex);
	return 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The value at rank p (0..1) of sorted v[0..n), nearest rank as in
 * bench/hotpath_main.c. */
static double pct(const double *v, size_t n, double p)
{
	if (!n)
		return 0;
	return v[(size_t)(p * (double)(n - 1) + 0.5)];
}

static double median_of(double *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The query classes of bench/hotpath_main.c, so the tables line up. */
enum { C_1, C_2, C_34, C_5P, C_AND, C_OR, C_NOT, C_LATIN, NCLASS };
static const char *const class_names[NCLASS] = {
	"1 char", "2 chars", "3-4 chars", "5+ chars", "AND", "OR", "NOT", "latin/digits"
};

static int classify(const char *q)
{
	if (strchr(q, '|'))
		return C_OR;
	if (strstr(q, " -") || q[0] == '-')
		return C_NOT;
	for (const char *p = q; *p; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))
			return C_LATIN;
	if (strchr(q, ' '))
		return C_AND;
	size_t chars = utf8_chars(q, strlen(q));
	return chars == 1 ? C_1 : chars == 2 ? C_2 : chars <= 4 ? C_34 : C_5P;
}

/* One row of a breakdown table: the translated queries i with sel[i] == key. */
static void print_row(const char *name, const int *sel, int key, const double *med,
                      const long long *got, const long long *expected, size_t nq, double *tmp)
{
	size_t k = 0;
	int agree = 0;
	for (size_t i = 0; i < nq; i++)
		if (sel[i] == key && got[i] >= 0) {
			tmp[k++] = med[i];
			agree += got[i] >= 0 && got[i] == expected[i];
		}
	if (!k)
		return;
	qsort(tmp, k, sizeof *tmp, cmp_d);
	printf("  %-14s %5zu %10.1f %10.1f %10.1f %7d\n", name, k, pct(tmp, k, 0.5) * 1e6,
	       pct(tmp, k, 0.99) * 1e6, tmp[k - 1] * 1e6, agree);
}

/* ---------- main ---------- */

static void usage(void)
{
	fprintf(stderr,
	        "usage: " PROG " --db FILE --env FILE --hits FILE --queries FILE --expected FILE\n"
	        "                 [--sql FILE] [--runs R] [--max-docs N] [--max-queries N] INPUT...\n"
	        "  Builds FILE (an FTS5 trigram table of the .md/.txt files under each INPUT,\n"
	        "  walked sorted), runs the queries warm (one untimed pass, then R timed, default 3),\n"
	        "  writes the fts5_* figures to --env, query TAB expected TAB fts5 to --hits and,\n"
	        "  with --sql, query TAB plan TAB WHERE TAB parameters.\n");
}

static int parse_count(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > 100000000ULL)
		return -1;
	*out = (size_t)v;
	return 0;
}

/* Writes the SQL each query runs (for README examples and debugging). */
static void write_sql_line(FILE *f, const char *query, const sqlq *q, int plan_ok, const char *why)
{
	fprintf(f, "%s\t", query);
	if (!plan_ok) {
		fprintf(f, "-\t%s\t\n", why);
		return;
	}
	fprintf(f, "%s\t%s\t", plan_names[q->plan], q->where.p);
	for (int i = 0; i < q->nparams; i++)
		fprintf(f, "%s?%d=%s", i ? " " : "", i + 1, q->vals.p + q->voff[i]);
	fputc('\n', f);
}

int main(int argc, char **argv)
{
	const char *dbpath = NULL, *envpath = NULL, *hitspath = NULL, *qpath = NULL,
	           *xpath = NULL, *sqlpath = NULL;
	size_t runs = 3, max_docs = 0, max_queries = 0;
	int ninputs = 0, status = 1;
	char **inputs = calloc((size_t)argc, sizeof *inputs);
	if (!inputs) {
		report("out of memory");
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int more = i + 1 < argc;
		if (!strcmp(a, "--db") && more)
			dbpath = argv[++i];
		else if (!strcmp(a, "--env") && more)
			envpath = argv[++i];
		else if (!strcmp(a, "--hits") && more)
			hitspath = argv[++i];
		else if (!strcmp(a, "--queries") && more)
			qpath = argv[++i];
		else if (!strcmp(a, "--expected") && more)
			xpath = argv[++i];
		else if (!strcmp(a, "--sql") && more)
			sqlpath = argv[++i];
		else if (!strcmp(a, "--runs") && more) {
			if (parse_count(argv[++i], &runs) || runs < 1 || runs > 1000)
				goto bad_usage;
		} else if (!strcmp(a, "--max-docs") && more) {
			if (parse_count(argv[++i], &max_docs))
				goto bad_usage;
		} else if (!strcmp(a, "--max-queries") && more) {
			if (parse_count(argv[++i], &max_queries))
				goto bad_usage;
		} else if (a[0] == '-')
			goto bad_usage;
		else
			inputs[ninputs++] = argv[i];
	}
	if (!dbpath || !envpath || !hitspath || !qpath || !xpath || !ninputs)
		goto bad_usage;

	doclist docs = { 0 };
	lines qs = { 0 };
	long long *expected = NULL, *got = NULL;
	double *lat = NULL, *med = NULL, *pass = NULL, *tmp = NULL;
	int *cls = NULL, *plan = NULL;
	runner *r = NULL;
	sqlite3 *db = NULL;
	FILE *sqlf = NULL;

	/* 1. The database. */
	if (check_fts5())
		goto done;
	docs.max = max_docs;
	for (int i = 0; i < ninputs; i++)
		if (add_input(&docs, inputs[i]))
			goto done;
	if (!docs.n) {
		report("no .md or .txt files under the inputs");
		goto done;
	}
	build_stats bs;
	if (build_db(dbpath, &docs, &bs))
		goto done;
	printf("fts5: SQLite %s, %s\n", sqlite3_libversion(), CREATE_SQL);
	printf("fts5: %zu documents (%zu skipped), %.1f MB of text; build %.2f s "
	       "(one transaction); database %lld bytes (%.1f MB, %.2f x text)\n",
	       bs.ndocs, bs.skipped, bs.text_bytes / 1e6, bs.seconds, bs.file_bytes,
	       (double)bs.file_bytes / 1e6, (double)bs.file_bytes / (bs.text_bytes > 0 ? bs.text_bytes : 1));

	/* 2. Queries and expected totals. */
	if (read_lines(qpath, max_queries, &qs))
		goto done;
	if (!qs.n) {
		report("%s: no queries", qpath);
		goto done;
	}
	size_t nq = qs.n;
	expected = malloc(nq * sizeof *expected);
	got = malloc(nq * sizeof *got);
	lat = malloc(nq * runs * sizeof *lat);
	med = malloc(nq * sizeof *med);
	tmp = malloc((nq > runs ? nq : runs) * sizeof *tmp);
	pass = malloc(runs * sizeof *pass);
	cls = malloc(nq * sizeof *cls);
	plan = malloc(nq * sizeof *plan);
	r = calloc(1, sizeof *r);
	if (r)
		r->parser = malloc(sizeof *r->parser);
	if (!expected || !got || !lat || !med || !tmp || !pass || !cls || !plan || !r || !r->parser) {
		report("out of memory");
		goto done;
	}
	if (load_expected(xpath, &qs, expected))
		goto done;

	/* 3. Open the database afresh, read-only, memory-mapped (as our index
	 * is), and run the file: one untimed pass, then the timed ones. */
	int rc = sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		report("%s: %s", dbpath, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto done;
	}
	if (exec_sql(db, "PRAGMA mmap_size = 1073741824") || exec_sql(db, "PRAGMA cache_size = -65536"))
		goto done;
	print_layout(db);
	r->cache.db = db;
	/* The plan of each query, from an untimed translation: the warm-up
	 * pass runs every query that uses the index but only the first full
	 * scan: every scan reads the same pages, and the scans take longer
	 * than all the rest together (README.md, "Timing"). */
	size_t unsupported = 0, nscan = 0;
	for (size_t i = 0; i < nq; i++) {
		qnode *root = parse_query(r->parser, qs.v[i], strlen(qs.v[i]));
		plan[i] = root && !translate(&r->q, root) ? r->q.plan : -1;
		got[i] = LLONG_MIN;
		nscan += plan[i] == PLAN_SCAN;
	}
	printf("fts5: plans: %zu queries, %zu need a full scan; an untimed warm-up pass (the "
	       "queries that use the index and the first scan), then %zu timed\n", nq, nscan, runs);
	fflush(stdout);
	int warmed_scan = 0;
	for (long p = -1; p < (long)runs; p++) {
		double ps = now_s();
		for (size_t i = 0; i < nq; i++) {
			if (p < 0 && plan[i] == PLAN_SCAN && warmed_scan++)
				continue;
			const char *why = NULL;
			double t = now_s();
			long long total = run_query(r, qs.v[i], strlen(qs.v[i]), &why);
			t = now_s() - t;
			if (total == -1)
				goto done;
			if (got[i] == LLONG_MIN) {
				got[i] = total;
				if (total == -2) {
					unsupported++;
					report("query %zu not translated (%s): %s", i + 1, why, qs.v[i]);
				}
			} else if (total != got[i]) {
				report("query %zu: total %lld, then %lld", i + 1, got[i], total);
				goto done;
			}
			if (p >= 0)
				lat[(size_t)p * nq + i] = t;
		}
		if (p >= 0)
			pass[p] = now_s() - ps;
		printf("fts5: %s pass %.1f s\n", p < 0 ? "warm-up" : "timed", now_s() - ps);
		fflush(stdout);
	}

	/* 4. Figures. */
	for (size_t i = 0; i < nq; i++) {
		for (size_t p = 0; p < runs; p++)
			tmp[p] = lat[p * nq + i];
		med[i] = median_of(tmp, runs);
		cls[i] = classify(qs.v[i]);
	}
	/* Latency percentiles over the queries that ran (a query this peer
	 * does not translate costs only its parse). */
	size_t nrun = 0;
	for (size_t i = 0; i < nq; i++)
		if (plan[i] >= 0)
			tmp[nrun++] = med[i];
	qsort(tmp, nrun, sizeof *tmp, cmp_d);
	double p50 = pct(tmp, nrun, 0.5), p99 = pct(tmp, nrun, 0.99),
	       pmax = nrun ? tmp[nrun - 1] : 0;
	double file_s = median_of(pass, runs);
	int agree = 0;
	for (size_t i = 0; i < nq; i++)
		agree += got[i] >= 0 && got[i] == expected[i];

	FILE *hf = fopen(hitspath, "w");
	if (!hf) {
		report("%s: %s", hitspath, strerror(errno));
		goto done;
	}
	for (size_t i = 0; i < nq; i++)
		fprintf(hf, "%s\t%lld\t%lld\n", qs.v[i], expected[i], got[i] >= 0 ? got[i] : -1);
	if (fclose(hf)) {
		report("%s: write error", hitspath);
		goto done;
	}
	if (sqlpath) {
		if (!(sqlf = fopen(sqlpath, "w"))) {
			report("%s: %s", sqlpath, strerror(errno));
			goto done;
		}
		for (size_t i = 0; i < nq; i++) {
			qnode *root = parse_query(r->parser, qs.v[i], strlen(qs.v[i]));
			int ok = root && !translate(&r->q, root);
			write_sql_line(sqlf, qs.v[i], &r->q, ok, root ? "translation failed" : r->parser->err);
		}
		int bad = fclose(sqlf);
		sqlf = NULL;
		if (bad) {
			report("%s: write error", sqlpath);
			goto done;
		}
	}
	FILE *ef = fopen(envpath, "w");
	if (!ef) {
		report("%s: %s", envpath, strerror(errno));
		goto done;
	}
	fprintf(ef, "fts5_sqlite_version=%s\n", sqlite3_libversion());
	fprintf(ef, "fts5_build_s=%.2f\n", bs.seconds);
	fprintf(ef, "fts5_index_bytes=%lld\n", bs.file_bytes);
	fprintf(ef, "fts5_p50_us=%.1f\n", p50 * 1e6);
	fprintf(ef, "fts5_p99_us=%.1f\n", p99 * 1e6);
	fprintf(ef, "fts5_max_us=%.1f\n", pmax * 1e6);
	fprintf(ef, "fts5_file_ms=%.1f\n", file_s * 1e3);
	fprintf(ef, "fts5_qps1=%.0f\n", (double)nq / file_s);
	fprintf(ef, "fts5_agree=%d\n", agree);
	fprintf(ef, "fts5_nqueries=%zu\n", nq);
	if (fclose(ef)) {
		report("%s: write error", envpath);
		goto done;
	}

	printf("fts5: %zu queries x %zu timed run%s after an untimed warm-up, in-process, one thread; "
	       "each query timed whole: parse, translate, top 10 (by bm25 when there is a MATCH) "
	       "and exact count; %zu statement shapes, prepared once\n", nq, runs, runs == 1 ? "" : "s",
	       r->cache.n);
	printf("fts5: whole file %.1f ms (median of runs), %.0f queries/s on one thread\n",
	       file_s * 1e3, (double)nq / file_s);
	printf("fts5: per query (median of runs): p50 %.1f us  p99 %.1f us  max %.1f us\n",
	       p50 * 1e6, p99 * 1e6, pmax * 1e6);
	printf("fts5: totals equal to %s: %d / %zu (%zu not translated)%s\n", xpath, agree, nq,
	       unsupported, max_docs ? " [QUICK: a partial corpus, totals not comparable]" : "");
	printf("  %-14s %5s %10s %10s %10s %7s\n", "class", "n", "p50 us", "p99 us", "max us", "agree");
	for (int c = 0; c < NCLASS; c++)
		print_row(class_names[c], cls, c, med, got, expected, nq, tmp);
	for (int pl = 0; pl < NPLANS; pl++)
		print_row(plan_names[pl], plan, pl, med, got, expected, nq, tmp);
	if (r->sink == -1.0)
		printf("\n");   /* keeps the top-10 reads observable */
	status = 0;
	goto done;

bad_usage:
	usage();
	free(inputs);
	return 2;

done:
	if (sqlf)
		fclose(sqlf);
	if (r) {
		cache_free(&r->cache);
		sb_free(&r->q.where);
		sb_free(&r->q.vals);
		free(r->parser);
		free(r);
	}
	if (db && sqlite3_close(db) != SQLITE_OK) {
		report("close: %s", sqlite3_errmsg(db));
		status = 1;
	}
	free(expected);
	free(got);
	free(lat);
	free(med);
	free(tmp);
	free(pass);
	free(cls);
	free(plan);
	lines_free(&qs);
	doclist_free(&docs);
	free(inputs);
	return status;
}
