/* benchmark_main.c — sousuo-benchmark: load on sousuo-server over the line
 * protocol, in the manner of redis-benchmark and memtier.  This file holds
 * the options (one table: flag, bounds, default, help), builds the request
 * lines from a query file, and prints the figures; the connections, threads
 * and timing live in bench_load.c.
 *
 * Each request line is WORD [PREFIX] [QUERY]: WORD is --command (SEARCH with
 * -f, PING without), PREFIX --prefix, QUERY the next line of -f (empty lines
 * skipped, the file cycled, connection i starting at line i * lines / conns).
 * Exit status: 0 when every reply parsed and none was ERR (or
 * --allow-errors), 1 otherwise or when nothing was recorded, 2 for a usage
 * error or when the server cannot be reached. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_hist.h"
#include "bench/bench_load.h"
#include "protocol/protocol.h"

/* ---- options -------------------------------------------------------------------- */

/* The most a number option may be: beyond any sensible run, within a double. */
#define MAX_SECONDS  1e6
#define MAX_REQUESTS 1e15
#define MAX_RATE     1e9

typedef struct {
	const char *host;         /* -h: name, address or Unix socket path */
	double port;              /* -p */
	double conns;             /* -c */
	double pipeline;          /* -P */
	double threads;           /* --threads */
	double duration;          /* -d: seconds measured */
	double total;             /* -n: replies to record; 0 none */
	double warmup;            /* --warmup: seconds not recorded */
	double rate;              /* -r: open loop req/s in all; 0 closed loop */
	double timeout;           /* --timeout: seconds without progress */
	const char *file;         /* -f: queries */
	const char *command;      /* --command: the word; NULL: SEARCH or PING */
	const char *prefix;       /* --prefix: after the word */
	double csv, json, allow_errors;   /* flags: 0 or 1 */
	double given_duration;    /* set when -d was on the command line */
} options;

typedef enum { OPT_STR, OPT_INT, OPT_NUM, OPT_FLAG } opt_kind;

typedef struct {
	const char *name;         /* long flag without "--" */
	char short_name;          /* or 0 */
	opt_kind kind;
	size_t off;               /* field in options */
	double min, max, def;     /* OPT_INT, OPT_NUM: bounds (inclusive) and default */
	const char *arg;          /* placeholder in the usage text */
	const char *help;
} opt_def;

#define F(field) offsetof(options, field)

static const opt_def defs[] = {
	{ "host", 'h', OPT_STR, F(host), 0, 0, 0, "HOST",
	  "server address, or a Unix socket path starting with '/' (default 127.0.0.1)" },
	{ "port", 'p', OPT_INT, F(port), 1, 65535, 7878, "N", "TCP port" },
	{ "conns", 'c', OPT_INT, F(conns), 1, BENCH_MAX_CONNS, 16, "N", "connections" },
	{ "pipeline", 'P', OPT_INT, F(pipeline), 1, BENCH_MAX_PIPELINE, 1, "N",
	  "requests in flight per connection" },
	{ "threads", 0, OPT_INT, F(threads), 1, BENCH_MAX_THREADS, 1, "N",
	  "client threads; connections are dealt round-robin" },
	{ "duration", 'd', OPT_NUM, F(duration), 0.001, MAX_SECONDS, 10, "SECONDS",
	  "time measured, after the warmup" },
	{ "requests", 'n', OPT_INT, F(total), 1, MAX_REQUESTS, 0, "N",
	  "stop after N replies (no time limit unless -d is given too)" },
	{ "warmup", 0, OPT_NUM, F(warmup), 0, MAX_SECONDS, 0, "SECONDS",
	  "first run this long without recording" },
	{ "rate", 'r', OPT_NUM, F(rate), 0, MAX_RATE, 0, "RATE",
	  "open loop: requests per second over all connections, latency from the "
	  "intended send time (0: closed loop)" },
	{ "file", 'f', OPT_STR, F(file), 0, 0, 0, "FILE", "queries, one a line, cycled" },
	{ "command", 0, OPT_STR, F(command), 0, 0, 0, "WORD",
	  "the request's first word (default SEARCH with -f, else PING)" },
	{ "prefix", 0, OPT_STR, F(prefix), 0, 0, 0, "STR",
	  "text after the command word, e.g. 'snippet=off'" },
	{ "timeout", 0, OPT_NUM, F(timeout), 0.001, MAX_SECONDS, 10, "SECONDS",
	  "a connection waiting this long for any reply byte fails" },
	{ "csv", 0, OPT_FLAG, F(csv), 0, 1, 0, NULL, "print a CSV header and one line" },
	{ "json", 0, OPT_FLAG, F(json), 0, 1, 0, NULL, "print one JSON object" },
	{ "allow-errors", 0, OPT_FLAG, F(allow_errors), 0, 1, 0, NULL,
	  "ERR replies do not make the exit status 1" },
};
#define NDEFS (sizeof defs / sizeof defs[0])

static void usage(FILE *f)
{
	fprintf(f, "usage: sousuo-benchmark [options]\n");
	for (size_t i = 0; i < NDEFS; i++) {
		const opt_def *d = &defs[i];
		char flag[48];
		snprintf(flag, sizeof flag, "%c%c%s --%s %s", d->short_name ? '-' : ' ',
		         d->short_name ? d->short_name : ' ', d->short_name ? "," : " ", d->name,
		         d->arg ? d->arg : "");
		fprintf(f, "  %-28s %s", flag, d->help);
		if (d->kind == OPT_INT && d->def >= d->min)
			fprintf(f, " (%.0f..%.0f, default %.0f)", d->min, d->max, d->def);
		else if (d->kind == OPT_INT)
			fprintf(f, " (%.0f..%.0f)", d->min, d->max);
		else if (d->kind == OPT_NUM)
			fprintf(f, " (default %g)", d->def);
		fputc('\n', f);
	}
	fprintf(f, "      --help                   this text\n"
	           "A request line is WORD [PREFIX] [QUERY].  Exit status: 0 all replies OK,\n"
	           "1 ERR replies, lost connections or nothing recorded, 2 usage or connect error.\n");
}

static const opt_def *find_def(const char *a, size_t *used)
{
	if (a[0] == '-' && a[1] && a[1] != '-' && !a[2]) {
		for (size_t i = 0; i < NDEFS; i++)
			if (defs[i].short_name == a[1]) {
				*used = 2;
				return &defs[i];
			}
		return NULL;
	}
	if (strncmp(a, "--", 2))
		return NULL;
	size_t nl = strcspn(a + 2, "=");
	for (size_t i = 0; i < NDEFS; i++)
		if (strlen(defs[i].name) == nl && !strncmp(defs[i].name, a + 2, nl)) {
			*used = nl + 2;
			return &defs[i];
		}
	return NULL;
}

/* 0; 1 for --help; -1 with a message. */
static int parse_options(options *o, int argc, char **argv, char *err, size_t errlen)
{
	memset(o, 0, sizeof *o);
	o->host = "127.0.0.1";
	for (size_t i = 0; i < NDEFS; i++)
		if (defs[i].kind == OPT_INT || defs[i].kind == OPT_NUM)
			memcpy((char *)o + defs[i].off, &defs[i].def, sizeof(double));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help"))
			return 1;
		size_t used;
		const opt_def *d = find_def(a, &used);
		if (!d) {
			snprintf(err, errlen, "unknown option %s (try --help)", a);
			return -1;
		}
		char *field = (char *)o + d->off;
		if (d->kind == OPT_FLAG) {
			if (a[used]) {
				snprintf(err, errlen, "--%s takes no value", d->name);
				return -1;
			}
			double one = 1;
			memcpy(field, &one, sizeof one);
			continue;
		}
		const char *v;
		if (a[used] == '=')
			v = a + used + 1;
		else if (i + 1 < argc)
			v = argv[++i];
		else {
			snprintf(err, errlen, "%s needs a value", a);
			return -1;
		}
		if (d->kind == OPT_STR) {
			memcpy(field, &v, sizeof v);
			continue;
		}
		char *end;
		errno = 0;
		double x = strtod(v, &end);
		if (!*v || *end || errno || !isfinite(x) || x < d->min || x > d->max ||
		    (d->kind == OPT_INT && x != floor(x))) {
			snprintf(err, errlen, "--%s: \"%s\" is not %s in %g..%g", d->name, v,
			         d->kind == OPT_INT ? "a whole number" : "a number", d->min, d->max);
			return -1;
		}
		memcpy(field, &x, sizeof x);
		if (d->off == F(duration))
			o->given_duration = 1;
	}
	if (o->csv && o->json) {
		snprintf(err, errlen, "--csv and --json: choose one");
		return -1;
	}
	if (!*o->host) {
		snprintf(err, errlen, "-h: empty host");
		return -1;
	}
	return 0;
}

/* ---- request lines ------------------------------------------------------------- */

static bool has_newline(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

/* Appends one line WORD [PREFIX] [QUERY]"\n"; 0, or -1 out of memory. */
static int add_request(bench_requests *rq, size_t *cap, size_t *ncap, const options *o,
                       const char *word, const char *q, size_t qlen)
{
	size_t wl = strlen(word), pl = o->prefix ? strlen(o->prefix) : 0;
	size_t len = wl + (pl ? 1 + pl : 0) + (qlen ? 1 + qlen : 0) + 1;
	size_t used = rq->n ? rq->off[rq->n - 1] + rq->len[rq->n - 1] : 0;
	if (used + len > *cap) {
		size_t c = *cap ? *cap : 1 << 16;
		while (c < used + len)
			c *= 2;
		char *p = realloc(rq->buf, c);
		if (!p)
			return -1;
		rq->buf = p;
		*cap = c;
	}
	if (rq->n == *ncap) {
		size_t c = *ncap ? *ncap * 2 : 1024;
		size_t *off = realloc(rq->off, c * sizeof *off);
		if (off)
			rq->off = off;
		uint32_t *ln = realloc(rq->len, c * sizeof *ln);
		if (ln)
			rq->len = ln;
		if (!off || !ln)
			return -1;
		*ncap = c;
	}
	char *p = rq->buf + used;
	memcpy(p, word, wl);
	p += wl;
	if (pl) {
		*p++ = ' ';
		memcpy(p, o->prefix, pl);
		p += pl;
	}
	if (qlen) {
		*p++ = ' ';
		memcpy(p, q, qlen);
		p += qlen;
	}
	*p = '\n';
	rq->off[rq->n] = used;
	rq->len[rq->n] = (uint32_t)len;
	rq->n++;
	if (len > rq->max_len)
		rq->max_len = len;
	return 0;
}

/* Builds every request line once: 0, or -1 with a message. */
static int build_requests(const options *o, bench_requests *rq, char *err, size_t errlen)
{
	memset(rq, 0, sizeof *rq);
	const char *word = o->command ? o->command : o->file ? "SEARCH" : "PING";
	if (!*word || strchr(word, ' ') || has_newline(word) || (o->prefix && has_newline(o->prefix))) {
		snprintf(err, errlen, "--command must be one word, --prefix one line");
		return -1;
	}
	size_t cap = 0, ncap = 0;
	if (!o->file) {
		if (add_request(rq, &cap, &ncap, o, word, "", 0))
			goto nomem;
		return 0;
	}
	FILE *f = fopen(o->file, "r");
	if (!f) {
		snprintf(err, errlen, "%s: %s", o->file, strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t lcap = 0, lineno = 0;
	ssize_t n;
	while ((n = getline(&line, &lcap, f)) >= 0) {
		lineno++;
		size_t len = (size_t)n;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (!len)
			continue;
		if (add_request(rq, &cap, &ncap, o, word, line, len)) {
			free(line);
			fclose(f);
			goto nomem;
		}
		if (rq->len[rq->n - 1] > PROTO_MAX_LINE) {
			snprintf(err, errlen, "%s:%zu: the request would be over %d bytes (ERR TOOLONG)",
			         o->file, lineno, PROTO_MAX_LINE);
			free(line);
			fclose(f);
			return -1;
		}
	}
	free(line);
	fclose(f);
	if (!rq->n) {
		snprintf(err, errlen, "%s: no queries (every line is empty)", o->file);
		return -1;
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory for the request lines");
	return -1;
}

static void free_requests(bench_requests *rq)
{
	free(rq->buf);
	free(rq->off);
	free(rq->len);
}

/* ---- output ---------------------------------------------------------------------- */

/* A latency with its unit: "612.3 us", "1.05 ms", "2.31 s". */
static const char *dur(char *buf, size_t cap, uint64_t ns)
{
	if (ns < 1000000)
		snprintf(buf, cap, "%.1f us", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, cap, "%.2f ms", (double)ns / 1e6);
	else
		snprintf(buf, cap, "%.2f s", (double)ns / 1e9);
	return buf;
}

typedef struct {
	double qps, p50, p90, p99, p999, max, mean;   /* latencies in us */
} figures;

static figures compute(const bench_load_result *res)
{
	const bench_hist *h = res->hist;
	figures f = {
		.qps = res->seconds > 0 ? (double)res->requests / res->seconds : 0,
		.p50 = (double)bench_hist_percentile(h, 50) / 1e3,
		.p90 = (double)bench_hist_percentile(h, 90) / 1e3,
		.p99 = (double)bench_hist_percentile(h, 99) / 1e3,
		.p999 = (double)bench_hist_percentile(h, 99.9) / 1e3,
		.max = (double)h->max_ns / 1e3,
		.mean = bench_hist_mean(h) / 1e3,
	};
	return f;
}

static void print_human(const options *o, const bench_load_cfg *cfg, const bench_load_result *res)
{
	const bench_hist *h = res->hist;
	figures f = compute(res);
	char a[32], b[32], c[32], d[32], e[32], g[32];
	if (o->host[0] == '/')
		printf("%s", o->host);
	else
		printf("%s:%.0f", o->host, o->port);
	printf(", %u connections, pipeline %u, %u thread%s, ", cfg->conns, cfg->pipeline,
	       cfg->threads, cfg->threads == 1 ? "" : "s");
	if (cfg->rate > 0)
		printf("open loop at %.0f req/s\n", cfg->rate);
	else
		printf("closed loop\n");
	const bench_requests *rq = cfg->req;
	printf("request    %.*s%s", (int)(rq->len[0] - 1), rq->buf + rq->off[0],
	       rq->n > 1 ? " ..." : "");
	if (o->file)
		printf(" (%zu lines of %s)", rq->n, o->file);
	printf("\nrequests   %llu in %.2f s%s: %.1f req/s\n", (unsigned long long)res->requests,
	       res->seconds, res->interrupted ? " (interrupted)" : "", f.qps);
	printf("errors     %llu", (unsigned long long)res->errors);
	for (uint32_t i = 0; i < res->nerr; i++)
		printf("%s%s %llu", i ? ", " : " (", res->err[i].word, (unsigned long long)res->err[i].n);
	printf("%s\n", res->nerr ? ")" : "");
	printf("failures   %llu", (unsigned long long)res->failures);
	if (res->failures)
		printf(" (connections lost, %llu requests in flight on them)",
		       (unsigned long long)res->lost);
	printf("\n");
	if (h->count)
		printf("latency    p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s\n",
		       dur(a, sizeof a, bench_hist_percentile(h, 50)),
		       dur(b, sizeof b, bench_hist_percentile(h, 90)),
		       dur(c, sizeof c, bench_hist_percentile(h, 99)),
		       dur(d, sizeof d, bench_hist_percentile(h, 99.9)),
		       dur(e, sizeof e, h->max_ns), dur(g, sizeof g, (uint64_t)bench_hist_mean(h)));
	if (res->unanswered && res->oldest_wait_ns > h->max_ns)
		printf("unanswered %llu requests in flight at the end, not counted; the oldest "
		       "had waited %s\n", (unsigned long long)res->unanswered,
		       dur(a, sizeof a, res->oldest_wait_ns));
	printf("client CPU %.2f s", res->cpu_seconds);
	if (res->replies)
		printf(" (%.1f us per reply)", res->cpu_seconds * 1e6 / (double)res->replies);
	printf("\n");
}

static void print_csv(const bench_load_cfg *cfg, const bench_load_result *res)
{
	figures f = compute(res);
	printf("conns,pipeline,threads,rate,requests,errors,failures,seconds,qps,"
	       "p50_us,p90_us,p99_us,p999_us,max_us,mean_us\n");
	printf("%u,%u,%u,%.0f,%llu,%llu,%llu,%.3f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f\n",
	       cfg->conns, cfg->pipeline, cfg->threads, cfg->rate,
	       (unsigned long long)res->requests, (unsigned long long)res->errors,
	       (unsigned long long)res->failures, res->seconds, f.qps, f.p50, f.p90, f.p99,
	       f.p999, f.max, f.mean);
}

/* The CSV fields, plus errors_by_code, unanswered, oldest_wait_us and cpu_seconds. */
static void print_json(const bench_load_cfg *cfg, const bench_load_result *res)
{
	figures f = compute(res);
	printf("{\"conns\":%u,\"pipeline\":%u,\"threads\":%u,\"rate\":%.0f,\"requests\":%llu,"
	       "\"errors\":%llu,\"failures\":%llu,\"seconds\":%.3f,\"qps\":%.1f,\"p50_us\":%.1f,"
	       "\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,"
	       "\"errors_by_code\":{",
	       cfg->conns, cfg->pipeline, cfg->threads, cfg->rate,
	       (unsigned long long)res->requests, (unsigned long long)res->errors,
	       (unsigned long long)res->failures, res->seconds, f.qps, f.p50, f.p90, f.p99,
	       f.p999, f.max, f.mean);
	/* code words are capitals and digits (proto_parse_status): no escaping */
	for (uint32_t i = 0; i < res->nerr; i++)
		printf("%s\"%s\":%llu", i ? "," : "", res->err[i].word, (unsigned long long)res->err[i].n);
	printf("},\"unanswered\":%llu,\"oldest_wait_us\":%.1f,\"cpu_seconds\":%.3f}\n",
	       (unsigned long long)res->unanswered, (double)res->oldest_wait_ns / 1e3,
	       res->cpu_seconds);
}

int main(int argc, char **argv)
{
	options o;
	char err[512];
	int rc = parse_options(&o, argc, argv, err, sizeof err);
	if (rc == 1) {
		usage(stdout);
		return 0;
	}
	if (rc) {
		fprintf(stderr, "sousuo-benchmark: %s\n", err);
		return 2;
	}
	bench_requests rq;
	if (build_requests(&o, &rq, err, sizeof err)) {
		fprintf(stderr, "sousuo-benchmark: %s\n", err);
		free_requests(&rq);
		return 2;
	}
	bench_load_cfg cfg = {
		.host = o.host,
		.port = (int)o.port,
		.conns = (uint32_t)o.conns,
		.pipeline = (uint32_t)o.pipeline,
		.threads = (uint32_t)(o.threads < o.conns ? o.threads : o.conns),
		.rate = o.rate,
		.warmup_s = o.warmup,
		/* -n alone runs until its replies are in; -d with it caps the time */
		.duration_s = o.total && !o.given_duration ? 0 : o.duration,
		.total = (uint64_t)o.total,
		.timeout_s = o.timeout,
		.progress = isatty(STDERR_FILENO),
		.req = &rq,
	};
	bench_load_result res;
	if (bench_load_run(&cfg, &res, err, sizeof err)) {
		fprintf(stderr, "sousuo-benchmark: %s\n", err);
		free_requests(&rq);
		return 2;
	}
	for (uint32_t i = 0; i < res.nfail_msg; i++)
		fprintf(stderr, "sousuo-benchmark: %s\n", res.fail_msg[i]);
	if (res.failures > res.nfail_msg)
		fprintf(stderr, "sousuo-benchmark: ... %llu connections lost in all\n",
		        (unsigned long long)res.failures);
	if (o.csv)
		print_csv(&cfg, &res);
	else if (o.json)
		print_json(&cfg, &res);
	else
		print_human(&o, &cfg, &res);
	int status = 0;
	if (res.failures || (res.errors && !o.allow_errors))
		status = 1;
	if (!res.requests) {
		fprintf(stderr, "sousuo-benchmark: no reply recorded\n");
		status = 1;
	}
	bench_load_result_free(&res);
	free_requests(&rq);
	return status;
}
