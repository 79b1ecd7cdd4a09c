/* commands.c — the command table and its handlers (commands.h).  Each
 * handler turns a parsed proto_request into a reply; those that need the
 * index get a reference taken for them (index_holder.h) for the duration of
 * the request, so a RELOAD meanwhile cannot unmap what they read. */
#include "daemon/commands.h"

#include <inttypes.h>
#include <stdarg.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"
#include "indexer/limits.h"
#include "search/engine.h"
#include "search/index.h"
#include "search/query.h"
#include "search/snippet.h"

struct cmd_ctx {
	index_holder *holder;
	server_stats *stats;
	const server_config *cfg;
	engine_ctx *engine;
	index_store_ctx *store;
	snippet_ctx *snip;
	snippet_opts snip_opts;
	proto_buf lines;          /* a reply's lines, written before its status line */
	cmd_session *sess;        /* the session of the request being run */
};

cmd_ctx *cmd_ctx_new(index_holder *holder, server_stats *stats, const server_config *cfg)
{
	cmd_ctx *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->holder = holder;
	c->stats = stats;
	c->cfg = cfg;
	c->engine = engine_ctx_new();
	c->store = index_store_ctx_new();
	c->snip = snippet_ctx_new();
	snippet_opts_default(&c->snip_opts);
	proto_buf_init(&c->lines);
	if (!c->engine || !c->store || !c->snip) {
		cmd_ctx_free(c);
		return NULL;
	}
	return c;
}

void cmd_ctx_free(cmd_ctx *c)
{
	if (!c)
		return;
	engine_ctx_free(c->engine);
	index_store_ctx_free(c->store);
	snippet_ctx_free(c->snip);
	proto_buf_free(&c->lines);
	free(c);
}

/* ---- helpers ---------------------------------------------------------------- */

/* An ERR reply, counted. */
static cmd_after reply_err(cmd_ctx *c, proto_buf *out, proto_errcode code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static cmd_after reply_err(cmd_ctx *c, proto_buf *out, proto_errcode code, const char *fmt, ...)
{
	char msg[PROTO_MAX_MESSAGE + 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	proto_buf_reset(out);
	proto_put_err(out, code, msg);
	stat_add(&c->stats->errors, 1);
	stat_add(&c->stats->errors_by_code[code <= PROTO_E_LAST ? code : PROTO_E_INTERNAL], 1);
	return CMD_KEEP;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_us(void)
{
	return now_ns() / 1000u;
}

/* The engine options every query starts from: defaults plus the time
 * budget. */
static void query_opts(cmd_ctx *c, engine_opts *eo)
{
	engine_opts_default(eo);
	if (c->cfg->query_timeout > 0)
		eo->deadline_ns = now_ns() + (uint64_t)c->cfg->query_timeout * 1000u;
}

/* The reply to a failed engine_search. */
static cmd_after search_failed(cmd_ctx *c, int rc, const char *err, proto_buf *out)
{
	if (rc == ENGINE_ETIME) {
		stat_add(&c->stats->queries_timed_out, 1);
		return reply_err(c, out, PROTO_E_BUSY, "the query ran past its time budget (%lld us)",
		                 c->cfg->query_timeout);
	}
	return reply_err(c, out, PROTO_E_INTERNAL, "%s", err);
}

static void put_date(proto_buf *b, uint32_t d)
{
	if (d) {
		proto_put_uint_pad(b, d / 10000, 4);
		proto_buf_append(b, "-", 1);
		proto_put_uint_pad(b, d / 100 % 100, 2);
		proto_buf_append(b, "-", 1);
		proto_put_uint_pad(b, d % 100, 2);
	}
}

static void put_str(proto_buf *b, const char *s)
{
	proto_put_field(b, s ? s : "", s ? strlen(s) : 0);
}

/* "name TAB value" line of STATS. */
static void stat_line(proto_buf *b, unsigned *n, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void stat_line(proto_buf *b, unsigned *n, const char *name, const char *fmt, ...)
{
	char v[512];
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(v, sizeof v, fmt, ap);
	va_end(ap);
	if (k < 0)
		k = 0;
	proto_put_field(b, name, strlen(name));
	proto_put_tab(b);
	proto_put_field(b, v, (size_t)k < sizeof v ? (size_t)k : sizeof v - 1);
	proto_put_eol(b);
	(*n)++;
}

/* Whether a SEARCH option word name= came before the query: the parser
 * fills defaults, and a query's own sort: must only be overridden by a sort=
 * the client actually gave. */
static bool option_given(const char *line, const char *qstart, const char *name)
{
	size_t nl = strlen(name);
	const char *p = line;
	while (p < qstart) {
		while (p < qstart && (*p == ' ' || *p == '\t'))
			p++;
		const char *w = p;
		while (p < qstart && *p != ' ' && *p != '\t')
			p++;
		if ((size_t)(p - w) > nl && w[nl] == '=' && !strncasecmp(w, name, nl))
			return true;
	}
	return false;
}

/* Parses the request's query; on failure writes ERR QUERY and returns NULL. */
static query *parse_query(cmd_ctx *c, const proto_request *rq, proto_buf *out)
{
	query_error qe;
	query *q = query_parse(rq->query, rq->query_len, &qe);
	if (!q) {
		if (qe.code == QERR_NOMEM)
			reply_err(c, out, PROTO_E_INTERNAL, "out of memory");
		else
			reply_err(c, out, PROTO_E_QUERY, "%s: %s", query_errcode_name(qe.code), qe.msg);
	}
	return q;
}

/* ---- handlers ------------------------------------------------------------------- */

typedef cmd_after (*cmd_fn)(cmd_ctx *c, const sousuo_index *ix, const proto_request *rq,
                            const char *line, proto_buf *out);

static cmd_after do_ping(cmd_ctx *c, const sousuo_index *ix, const proto_request *rq,
                         const char *line, proto_buf *out)
{
	proto_put_ok(out, 0, "PONG");
	return CMD_KEEP;
}

static cmd_after do_quit(cmd_ctx *c, const sousuo_index *ix, const proto_request *rq,
                         const char *line, proto_buf *out)
{
	proto_put_ok(out, 0, "bye");
	return CMD_CLOSE;
}

static cmd_after do_count(cmd_ctx *c, const sousuo_index *ix, const proto_request *rq,
                          const char *line, proto_buf *out)
{
	query *q = parse_query(c, rq, out);
	if (!q)
		return CMD_KEEP;
	engine_opts eo;
	query_opts(c, &eo);
	eo.limit = 1;   /* not 0: engine_search reads its heap's top even when k is 0 */
	eo.exact_total = 1;
	engine_result r;
	char err[256];
	int rc = engine_search(c->engine, ix, q, &eo, &r, err, sizeof err);
	if (rc) {
		query_free(q);
		return search_failed(c, rc, err, out);
	}
	query_free(q);
	proto_put_ok(out, 0, "%" PRIu64, r.total);
	return CMD_KEEP;
}

static cmd_after do_search(cmd_ctx *c, const sousuo_index *ix, const proto_request *rq,
                           const char *line, proto_buf *out)
{
	uint64_t t0 = now_us();
	const proto_search_opts *o = &rq->opt;
	query *q = parse_query(c, rq, out);
	if (!q)
		return CMD_KEEP;
	if (option_given(line, rq->query, "sort"))
		q->sort = o->sort == PROTO_SORT_DATE ? QSORT_DATE : QSORT_RELEVANCE;
	engine_opts eo;
	query_opts(c, &eo);
	eo.limit = o->limit;
	eo.offset = o->offset;
	eo.exact_total = o->total_exact;
	/* limit=0 offset=0 (a count with the SEARCH status line) runs as limit=1
	 * with the hit dropped: engine_search reads its heap's top even when
	 * it keeps no hits, and the heap is not allocated yet */
	bool none = eo.limit == 0 && eo.offset == 0;
	if (none)
		eo.limit = 1;
	engine_result r;
	char err[256];
	int rc = engine_search(c->engine, ix, q, &eo, &r, err, sizeof err);
	if (rc) {
		query_free(q);
		return search_failed(c, rc, err, out);
	}
	if (none)
		r.nhits = 0;
	bool want_meta = false, want_snip = false;
	for (unsigned k = 0; k < o->nfields; k++) {
		if (o->fields[k] == PROTO_F_TITLE || o->fields[k] == PROTO_F_PATH)
			want_meta = true;
		if (o->fields[k] == PROTO_F_SNIPPET && o->snippet)
			want_snip = true;
	}
	proto_buf *b = &c->lines;
	proto_buf_reset(b);
	for (uint32_t i = 0; i < r.nhits; i++) {
		uint32_t doc = r.hits[i].doc;
		const fmt_doc *fd = index_doc(ix, doc);
		const char *snip = NULL;
		index_meta m = { NULL, NULL, NULL };
		if (want_snip) {
			/* the body first: the meta strings live only until the store ctx's next use */
			size_t blen;
			const char *body = index_doc_body(ix, c->store, doc, &blen);
			if (!body) {
				query_free(q);
				return reply_err(c, out, PROTO_E_INTERNAL, "document %u: store corrupt", doc);
			}
			snip = snippet_make(c->snip, q, body, blen, &c->snip_opts);
			if (!snip) {
				query_free(q);
				return reply_err(c, out, PROTO_E_INTERNAL, "out of memory");
			}
		}
		if (want_meta && index_doc_meta(ix, c->store, doc, &m)) {
			query_free(q);
			return reply_err(c, out, PROTO_E_INTERNAL, "document %u: store corrupt", doc);
		}
		for (unsigned k = 0; k < o->nfields; k++) {
			if (k)
				proto_put_tab(b);
			switch (o->fields[k]) {
			case PROTO_F_RANK: proto_put_uint(b, (uint64_t)o->offset + i + 1); break;
			case PROTO_F_ID: proto_put_uint(b, doc); break;
			case PROTO_F_SCORE: proto_put_fixed4(b, r.hits[i].score); break;
			case PROTO_F_TITLE: put_str(b, m.title); break;
			case PROTO_F_PATH: put_str(b, m.path); break;
			case PROTO_F_CATEGORY: {
				size_t cl;
				const char *cat = index_category(ix, fd->category, &cl);
				proto_put_field(b, cat ? cat : "", cat ? cl : 0);
				break;
			}
			case PROTO_F_DATE: put_date(b, fd->date); break;
			case PROTO_F_SNIPPET: put_str(b, snip); break;
			}
		}
		proto_put_eol(b);
	}
	query_free(q);
	if (b->failed)
		return reply_err(c, out, PROTO_E_INTERNAL, "out of memory");
	proto_put_ok(out, r.nhits, "total=%" PRIu64 " exact=%d took_us=%" PRIu64, r.total,
	             r.total_exact ? 1 : 0, now_us() - t0);
	proto_buf_append(out, b->p, b->len);
	return CMD_KEEP;
}

static cmd_after do_get(cmd_ctx *c, const sousuo_index *ix, const proto_request *rq,
                        const char *line, proto_buf *out)
{
	if (rq->id >= index_ndocs(ix))
		return reply_err(c, out, PROTO_E_NOTFOUND, "no document %" PRIu64 " (ids are 0..%u)",
		                 rq->id, index_ndocs(ix) ? index_ndocs(ix) - 1 : 0);
	uint32_t doc = (uint32_t)rq->id;
	const fmt_doc *fd = index_doc(ix, doc);
	index_meta m;
	if (index_doc_meta(ix, c->store, doc, &m))
		return reply_err(c, out, PROTO_E_INTERNAL, "document %u: store corrupt", doc);
	proto_buf_reset(out);
	proto_put_ok(out, 6, "id=%u", doc);
	proto_buf_append(out, "title\t", 6);
	put_str(out, m.title);
	proto_buf_append(out, "\npath\t", 6);
	put_str(out, m.path);
	proto_buf_append(out, "\ncategory\t", 10);
	size_t cl;
	const char *cat = index_category(ix, fd->category, &cl);
	proto_put_field(out, cat ? cat : "", cat ? cl : 0);
	proto_buf_append(out, "\ndate\t", 6);
	put_date(out, fd->date);
	proto_buf_append(out, "\next_id\t", 8);
	put_str(out, m.ext_id);
	/* the meta strings are used up: the body may now reuse the store ctx */
	size_t blen;
	const char *body = index_doc_body(ix, c->store, doc, &blen);
	if (!body)
		return reply_err(c, out, PROTO_E_INTERNAL, "document %u: store corrupt", doc);
	proto_buf_append(out, "\ntext\t", 6);
	proto_put_field(out, body, blen);
	proto_put_eol(out);
	return CMD_KEEP;
}

static cmd_after do_stats(cmd_ctx *c, const sousuo_index *ix, const proto_request *rq,
                          const char *line, proto_buf *out)
{
	server_stats *s = c->stats;
	proto_buf *b = &c->lines;
	proto_buf_reset(b);
	unsigned n = 0;
	time_t now = time(NULL);
	const fmt_header *h = index_header(ix);
	stat_line(b, &n, "pid", "%ld", (long)getpid());
	stat_line(b, &n, "uptime_s", "%lld", (long long)(now - s->started));
	stat_line(b, &n, "threads", "%lld", c->cfg->threads);
	stat_line(b, &n, "connections", "%" PRIu64, stat_get(&s->conns_current));
	stat_line(b, &n, "connections_total", "%" PRIu64, stat_get(&s->conns_total));
	stat_line(b, &n, "connections_rejected", "%" PRIu64, stat_get(&s->conns_rejected));
	stat_line(b, &n, "requests", "%" PRIu64, stat_get(&s->requests));
	stat_line(b, &n, "errors", "%" PRIu64, stat_get(&s->errors));
	for (int e = PROTO_E_UNKNOWN; e <= PROTO_E_LAST; e++) {
		char name[40];
		snprintf(name, sizeof name, "errors_%s", proto_errcode_word((proto_errcode)e));
		stat_line(b, &n, name, "%" PRIu64, stat_get(&s->errors_by_code[e]));
	}
	stat_line(b, &n, "output_paused", "%" PRIu64, stat_get(&s->output_paused));
	stat_line(b, &n, "output_paused_total", "%" PRIu64, stat_get(&s->output_paused_total));
	stat_line(b, &n, "output_pending", "%" PRIu64, stat_get(&s->output_pending));
	stat_line(b, &n, "input_evicted", "%" PRIu64, stat_get(&s->input_evicted));
	stat_line(b, &n, "idle_closed", "%" PRIu64, stat_get(&s->idle_closed));
	stat_line(b, &n, "send_timeout_closed", "%" PRIu64, stat_get(&s->send_closed));
	stat_line(b, &n, "queries_timed_out", "%" PRIu64, stat_get(&s->queries_timed_out));
	stat_line(b, &n, "slow_requests", "%" PRIu64, stat_get(&s->slow_requests));
	stat_line(b, &n, "auth_failures", "%" PRIu64, stat_get(&s->auth_failures));
	stat_line(b, &n, "reloads", "%" PRIu64, stat_get(&s->reloads));
	stat_line(b, &n, "reload_failures", "%" PRIu64, stat_get(&s->reload_failures));
	stat_line(b, &n, "index_file", "%s", index_holder_path(c->holder));
	stat_line(b, &n, "index_version", "%" PRIu64, index_holder_generation(c->holder));
	stat_line(b, &n, "index_bytes", "%" PRIu64, (uint64_t)h->file_bytes);
	stat_line(b, &n, "index_created", "%" PRIu64, (uint64_t)h->created);
	stat_line(b, &n, "documents", "%u", index_ndocs(ix));
	stat_line(b, &n, "terms", "%" PRIu64, (uint64_t)h->nterms);
	if (b->failed)
		return reply_err(c, out, PROTO_E_INTERNAL, "out of memory");
	proto_put_ok(out, n, "stats");
	proto_buf_append(out, b->p, b->len);
	return CMD_KEEP;
}

static cmd_after do_reload(cmd_ctx *c, const sousuo_index *ix, const proto_request *rq,
                           const char *line, proto_buf *out)
{
	char err[512];
	uint32_t ndocs;
	if (index_holder_reload(c->holder, &ndocs, err, sizeof err)) {
		stat_add(&c->stats->reload_failures, 1);
		return reply_err(c, out, PROTO_E_INTERNAL, "reload refused (the previous index "
		                 "keeps serving): %s", err);
	}
	stat_add(&c->stats->reloads, 1);
	proto_put_ok(out, 0, "reloaded %u", ndocs);
	return CMD_KEEP;
}

bool cmd_password_ok(const char *given, size_t given_len, const char *secret)
{
	size_t n = strlen(secret);
	volatile unsigned char diff = given_len != n;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(secret[i] ^ (i < given_len ? given[i] : 0));
	return diff == 0;
}

static cmd_after do_auth(cmd_ctx *c, const sousuo_index *ix, const proto_request *rq,
                         const char *line, proto_buf *out)
{
	if (!c->cfg->requirepass)
		return reply_err(c, out, PROTO_E_ARGS, "this server has no password (no --requirepass)");
	if (cmd_password_ok(rq->query, rq->query_len, c->cfg->requirepass)) {
		c->sess->authed = true;
		proto_put_ok(out, 0, "authenticated");
		return CMD_KEEP;
	}
	c->sess->authed = false;
	stat_add(&c->stats->auth_failures, 1);
	if (++c->sess->auth_failures >= CMD_MAX_AUTH_FAILURES) {
		reply_err(c, out, PROTO_E_AUTH, "wrong password; closing after %d tries",
		          CMD_MAX_AUTH_FAILURES);
		return CMD_CLOSE;
	}
	return reply_err(c, out, PROTO_E_AUTH, "wrong password");
}

static cmd_after do_help(cmd_ctx *c, const sousuo_index *ix, const proto_request *rq,
                         const char *line, proto_buf *out);

/* The command table, in proto_cmd order.  Arity is checked by the protocol
 * parser (protocol/request.c); `index` says whether the handler reads the
 * index (it then runs under a reference to the current version). */
static const struct {
	proto_cmd cmd;
	cmd_fn fn;
	bool index;
	const char *help;
} table[PROTO_NCMDS] = {
	{ PROTO_CMD_PING, do_ping, false, "PING  -> OK 0 PONG" },
	{ PROTO_CMD_SEARCH, do_search, true,
	  "SEARCH [limit=N offset=N sort=relevance|date snippet=on|off fields=a,b total=exact|fast] "
	  "[--] <query>" },
	{ PROTO_CMD_COUNT, do_count, true, "COUNT <query>  -> OK 0 <matching documents>" },
	{ PROTO_CMD_GET, do_get, true, "GET <id>  -> a document's fields and text" },
	{ PROTO_CMD_STATS, do_stats, true, "STATS  -> name TAB value lines" },
	{ PROTO_CMD_RELOAD, do_reload, false, "RELOAD  -> load the index file again" },
	{ PROTO_CMD_HELP, do_help, false, "HELP  -> this text" },
	{ PROTO_CMD_QUIT, do_quit, false, "QUIT  -> OK 0 bye, then close" },
	{ PROTO_CMD_AUTH, do_auth, false, "AUTH <password>  -> OK 0 authenticated (with --requirepass)" },
};

static cmd_after do_help(cmd_ctx *c, const sousuo_index *ix, const proto_request *rq,
                         const char *line, proto_buf *out)
{
	proto_put_ok(out, PROTO_NCMDS + 1, "commands");
	for (int i = 0; i < PROTO_NCMDS; i++) {
		put_str(out, table[i].help);
		proto_put_eol(out);
	}
	put_str(out, "query: a b (AND), a | b (OR), -a (NOT), ( ), \"phrase\", title:x, "
	        "category:行政法规, date>=2019-01-01, sort:date");
	proto_put_eol(out);
	return CMD_KEEP;
}

_Static_assert(PROTO_MAX_OFFSET + PROTO_MAX_LIMIT <= SOUSUO_MAX_RESULTS,
               "the deepest page the protocol allows must fit the engine's heap");
_Static_assert(PROTO_NCMDS == 9, "a new proto_cmd needs a row in the command table");

static cmd_after execute(cmd_ctx *c, cmd_session *s, const char *line, size_t len,
                         proto_buf *out);

/* Runs one request line; with --slow-log, a request that took at least its
 * threshold is logged with its time and (the start of) its line. */
cmd_after cmd_execute(cmd_ctx *c, cmd_session *s, const char *line, size_t len, proto_buf *out)
{
	if (c->cfg->slow_log <= 0)
		return execute(c, s, line, len, out);
	uint64_t t0 = now_us();
	cmd_after after = execute(c, s, line, len, out);
	uint64_t took = now_us() - t0;
	if (took >= (uint64_t)c->cfg->slow_log) {
		stat_add(&c->stats->slow_requests, 1);
		int shown = len > CMD_SLOW_LOG_BYTES ? CMD_SLOW_LOG_BYTES : (int)len;
		log_msg(LOGL_WARN, "slow request: %" PRIu64 ".%03" PRIu64 " ms: %.*s%s", took / 1000,
		        took % 1000, shown, line, (size_t)shown < len ? "..." : "");
	}
	return after;
}

static cmd_after execute(cmd_ctx *c, cmd_session *s, const char *line, size_t len,
                         proto_buf *out)
{
	proto_buf_reset(out);
	c->sess = s;
	proto_request rq;
	proto_error pe;
	int rc = proto_parse_request(line, len, &rq, &pe);
	if (rc == 1)
		return CMD_KEEP;
	stat_add(&c->stats->requests, 1);
	if (rc < 0) {
		reply_err(c, out, pe.code, "%s", pe.msg);
		return pe.code == PROTO_E_TOOLONG ? CMD_CLOSE : CMD_KEEP;
	}
	if ((unsigned)rq.cmd >= PROTO_NCMDS || table[rq.cmd].cmd != rq.cmd)
		return reply_err(c, out, PROTO_E_INTERNAL, "command table out of order");
	if (c->cfg->requirepass && !s->authed && rq.cmd != PROTO_CMD_AUTH && rq.cmd != PROTO_CMD_PING &&
	    rq.cmd != PROTO_CMD_HELP && rq.cmd != PROTO_CMD_QUIT)
		return reply_err(c, out, PROTO_E_AUTH, "authentication required (AUTH <password>)");
	cmd_after after;
	if (table[rq.cmd].index) {
		index_ref *ref = index_holder_acquire(c->holder);
		after = table[rq.cmd].fn(c, index_ref_index(ref), &rq, line, out);
		index_ref_release(ref);
	} else {
		after = table[rq.cmd].fn(c, NULL, &rq, line, out);
	}
	if (out->failed) {
		proto_buf_reset(out);
		reply_err(c, out, PROTO_E_INTERNAL, "out of memory");
	}
	return after;
}

void cmd_input_full(cmd_ctx *c, proto_buf *out)
{
	stat_add(&c->stats->requests, 1);
	stat_add(&c->stats->input_evicted, 1);
	reply_err(c, out, PROTO_E_BUSY, "the server's input buffers are full (--max-input-total %lld); "
	          "send shorter lines or fewer at once", c->cfg->max_input_total);
}

void cmd_toolong(cmd_ctx *c, size_t max_line, proto_buf *out)
{
	stat_add(&c->stats->requests, 1);
	reply_err(c, out, PROTO_E_TOOLONG, "line is over %zu bytes", max_line);
}
