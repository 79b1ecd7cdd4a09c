/* config.h — sousuo-server's settings: every tunable in one table (config.c)
 * with its minimum, maximum and default, and the fixed limits below.  Parsed
 * once by server_main.c; read-only afterwards, shared by all threads. */
#ifndef SOUSUO_DAEMON_CONFIG_H
#define SOUSUO_DAEMON_CONFIG_H

#include <stdio.h>

/* ---- fixed limits ------------------------------------------------------------ */

/* Requests one connection may run per wake-up before the worker turns to
 * its other connections (memcached's reqs_per_event). */
#define SERVER_REQS_PER_EVENT 64
/* ... or after this many microseconds of them, whichever comes first: 64
 * SEARCHes with snippets take tens of milliseconds, and every other client
 * of the worker would wait that long for each pipeliner's turn. */
#define SERVER_TURN_USEC 1000
/* Listen backlog of each worker's socket. */
#define SERVER_BACKLOG 1024
/* After a reply that closes the connection (QUIT, TOOLONG, shutdown) the
 * server shuts its sending side and discards input for at most this long
 * before closing, so unread input cannot turn the close into a reset that
 * destroys the reply. */
#define SERVER_LINGER_SECONDS 2
/* SIGTERM/SIGINT: the longest a worker waits for its connections to flush. */
#define SERVER_DRAIN_SECONDS 5
/* Over --max-input-total, only a connection whose incomplete line is at
 * least this long is closed: the ones holding big partial lines are the
 * ones that fill memory (a slow sender of long lines, or an attack). */
#define SERVER_EVICT_PARTIAL 4096
/* Descriptors held back from --max-conns for what is not a client: stdio,
 * the index file during a reload, each event base's epoll and notify
 * descriptors, the listeners, each worker's spare descriptor.  At start
 * the soft RLIMIT_NOFILE is raised to fit --max-conns plus these, up to
 * the hard limit; past that --max-conns is lowered, with a warning. */
#define SERVER_FD_RESERVE 32
#define SERVER_FD_PER_THREAD 8
/* HTTP connections are not counted in --max-conns (libevent 2.1's evhttp
 * offers no hook to refuse one): this many descriptors are held back for
 * them when --http-port is given. */
#define SERVER_HTTP_FD_RESERVE 256
/* Out of descriptors anyway (another process, HTTP): a worker gives up its
 * spare descriptor to accept and refuse with ERR BUSY at most this many
 * waiting connections at a time, rather than leave them unanswered. */
#define SERVER_SHED_BATCH 64
/* An accept error is logged at most once per this many seconds per worker,
 * with the count of those not logged. */
#define SERVER_ACCEPT_LOG_SECONDS 1
/* Most worker threads. */
#define SERVER_MAX_THREADS 256
/* Bytes of a request line quoted in a --slow-log line. */
#define CMD_SLOW_LOG_BYTES 300

/* ---- tunables ------------------------------------------------------------------ */

typedef struct {
	const char *index_path;   /* -i, --index: the index file (required) */
	const char *bind;         /* --bind: address to listen on */
	long long port;           /* --port: TCP port; 0 picks a free one */
	long long http_port;      /* --http-port: HTTP/JSON port; 0 picks a free
	                             one; -1 (the default) is no HTTP port */
	long long threads;        /* --threads: worker threads */
	long long max_line;       /* --max-line: bytes per request, newline included */
	long long max_conns;      /* --max-conns: open connections, all workers */
	long long idle_timeout;   /* --idle-timeout: seconds without progress; 0 never */
	long long max_output;     /* --max-output: bytes of pending replies per
	                             connection before the server stops reading its
	                             requests */
	long long max_output_total; /* --max-output-total: bytes of unread replies
	                             across all connections; past it, connections
	                             with replies waiting stop reading requests */
	long long max_input_total; /* --max-input-total: bytes of request lines
	                             still incomplete, all connections; past it, a
	                             connection holding over SERVER_EVICT_PARTIAL
	                             bytes of one is answered ERR BUSY and closed */
	long long send_timeout;   /* --send-timeout: seconds a connection may hold
	                             unsent replies without taking any before it is
	                             closed (a client that stopped reading); 0 never */
	long long query_timeout;  /* --query-timeout: microseconds a query may run
	                             before it is abandoned with ERR BUSY; 0 none */
	long long slow_log;       /* --slow-log: requests that take at least this
	                             many microseconds are logged; 0 off */
	const char *unix_path;    /* --unix: also listen on this Unix socket; NULL none */
	const char *requirepass;  /* --requirepass: clients must AUTH with it; NULL none.
	                             Required when --bind is not a loopback address */
} server_config;

/* Parses the command line into *c (defaults for what is not given).
 * Returns 0; 1 when -h/--help was asked (usage printed on stdout); -1 with a
 * message in err for a bad option or value. */
int config_parse(server_config *c, int argc, char **argv, char *err, size_t errlen);

/* The usage text, generated from the table. */
void config_usage(FILE *f);

#endif
