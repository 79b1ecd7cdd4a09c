/* conn.c — connection state and line reading (conn.h).
 *
 * States:
 *   ACTIVE   reading requests and answering them.  Paused (not reading)
 *            while its unread replies are at --max-output; resumes when they
 *            fall to half of it.  Paused too while it has replies unsent and
 *            the worker's connections together hold its share of
 *            --max-output-total; resumes when its own are sent.  Answered
 *            ERR BUSY and closed when the connections' incomplete lines
 *            together are over their share of --max-input-total and its own
 *            is SERVER_EVICT_PARTIAL or longer.  Closed after --idle-timeout
 *            without a request byte (while reading), or after --send-timeout
 *            with replies waiting and none taken by the client: a client
 *            that stops reading holds at most --max-output of memory, for a
 *            bounded time, and the others never wait for it.
 *   CLOSING  sending the replies it has (QUIT, TOOLONG, EOF, shutdown).
 *   LINGER   replies sent, our side shut; discarding input until the client
 *            closes or SERVER_LINGER_SECONDS pass.
 *   DEAD     to be freed.
 * A connection is freed only at the end of one of its own callbacks
 * (finish()), never in the middle of a state change.
 *
 * Writing: replies are written straight to the socket at the end of each
 * batch of requests (flush_out); only what the socket does not take waits
 * for libevent's write event, which is enabled just while output waits.
 * Leaving it enabled cost two epoll_ctl calls and a loop pass per request
 * (add on the reply, delete once written).
 *
 * Turns: a connection runs at most SERVER_REQS_PER_EVENT requests, or
 * SERVER_TURN_USEC of them, per wake-up; then it waits behind a zero
 * timeout, which libevent runs only after its next poll for I/O, so the
 * other connections' requests come first.  (event_active would run it in
 * the same pass, before anything else that became ready.) */
#include "daemon/conn.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"

typedef enum { CONN_ACTIVE, CONN_CLOSING, CONN_LINGER, CONN_DEAD } conn_state;

struct conn {
	conn_env *env;
	struct bufferevent *bev;
	struct event *resume;     /* wakes the connection for its next batch of requests */
	conn_state state;
	bool paused;              /* output at --max-output: not reading */
	bool eof;                 /* the client shut its sending side */
	size_t scanned;           /* input bytes already known to hold no '\n' */
	cmd_session sess;         /* --requirepass state */
	conn *prev, *next;
};

/* Keeps a conn_bytes: every byte a buffer takes and every byte it lets go
 * (unsigned arithmetic: a net decrease wraps, and wraps back). */
static void count_cb(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
	conn_bytes *n = arg;
	size_t delta = info->n_added - info->n_deleted;
	n->bytes += delta;
	if (n->gauge)
		stat_add(n->gauge, delta);
}

/* A buffer about to be freed gives back what it still holds. */
static void uncount(struct evbuffer *b, conn_bytes *n)
{
	evbuffer_remove_cb(b, count_cb, n);
	size_t held = evbuffer_get_length(b);
	n->bytes -= held;
	if (n->gauge)
		atomic_fetch_sub_explicit(n->gauge, held, memory_order_relaxed);
}

static void conn_free(conn *c)
{
	conn_env *env = c->env;
	uncount(bufferevent_get_input(c->bev), &env->in);
	uncount(bufferevent_get_output(c->bev), &env->out);
	if (c->prev)
		c->prev->next = c->next;
	else
		env->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	env->count--;
	bufferevent_free(c->bev);
	event_free(c->resume);
	free(c);
	atomic_fetch_sub(&env->stats->conns_current, 1);
	if (env->on_free)
		env->on_free(env->arg);
}

/* The end of every callback: frees the connection if it died. */
static void finish(conn *c)
{
	if (c->state == CONN_DEAD)
		conn_free(c);
}

/* libevent runs a read timeout only while reading is enabled, and a write
 * timeout only while output is waiting: exactly "idle" and "not reading". */
static void set_timeouts(conn *c, long long read_s, long long write_s)
{
	struct timeval r = { (time_t)read_s, 0 }, w = { (time_t)write_s, 0 };
	bufferevent_set_timeouts(c->bev, read_s > 0 ? &r : NULL, write_s > 0 ? &w : NULL);
}

/* Writes what the output holds, as far as the socket takes it, and leaves
 * libevent's write event on only if something is left. */
static void flush_out(conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (c->state == CONN_DEAD || evbuffer_get_length(out) == 0 ||
	    (bufferevent_get_enabled(c->bev) & EV_WRITE))
		return;
	/* a socket bufferevent keeps its output's front frozen except while it
	 * writes itself (bufferevent_sock.c); so does this */
	evbuffer_unfreeze(out, 1);
	errno = 0;
	int n = evbuffer_write(out, bufferevent_getfd(c->bev));
	int e = errno;
	evbuffer_freeze(out, 1);
	if (n < 0 && e != EAGAIN && e != EWOULDBLOCK && e != EINTR) {
		c->state = CONN_DEAD;   /* reset or broken pipe: nobody to answer */
		return;
	}
	if (evbuffer_get_length(out))
		bufferevent_enable(c->bev, EV_WRITE);
}

/* Replies are out: shut our side and wait for the client's close. */
static void start_linger(conn *c)
{
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	shutdown(fd, SHUT_WR);
	if (c->eof) {
		c->state = CONN_DEAD;  /* everything it sent has been read: no reset to fear */
		return;
	}
	c->state = CONN_LINGER;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
	set_timeouts(c, SERVER_LINGER_SECONDS, SERVER_LINGER_SECONDS);
	/* the read timeout restarts with every read, so a client that keeps
	 * sending would linger forever: the resume event doubles as a one-shot
	 * deadline from now */
	struct timeval tv = { SERVER_LINGER_SECONDS, 0 };
	event_del(c->resume);
	event_add(c->resume, &tv);
	bufferevent_enable(c->bev, EV_READ);
}

/* Stops taking requests; the connection closes once its replies are sent. */
static void close_after_flush(conn *c)
{
	if (c->state != CONN_ACTIVE)
		return;
	c->state = CONN_CLOSING;
	c->paused = false;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	flush_out(c);
	if (c->state == CONN_CLOSING && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		start_linger(c);
}

static void send_reply(conn *c, const proto_buf *b)
{
	if (b->len && evbuffer_add(bufferevent_get_output(c->bev), b->p, b->len)) {
		log_msg(LOGL_ERROR, "out of memory queueing a reply; closing the connection");
		c->state = CONN_DEAD;
	}
}

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* Stops reading requests until the output falls to low. */
static void pause_reading(conn *c, size_t low, atomic_uint_fast64_t *stat)
{
	c->paused = true;
	stat_add(stat, 1);
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setwatermark(c->bev, EV_WRITE, low, 0);
	bufferevent_enable(c->bev, EV_WRITE);   /* to hear when it drains */
}

/* Runs the complete request lines in the input for one turn (see Turns
 * above); the rest wait for the resume event. */
static void process_batch(conn *c)
{
	const server_config *cfg = c->env->cfg;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t max_line = (size_t)cfg->max_line;
	int done = 0;
	long long start = 0;
	while (c->state == CONN_ACTIVE) {
		size_t pending = evbuffer_get_length(out);
		if (pending >= (size_t)cfg->max_output) {
			/* the client is not reading its replies: stop reading its requests */
			pause_reading(c, (size_t)cfg->max_output / 2, &c->env->stats->output_paused);
			return;
		}
		if (pending && c->env->out.bytes >= c->env->out.cap) {
			pause_reading(c, 0, &c->env->stats->output_paused_total);
			return;
		}
		if (done == SERVER_REQS_PER_EVENT ||
		    (done && now_us() - start >= SERVER_TURN_USEC)) {
			static const struct timeval zero = { 0, 0 };
			event_add(c->resume, &zero);
			return;
		}
		if (!done)
			start = now_us();
		size_t len = evbuffer_get_length(in);
		struct evbuffer_ptr eol;
		eol.pos = -1;
		if (c->scanned < len) {
			struct evbuffer_ptr from;
			size_t eol_len;
			evbuffer_ptr_set(in, &from, c->scanned, EVBUFFER_PTR_SET);
			eol = evbuffer_search_eol(in, &from, &eol_len, EVBUFFER_EOL_LF);
		}
		if (eol.pos < 0) {
			c->scanned = len;
			if (len >= max_line) {
				/* the line cannot end within the limit: refuse it now */
				cmd_toolong(c->env->cmds, max_line, &c->env->reply);
				send_reply(c, &c->env->reply);
				close_after_flush(c);
			} else if (c->eof) {
				close_after_flush(c);   /* a partial last line is dropped */
			} else if (c->env->in.bytes > c->env->in.cap && len >= SERVER_EVICT_PARTIAL) {
				cmd_input_full(c->env->cmds, &c->env->reply);
				send_reply(c, &c->env->reply);
				close_after_flush(c);
			}
			return;
		}
		size_t line_len = (size_t)eol.pos;
		if (line_len + 1 > max_line) {
			cmd_toolong(c->env->cmds, max_line, &c->env->reply);
			send_reply(c, &c->env->reply);
			close_after_flush(c);
			return;
		}
		const char *line = (const char *)evbuffer_pullup(in, (ev_ssize_t)line_len + 1);
		if (!line) {
			c->state = CONN_DEAD;
			return;
		}
		size_t n = line_len;
		if (n && line[n - 1] == '\r')
			n--;
		cmd_after after = cmd_execute(c->env->cmds, &c->sess, line, n, &c->env->reply);
		evbuffer_drain(in, line_len + 1);
		c->scanned = 0;
		send_reply(c, &c->env->reply);
		if (after == CMD_CLOSE)
			close_after_flush(c);
		done++;
	}
}

static void conn_process(conn *c)
{
	process_batch(c);
	flush_out(c);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	conn *c = arg;
	if (c->state == CONN_ACTIVE) {
		conn_process(c);
	} else if (c->state == CONN_LINGER) {
		struct evbuffer *in = bufferevent_get_input(bev);
		evbuffer_drain(in, evbuffer_get_length(in));
	}
	finish(c);
}

/* The output fell to its low watermark: 0 normally, half of --max-output
 * while paused. */
static void write_cb(struct bufferevent *bev, void *arg)
{
	conn *c = arg;
	if (c->state == CONN_ACTIVE && c->paused) {
		c->paused = false;
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		if (!c->eof)
			bufferevent_enable(bev, EV_READ);
		bufferevent_disable(bev, EV_WRITE);   /* flush_out takes over */
		conn_process(c);
	} else if (c->state == CONN_ACTIVE && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		bufferevent_disable(bev, EV_WRITE);
	} else if (c->state == CONN_CLOSING && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		start_linger(c);
	}
	finish(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	conn *c = arg;
	if (what & BEV_EVENT_TIMEOUT) {
		if (c->state == CONN_ACTIVE || c->state == CONN_CLOSING)
			stat_add(what & BEV_EVENT_WRITING ? &c->env->stats->send_closed
			                                  : &c->env->stats->idle_closed, 1);
		c->state = CONN_DEAD;
	} else if (what & BEV_EVENT_ERROR) {
		c->state = CONN_DEAD;
	} else if (what & BEV_EVENT_EOF) {
		c->eof = true;
		if (c->state == CONN_LINGER)
			c->state = CONN_DEAD;
		else if (c->state == CONN_ACTIVE && !c->paused)
			conn_process(c);   /* answer what is complete, then close */
	}
	finish(c);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	conn *c = arg;
	if (c->state == CONN_ACTIVE && !c->paused)
		conn_process(c);
	else if (c->state == CONN_LINGER)
		c->state = CONN_DEAD;   /* the linger deadline */
	finish(c);
}

int conn_start(conn_env *env, evutil_socket_t fd)
{
	conn *c = calloc(1, sizeof *c);
	if (!c)
		goto fail;
	evutil_make_socket_nonblocking(fd);
	/* a reply written in pieces (over --max-output, or larger than a
	 * segment) must not wait for the client's delayed ACK; fails
	 * harmlessly on a Unix socket */
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->env = env;
	c->bev = bufferevent_socket_new(env->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->resume = event_new(env->base, -1, 0, resume_cb, c);
	/* the counting callbacks go on only once both exist (|| stops early) */
	if (!c->bev || !c->resume ||
	    !evbuffer_add_cb(bufferevent_get_output(c->bev), count_cb, &env->out) ||
	    !evbuffer_add_cb(bufferevent_get_input(c->bev), count_cb, &env->in)) {
		if (c->bev)
			bufferevent_free(c->bev);   /* closes fd */
		else
			evutil_closesocket(fd);
		if (c->resume)
			event_free(c->resume);
		free(c);
		atomic_fetch_sub(&env->stats->conns_current, 1);
		log_msg(LOGL_ERROR, "out of memory accepting a connection");
		return -1;
	}
	c->state = CONN_ACTIVE;
	c->next = env->head;
	if (env->head)
		env->head->prev = c;
	env->head = c;
	env->count++;
	stat_add(&env->stats->conns_total, 1);
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	/* input stops at max_line: a line that fits has its '\n' by then */
	bufferevent_setwatermark(c->bev, EV_READ, 0, (size_t)env->cfg->max_line);
	set_timeouts(c, env->cfg->idle_timeout, env->cfg->send_timeout);
	bufferevent_enable(c->bev, EV_READ);
	return 0;
fail:
	evutil_closesocket(fd);
	atomic_fetch_sub(&env->stats->conns_current, 1);
	log_msg(LOGL_ERROR, "out of memory accepting a connection");
	return -1;
}

void conn_close_all(conn_env *env)
{
	conn *next;
	for (conn *c = env->head; c; c = next) {
		next = c->next;
		if (c->state == CONN_ACTIVE)
			close_after_flush(c);
		if (c->state == CONN_DEAD)
			conn_free(c);
	}
}

void conn_free_all(conn_env *env)
{
	while (env->head)
		conn_free(env->head);
}
