/* sqlload.c — the SphinxQL client of the Sphinx peer (bench/peers/sphinx/run.sh).
 *
 *   sqlload [common options] ping
 *       connects and runs SHOW STATUS; exit 0 when searchd answers.
 *   sqlload [common options] seq [-r R] [-w W] > SEQ.tsv
 *       one connection, the queries one after another: W warm passes, then R
 *       timed passes; per query a line "index TAB median_us TAB total TAB
 *       total_found TAB query" (total and total_found from SHOW META after
 *       the query, untimed; -1 -1 for a query without translation), and on
 *       stderr "p50_us=.. p99_us=.. max_us=.. mismatch=N" over the per-query
 *       medians (nearest rank).  mismatch counts queries whose total and
 *       total_found differ although total_found <= max_matches.
 *   sqlload [common options] load -c C -d D
 *       C connections, each its own thread with the blocking client API,
 *       closed loop for D seconds, the queries cycled from a different offset
 *       on each; prints "conns=C requests=N errors=E elapsed_s=S qps=Q
 *       p50_us=.. p99_us=.. max_us=.." (per-request latency, microseconds).
 *
 * common options: -H HOST (127.0.0.1) -P PORT (9306) -i INDEX (idx)
 *   -f FILE (query TAB translation lines, from sphinxprep.py queries)
 *   -m MAX_MATCHES (10000) -k RANKER (bm25)
 *
 * Each request is  SELECT id FROM idx WHERE MATCH('...') LIMIT 10
 * OPTION ranker=R, max_matches=M  — only that statement is timed.
 *
 * Build: cc -O2 -o sqlload sqlload.c $(pkg-config --cflags --libs libmariadb) -lpthread
 */
#define _GNU_SOURCE
#include <errno.h>
#include <mysql.h>
#include <errmsg.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *host = "127.0.0.1";
static unsigned port = 9306;
static const char *index_name = "idx";
static const char *ranker = "bm25";
static int max_matches = 10000;

static char **sql;        /* per query line: the SELECT, or NULL if untranslated */
static char **orig;       /* per query line: the original query */
static int nq;

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "sqlload: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("%s", "out of memory");
	return p;
}

/* The SELECT for one translated query; ' and \ are escaped for the SQL
 * string literal (the translation itself holds no backslashes). */
static char *make_sql(const char *match)
{
	size_t n = strlen(match);
	char *esc = xmalloc(2 * n + 1), *o = esc;
	for (const char *p = match; *p; p++) {
		if (*p == '\'' || *p == '\\')
			*o++ = '\\';
		*o++ = *p;
	}
	*o = 0;
	size_t cap = strlen(esc) + strlen(index_name) + strlen(ranker) + 160;
	char *s = xmalloc(cap);
	snprintf(s, cap, "SELECT id FROM %s WHERE MATCH('%s') LIMIT 10 OPTION ranker=%s, max_matches=%d",
	         index_name, esc, ranker, max_matches);
	free(esc);
	return s;
}

static void load_queries(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		die("cannot open %s", path);
	int cap = 0;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	while ((len = getline(&line, &lcap, f)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (nq == cap) {
			cap = cap ? cap * 2 : 1024;
			sql = realloc(sql, cap * sizeof *sql);
			orig = realloc(orig, cap * sizeof *orig);
			if (!sql || !orig)
				die("%s", "out of memory");
		}
		char *tab = strchr(line, '\t');
		const char *tr = tab ? tab + 1 : line;
		if (tab)
			*tab = 0;
		orig[nq] = strdup(line);
		sql[nq] = *tr ? make_sql(tr) : NULL;
		nq++;
	}
	free(line);
	fclose(f);
	if (nq == 0)
		die("no queries in %s", path);
}

static MYSQL *connect_sphinx(char *err, size_t errlen)
{
	MYSQL *m = mysql_init(NULL);
	if (!m) {
		snprintf(err, errlen, "mysql_init failed");
		return NULL;
	}
	unsigned timeout = 5;
	mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8");
	if (!mysql_real_connect(m, host, "", "", NULL, port, NULL, 0)) {
		snprintf(err, errlen, "%s", mysql_error(m));
		mysql_close(m);
		return NULL;
	}
	return m;
}

/* Runs one statement and reads (and drops) its rows; 0 or -1. */
static int run(MYSQL *m, const char *q)
{
	if (mysql_real_query(m, q, strlen(q)) != 0)
		return -1;
	MYSQL_RES *r = mysql_store_result(m);
	if (r)
		mysql_free_result(r);
	else if (mysql_field_count(m) != 0)
		return -1;
	return 0;
}

/* total and total_found of the last query from SHOW META. */
static int show_meta(MYSQL *m, long *total, long *found)
{
	*total = *found = -1;
	if (mysql_query(m, "SHOW META") != 0)
		return -1;
	MYSQL_RES *r = mysql_store_result(m);
	if (!r)
		return -1;
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(r))) {
		if (!row[0] || !row[1])
			continue;
		if (strcmp(row[0], "total") == 0)
			*total = atol(row[1]);
		else if (strcmp(row[0], "total_found") == 0)
			*found = atol(row[1]);
	}
	mysql_free_result(r);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* nearest rank: the value at rank ceil(pct% of n), at least 1 (sorted v) */
static uint64_t pctl(const uint64_t *v, size_t n, double pct)
{
	if (!n)
		return 0;
	double r = pct / 100.0 * (double)n;
	size_t rank = (size_t)r;
	if ((double)rank < r)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static int cmd_ping(void)
{
	char err[512];
	MYSQL *m = connect_sphinx(err, sizeof err);
	if (!m) {
		fprintf(stderr, "sqlload: ping: %s\n", err);
		return 1;
	}
	int rc = run(m, "SHOW STATUS");
	if (rc)
		fprintf(stderr, "sqlload: ping: %s\n", mysql_error(m));
	mysql_close(m);
	return rc ? 1 : 0;
}

static int cmd_seq(int passes, int warm)
{
	char err[512];
	MYSQL *m = connect_sphinx(err, sizeof err);
	if (!m)
		die("connect: %s", err);
	uint64_t *lat = xmalloc((size_t)nq * passes * sizeof *lat);
	long *total = xmalloc(nq * sizeof *total), *found = xmalloc(nq * sizeof *found);
	int errors = 0, mismatch = 0;
	for (int p = -warm; p < passes; p++)
		for (int i = 0; i < nq; i++) {
			if (!sql[i])
				continue;
			uint64_t t0 = now_us();
			int rc = run(m, sql[i]);
			uint64_t t1 = now_us();
			if (rc) {
				if (p == -warm)
					fprintf(stderr, "sqlload: query %d (%s): %s\n", i + 1, orig[i], mysql_error(m));
				errors++;
				if (mysql_errno(m) == CR_SERVER_GONE_ERROR || mysql_errno(m) == CR_SERVER_LOST) {
					mysql_close(m);
					if (!(m = connect_sphinx(err, sizeof err)))
						die("reconnect: %s", err);
				}
			}
			if (p >= 0)
				lat[(size_t)i * passes + p] = t1 - t0;
			if (p == 0) {
				if (rc || show_meta(m, &total[i], &found[i]) != 0)
					total[i] = found[i] = -1;
			}
		}
	uint64_t *med = xmalloc(nq * sizeof *med);
	size_t nmed = 0;
	for (int i = 0; i < nq; i++) {
		if (!sql[i]) {
			printf("%d\t-1\t-1\t-1\t%s\n", i, orig[i]);
			continue;
		}
		uint64_t *v = lat + (size_t)i * passes;
		qsort(v, passes, sizeof *v, cmp_u64);
		uint64_t mv = passes % 2 ? v[passes / 2] : (v[passes / 2 - 1] + v[passes / 2]) / 2;
		med[nmed++] = mv;
		if (found[i] >= 0 && found[i] <= max_matches && total[i] != found[i])
			mismatch++;
		printf("%d\t%llu\t%ld\t%ld\t%s\n", i, (unsigned long long)mv, total[i], found[i], orig[i]);
	}
	qsort(med, nmed, sizeof *med, cmp_u64);
	fprintf(stderr, "p50_us=%llu p99_us=%llu max_us=%llu timed=%zu errors=%d mismatch=%d\n",
	        (unsigned long long)pctl(med, nmed, 50), (unsigned long long)pctl(med, nmed, 99),
	        (unsigned long long)(nmed ? med[nmed - 1] : 0), nmed, errors, mismatch);
	mysql_close(m);
	return 0;
}

/* ------------------------------------------------------------- load mode */

typedef struct {
	int id, conns;
	uint64_t deadline;
	uint64_t *lat;
	size_t n, cap;
	long errors;
	uint64_t end;
} worker;

static pthread_barrier_t start_barrier;
static uint64_t start_us, duration_us;
static int *live;          /* indices of translated queries */
static int nlive;

static void *work(void *arg)
{
	worker *w = arg;
	char err[512];
	MYSQL *m = connect_sphinx(err, sizeof err);
	if (!m) {
		fprintf(stderr, "sqlload: connection %d: %s\n", w->id, err);
		w->errors++;
	}
	pthread_barrier_wait(&start_barrier);
	uint64_t deadline = start_us + duration_us;
	int k = (int)((long)nlive * w->id / w->conns);
	while (now_us() < deadline) {
		if (!m) {
			if (!(m = connect_sphinx(err, sizeof err))) {
				w->errors++;
				usleep(10000);
				continue;
			}
		}
		const char *q = sql[live[k]];
		k = (k + 1) % nlive;
		uint64_t t0 = now_us();
		int rc = run(m, q);
		uint64_t t1 = now_us();
		if (rc) {
			if (w->errors < 3)
				fprintf(stderr, "sqlload: connection %d: %s\n", w->id, mysql_error(m));
			w->errors++;
			unsigned e = mysql_errno(m);
			if (e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST) {
				mysql_close(m);
				m = NULL;
			}
			continue;
		}
		if (w->n == w->cap) {
			w->cap = w->cap ? w->cap * 2 : 4096;
			w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
			if (!w->lat)
				die("%s", "out of memory");
		}
		w->lat[w->n++] = t1 - t0;
	}
	w->end = now_us();
	if (m)
		mysql_close(m);
	return NULL;
}

static int cmd_load(int conns, double seconds)
{
	live = xmalloc(nq * sizeof *live);
	for (int i = 0; i < nq; i++)
		if (sql[i])
			live[nlive++] = i;
	if (!nlive)
		die("%s", "no translated query");
	worker *w = calloc(conns, sizeof *w);
	pthread_t *t = xmalloc(conns * sizeof *t);
	if (!w)
		die("%s", "out of memory");
	pthread_barrier_init(&start_barrier, NULL, conns + 1);
	duration_us = (uint64_t)(seconds * 1e6);
	for (int i = 0; i < conns; i++) {
		w[i].id = i;
		w[i].conns = conns;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, 256 * 1024);
		if (pthread_create(&t[i], &a, work, &w[i]) != 0)
			die("%s", "pthread_create failed");
		pthread_attr_destroy(&a);
	}
	start_us = now_us();   /* written before the barrier, read after it */
	pthread_barrier_wait(&start_barrier);
	uint64_t end = start_us;
	size_t total = 0;
	long errors = 0;
	for (int i = 0; i < conns; i++) {
		pthread_join(t[i], NULL);
		total += w[i].n;
		errors += w[i].errors;
		if (w[i].end > end)
			end = w[i].end;
	}
	uint64_t *all = xmalloc(total * sizeof *all);
	size_t k = 0;
	for (int i = 0; i < conns; i++) {
		memcpy(all + k, w[i].lat, w[i].n * sizeof *all);
		k += w[i].n;
		free(w[i].lat);
	}
	qsort(all, total, sizeof *all, cmp_u64);
	double el = (double)(end - start_us) / 1e6;
	printf("conns=%d requests=%zu errors=%ld elapsed_s=%.3f qps=%.1f p50_us=%llu p99_us=%llu max_us=%llu\n",
	       conns, total, errors, el, el > 0 ? (double)total / el : 0.0,
	       (unsigned long long)pctl(all, total, 50), (unsigned long long)pctl(all, total, 99),
	       (unsigned long long)(total ? all[total - 1] : 0));
	free(all);
	free(w);
	free(t);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: sqlload [-H HOST] [-P PORT] [-i INDEX] [-f FILE] [-m MAX_MATCHES] [-k RANKER] ping\n"
	        "       sqlload ... -f FILE seq [-r PASSES] [-w WARM]\n"
	        "       sqlload ... -f FILE load -c CONNS -d SECONDS\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *file = NULL;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i += 2) {
		if (i + 1 >= argc)
			usage();
		const char *v = argv[i + 1];
		switch (argv[i][1]) {
		case 'H': host = v; break;
		case 'P': port = (unsigned)atoi(v); break;
		case 'i': index_name = v; break;
		case 'f': file = v; break;
		case 'm': max_matches = atoi(v); break;
		case 'k': ranker = v; break;
		default: usage();
		}
	}
	if (i >= argc)
		usage();
	const char *cmd = argv[i++];
	if (mysql_library_init(0, NULL, NULL))
		die("%s", "mysql_library_init failed");
	if (strcmp(cmd, "ping") == 0)
		return cmd_ping();
	if (!file)
		usage();
	load_queries(file);
	int passes = 3, warm = 1, conns = 1;
	double seconds = 5;
	for (; i < argc; i += 2) {
		if (i + 1 >= argc || argv[i][0] != '-')
			usage();
		const char *v = argv[i + 1];
		switch (argv[i][1]) {
		case 'r': passes = atoi(v); break;
		case 'w': warm = atoi(v); break;
		case 'c': conns = atoi(v); break;
		case 'd': seconds = atof(v); break;
		default: usage();
		}
	}
	if (passes < 1 || warm < 0 || conns < 1 || seconds <= 0)
		usage();
	int rc;
	if (strcmp(cmd, "seq") == 0)
		rc = cmd_seq(passes, warm);
	else if (strcmp(cmd, "load") == 0)
		rc = cmd_load(conns, seconds);
	else
		usage();
	mysql_library_end();
	return rc;
}
