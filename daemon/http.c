/* http.c — the HTTP/JSON port (http.h). */
#include "daemon/http.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>

#include "daemon/commands.h"
#include "daemon/json.h"
#include "daemon/log.h"

struct http_server {
	struct event_base *base;
	struct evhttp *http;
	cmd_ctx *cmd;
	const server_config *cfg;
	server_stats *stats;
	proto_buf line;    /* the line-protocol request */
	proto_buf reply;   /* its reply */
	proto_buf json;    /* the HTTP body */
	int port;
	atomic_bool stopping;
	pthread_t thread;
	bool started;
};

/* ---- replies ---------------------------------------------------------------------- */

static void send_json(http_server *h, struct evhttp_request *req, int status, const char *reason)
{
	struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
	evhttp_add_header(hd, "Content-Type", "application/json; charset=utf-8");
	struct evbuffer *out = evbuffer_new();
	if (!out) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	if (h->json.failed) {
		status = 500, reason = "Internal Server Error";
		evbuffer_add_printf(out, "{\"error\":{\"code\":\"INTERNAL\",\"message\":\"out of memory\"}}\n");
	} else {
		evbuffer_add(out, h->json.p, h->json.len);
		evbuffer_add(out, "\n", 1);
	}
	evhttp_send_reply(req, status, reason, out);
	evbuffer_free(out);
}

static void send_error(http_server *h, struct evhttp_request *req, int status, const char *code,
                       const char *msg, size_t msglen)
{
	const char *reason = status == 400 ? "Bad Request" : status == 401 ? "Unauthorized" :
	                     status == 404 ? "Not Found" :
	                     status == 405 ? "Method Not Allowed" :
	                     status == 503 ? "Service Unavailable" : "Internal Server Error";
	proto_buf *b = &h->json;
	proto_buf_reset(b);
	json_raw(b, "{\"error\":{");
	json_key(b, "code");
	json_cstr(b, code);
	json_raw(b, ",");
	json_key(b, "message");
	json_str(b, msg, msglen);
	json_raw(b, "}}");
	send_json(h, req, status, reason);
}

/* ---- running a command ------------------------------------------------------------------ */

typedef struct {
	proto_status st;
	char *next;    /* the first line after the status */
	char *end;
} cmd_reply;

static void send_cmd_error(http_server *h, struct evhttp_request *req, const cmd_reply *r);

/* Runs h->line as a command.  0 with *r filled for an OK reply; -1 after
 * sending the HTTP error for an ERR reply, or a 500 for a reply that cannot
 * be read. */
static int run_cmd(http_server *h, struct evhttp_request *req, cmd_reply *r)
{
	proto_buf *o = &h->reply;
	if (h->line.failed) {
		send_error(h, req, 500, "INTERNAL", "out of memory", 13);
		return -1;
	}
	/* with --requirepass, each request carries the password as
	 * "Authorization: Bearer <password>" (HTTP has no session to AUTH in) */
	cmd_session sess = { false, 0 };
	if (h->cfg->requirepass) {
		const char *a = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
		if (a && !strncasecmp(a, "Bearer ", 7))
			sess.authed = cmd_password_ok(a + 7, strlen(a + 7), h->cfg->requirepass);
	}
	cmd_execute(h->cmd, &sess, h->line.p, h->line.len, o);
	char *nl = o->len ? memchr(o->p, '\n', o->len) : NULL;
	if (o->failed || !nl || proto_parse_status(o->p, (size_t)(nl - o->p), &r->st)) {
		send_error(h, req, 500, "INTERNAL", "bad reply", 9);
		return -1;
	}
	r->next = nl + 1;
	r->end = o->p + o->len;
	if (!r->st.ok) {
		send_cmd_error(h, req, r);
		return -1;
	}
	return 0;
}

/* Runs the command "word arg" (arg may be NULL): run_cmd over a line made
 * here. */
static int run_line(http_server *h, struct evhttp_request *req, const char *word,
                    const char *arg, cmd_reply *r)
{
	proto_buf_reset(&h->line);
	json_raw(&h->line, word);
	if (arg) {
		json_raw(&h->line, " ");
		json_raw(&h->line, arg);
	}
	return run_cmd(h, req, r);
}

/* The next reply line, its "\n" replaced by NUL; NULL at the end. */
static char *next_line(cmd_reply *r, size_t *len)
{
	if (r->next >= r->end)
		return NULL;
	char *l = r->next;
	char *nl = memchr(l, '\n', (size_t)(r->end - l));
	if (!nl)
		nl = r->end;
	*len = (size_t)(nl - l);
	r->next = nl + 1;
	return l;
}

/* Sends the error of an ERR reply with its HTTP status. */
static void send_cmd_error(http_server *h, struct evhttp_request *req, const cmd_reply *r)
{
	int status;
	switch (r->st.code) {
	case PROTO_E_UNKNOWN: case PROTO_E_ARGS: case PROTO_E_QUERY: case PROTO_E_UTF8:
	case PROTO_E_TOOLONG:
		status = 400;
		break;
	case PROTO_E_NOTFOUND: status = 404; break;
	case PROTO_E_BUSY: status = 503; break;
	case PROTO_E_AUTH:
		status = 401;
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
		                  "Bearer realm=\"sousuo\"");
		break;
	default: status = 500;
	}
	send_error(h, req, status, proto_errcode_word(r->st.code), r->st.msg, r->st.msg_len);
}

/* Splits a reply line into unescaped fields (in place). */
static size_t split_unescape(char *l, size_t len, proto_slice *f, size_t max)
{
	size_t n = proto_split_fields(l, len, f, max);
	if (n > max)
		n = max;
	for (size_t i = 0; i < n; i++) {
		ssize_t k = proto_unescape(f[i].p, f[i].n, (char *)f[i].p, f[i].n);
		f[i].n = k < 0 ? 0 : (size_t)k;
	}
	return n;
}

/* Whether s is a JSON-safe number as the commands write them. */
static bool is_number(const char *s, size_t n)
{
	if (!n)
		return false;
	size_t i = s[0] == '-' ? 1 : 0;
	if (i >= n || s[i] < '0' || s[i] > '9')
		return false;
	bool dot = false;
	for (; i < n; i++) {
		if (s[i] == '.' && !dot && i + 1 < n)
			dot = true;
		else if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return true;
}

/* ---- parameters ----------------------------------------------------------------------------- */

/* An option value that may go into a command line as one word. */
static bool word_ok(const char *v)
{
	if (!*v)
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

/* The query parameter q: NULL (after sending the 400) if missing or not one line. */
static const char *get_query(http_server *h, struct evhttp_request *req, struct evkeyvalq *params)
{
	const char *q = evhttp_find_header(params, "q");
	const char *msg = NULL;
	if (!q || !q[strspn(q, " \t")])
		msg = "missing query: give ?q=...";
	else if (strpbrk(q, "\r\n"))
		msg = "the query must be one line";
	if (msg) {
		send_error(h, req, 400, "QUERY", msg, strlen(msg));
		return NULL;
	}
	return q;
}

/* ---- handlers ------------------------------------------------------------------------------- */

static void do_search(http_server *h, struct evhttp_request *req, struct evkeyvalq *params)
{
	const char *q = get_query(h, req, params);
	if (!q)
		return;
	proto_buf *l = &h->line;
	proto_buf_reset(l);
	json_raw(l, "SEARCH total=exact");
	static const char *const opts[] = { "limit", "offset", "sort", "snippet" };
	bool snippet = true;
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		const char *v = evhttp_find_header(params, opts[i]);
		if (!v)
			continue;
		if (!word_ok(v)) {
			char msg[96];
			int n = snprintf(msg, sizeof msg, "bad value for %s", opts[i]);
			send_error(h, req, 400, "ARGS", msg, (size_t)n);
			return;
		}
		if (!strcmp(opts[i], "snippet") && !strcasecmp(v, "off"))
			snippet = false;
		json_raw(l, " ");
		json_raw(l, opts[i]);
		json_raw(l, "=");
		json_raw(l, v);
	}
	json_raw(l, snippet ? " fields=rank,id,score,title,path,category,date,snippet -- "
	                    : " fields=rank,id,score,title,path,category,date -- ");
	json_raw(l, q);
	cmd_reply r;
	if (run_cmd(h, req, &r))
		return;
	uint64_t total = 0, took = 0;
	int exact = 1;
	char info[128];
	size_t il = r.st.info_len < sizeof info - 1 ? r.st.info_len : sizeof info - 1;
	memcpy(info, r.st.info, il);
	info[il] = 0;
	sscanf(info, "total=%" SCNu64 " exact=%d took_us=%" SCNu64, &total, &exact, &took);
	proto_buf *b = &h->json;
	proto_buf_reset(b);
	json_raw(b, "{\"total\":");
	json_u64(b, total);
	json_raw(b, exact ? ",\"exact\":true,\"took_us\":" : ",\"exact\":false,\"took_us\":");
	json_u64(b, took);
	json_raw(b, ",\"hits\":[");
	static const char *const names[] = { "rank", "id", "score", "title", "path", "category",
	                                      "date", "snippet" };
	char *line;
	size_t len;
	for (uint32_t i = 0; i < r.st.nlines && (line = next_line(&r, &len)); i++) {
		proto_slice f[8];
		size_t n = split_unescape(line, len, f, snippet ? 8 : 7);
		json_raw(b, i ? ",{" : "{");
		for (size_t k = 0; k < n; k++) {
			if (k)
				json_raw(b, ",");
			json_key(b, names[k]);
			if (k < 3) {
				if (is_number(f[k].p, f[k].n))
					proto_buf_append(b, f[k].p, f[k].n);
				else
					json_raw(b, "null");
			} else {
				json_str(b, f[k].p, f[k].n);
			}
		}
		json_raw(b, "}");
	}
	json_raw(b, "]}");
	send_json(h, req, 200, "OK");
}

static void do_count(http_server *h, struct evhttp_request *req, struct evkeyvalq *params)
{
	const char *q = get_query(h, req, params);
	if (!q)
		return;
	cmd_reply r;
	if (run_line(h, req, "COUNT", q, &r))
		return;
	proto_buf *b = &h->json;
	proto_buf_reset(b);
	json_raw(b, "{\"total\":");
	if (is_number(r.st.info, r.st.info_len))
		proto_buf_append(b, r.st.info, r.st.info_len);
	else
		json_raw(b, "null");
	json_raw(b, "}");
	send_json(h, req, 200, "OK");
}

/* Writes "name TAB value" lines as members of an object; numbers as numbers. */
static void name_value_members(proto_buf *b, cmd_reply *r, bool first)
{
	char *line;
	size_t len;
	for (uint32_t i = 0; i < r->st.nlines && (line = next_line(r, &len)); i++) {
		proto_slice f[2];
		if (split_unescape(line, len, f, 2) < 2)
			continue;
		if (!first)
			json_raw(b, ",");
		first = false;
		json_str(b, f[0].p, f[0].n);
		json_raw(b, ":");
		if (is_number(f[1].p, f[1].n) && strncmp(f[0].p, "ext_id", f[0].n))
			proto_buf_append(b, f[1].p, f[1].n);
		else
			json_str(b, f[1].p, f[1].n);
	}
}

static void do_doc(http_server *h, struct evhttp_request *req, const char *id)
{
	if (!*id || strspn(id, "0123456789") != strlen(id) || strlen(id) > 10) {
		send_error(h, req, 404, "NOTFOUND", "no such document", 16);
		return;
	}
	cmd_reply r;
	if (run_line(h, req, "GET", id, &r))
		return;
	proto_buf *b = &h->json;
	proto_buf_reset(b);
	json_raw(b, "{\"id\":");
	/* the status info is "id=N" */
	if (r.st.info_len > 3 && is_number(r.st.info + 3, r.st.info_len - 3))
		proto_buf_append(b, r.st.info + 3, r.st.info_len - 3);
	else
		json_raw(b, "null");
	name_value_members(b, &r, false);
	json_raw(b, "}");
	send_json(h, req, 200, "OK");
}

static void do_stats(http_server *h, struct evhttp_request *req, bool health)
{
	cmd_reply r;
	if (run_line(h, req, "STATS", NULL, &r))
		return;
	proto_buf *b = &h->json;
	proto_buf_reset(b);
	if (!health) {
		json_raw(b, "{");
		name_value_members(b, &r, true);
		json_raw(b, "}");
		send_json(h, req, 200, "OK");
		return;
	}
	json_raw(b, "{\"status\":\"ok\",\"documents\":");
	const char *docs = "null";
	size_t dl = 4;
	char *line;
	size_t len;
	while ((line = next_line(&r, &len)))
		if (len > 10 && !memcmp(line, "documents\t", 10) && is_number(line + 10, len - 10)) {
			docs = line + 10;
			dl = len - 10;
		}
	proto_buf_append(b, docs, dl);
	json_raw(b, "}");
	send_json(h, req, 200, "OK");
}

static void on_request(struct evhttp_request *req, void *arg)
{
	http_server *h = arg;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	if (atomic_load(&h->stopping)) {
		send_error(h, req, 503, "BUSY", "the server is stopping", 22);
		return;
	}
	if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		send_error(h, req, 405, "METHOD", "only GET is supported", 21);
		return;
	}
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	if (!path || !*path)
		path = "/";
	struct evkeyvalq params;
	TAILQ_INIT(&params);
	if (query && evhttp_parse_query_str(query, &params)) {
		send_error(h, req, 400, "ARGS", "malformed query string", 22);
		evhttp_clear_headers(&params);
		return;
	}
	if (!strcmp(path, "/search"))
		do_search(h, req, &params);
	else if (!strcmp(path, "/count"))
		do_count(h, req, &params);
	else if (!strncmp(path, "/doc/", 5))
		do_doc(h, req, path + 5);
	else if (!strcmp(path, "/stats"))
		do_stats(h, req, false);
	else if (!strcmp(path, "/health"))
		do_stats(h, req, true);
	else
		send_error(h, req, 404, "NOTFOUND", "no such path", 12);
	evhttp_clear_headers(&params);
}

/* ---- accept errors ---- */

static void reenable_cb(evutil_socket_t fd, short what, void *arg)
{
	evconnlistener_enable(arg);
}

/* Out of descriptors: without an error callback libevent logs and retries
 * at once, a busy loop for as long as a connection waits.  The listener
 * pauses a moment instead (the line protocol's workers also refuse their
 * waiting connections; HTTP clients wait in the queue). */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	static time_t logged;   /* the HTTP thread's own */
	if (log_due(&logged, SERVER_ACCEPT_LOG_SECONDS))
		log_msg(LOGL_ERROR, "http: accept: %s",
		        evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	evconnlistener_disable(l);
	struct timeval tv = { 0, 100000 };
	event_base_once(evconnlistener_get_base(l), -1, EV_TIMEOUT, reenable_cb, l, &tv);
}

/* ---- life cycle --------------------------------------------------------------------------------- */

http_server *http_new(const server_config *cfg, int port, index_holder *holder,
                      server_stats *stats, char *err, size_t errlen)
{
	http_server *h = calloc(1, sizeof *h);
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->stats = stats;
	proto_buf_init(&h->line);
	proto_buf_init(&h->reply);
	proto_buf_init(&h->json);
	h->base = event_base_new();
	h->http = h->base ? evhttp_new(h->base) : NULL;
	h->cmd = cmd_ctx_new(holder, stats, cfg);
	h->cfg = cfg;
	if (!h->http || !h->cmd) {
		snprintf(err, errlen, "out of memory");
		http_join_free(h);
		return NULL;
	}
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
	                           EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
	                           EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(h->http, 16384);
	evhttp_set_max_body_size(h->http, 65536);
	if (cfg->idle_timeout)
		evhttp_set_timeout(h->http, (int)cfg->idle_timeout);
	evhttp_set_gencb(h->http, on_request, h);
	struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(h->http, cfg->bind,
	                                                                (ev_uint16_t)port);
	if (!bs) {
		snprintf(err, errlen, "cannot listen on %s port %d", cfg->bind, port);
		http_join_free(h);
		return NULL;
	}
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bs), accept_error_cb);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl)) {
		snprintf(err, errlen, "getsockname failed");
		http_join_free(h);
		return NULL;
	}
	h->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
	                                   : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return h;
}

int http_port(const http_server *h)
{
	return h->port;
}

static void *http_main(void *arg)
{
	http_server *h = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	event_base_dispatch(h->base);
	return NULL;
}

int http_start(http_server *h)
{
	/* block signals before the thread exists, so none lands on it */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&h->thread, NULL, http_main, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return -1;
	h->started = true;
	return 0;
}

void http_stop(http_server *h)
{
	atomic_store(&h->stopping, true);
	event_base_loopexit(h->base, NULL);
}

void http_join_free(http_server *h)
{
	if (!h)
		return;
	if (h->started)
		pthread_join(h->thread, NULL);
	if (h->http)
		evhttp_free(h->http);
	if (h->base)
		event_base_free(h->base);
	cmd_ctx_free(h->cmd);
	proto_buf_free(&h->line);
	proto_buf_free(&h->reply);
	proto_buf_free(&h->json);
	free(h);
}
