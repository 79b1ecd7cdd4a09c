/* config.c — sousuo-server's options (config.h): one table of every tunable
 * with its flag, bounds, default and help; parsing and usage come from it. */
#include "daemon/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol/protocol.h"

/* CFG_DUR: a duration, "250ms", "2s", "500us" or a bare number of
 * milliseconds, kept in microseconds. */
typedef enum { CFG_STR, CFG_INT, CFG_DUR } cfg_kind;

typedef struct {
	const char *name;        /* long flag without "--" */
	char short_name;         /* or 0 */
	cfg_kind kind;
	size_t off;              /* field in server_config */
	long long min, max;      /* CFG_INT bounds, inclusive */
	long long def;           /* CFG_INT default */
	const char *def_str;     /* CFG_STR default (NULL: required) */
	const char *help;
} cfg_def;

#define F(field) offsetof(server_config, field)

/* threads' default 0 means "one per core", resolved in config_parse. */
static const cfg_def defs[] = {
	{ "index", 'i', CFG_STR, F(index_path), 0, 0, 0, NULL, "index file to serve (required)" },
	{ "bind", 0, CFG_STR, F(bind), 0, 0, 0, "127.0.0.1", "address to listen on" },
	{ "port", 'p', CFG_INT, F(port), 0, 65535, 7878, NULL, "TCP port (0: any free port)" },
	{ "http-port", 0, CFG_INT, F(http_port), 0, 65535, -1, NULL,
	  "HTTP/JSON port (0: any free port; default: none)" },
	{ "threads", 't', CFG_INT, F(threads), 1, SERVER_MAX_THREADS, 0, NULL,
	  "worker threads (default: one per core)" },
	{ "max-line", 0, CFG_INT, F(max_line), 16, PROTO_MAX_LINE, PROTO_MAX_LINE, NULL,
	  "longest request line in bytes, newline included" },
	{ "max-conns", 0, CFG_INT, F(max_conns), 1, 1000000, 10000, NULL,
	  "most open connections; more get ERR BUSY" },
	{ "idle-timeout", 0, CFG_INT, F(idle_timeout), 0, 86400 * 7, 300, NULL,
	  "seconds a connection may send nothing (0: forever)" },
	{ "max-output", 0, CFG_INT, F(max_output), 4096, 1LL << 30, 4LL << 20, NULL,
	  "bytes of unread replies per connection before its requests wait (K/M/G ok)" },
	{ "max-output-total", 0, CFG_INT, F(max_output_total), 1LL << 20, 1LL << 40, 1LL << 30, NULL,
	  "bytes of unread replies, all connections, before those with some wait (K/M/G ok)" },
	{ "max-input-total", 0, CFG_INT, F(max_input_total), 1LL << 20, 1LL << 40, 256LL << 20, NULL,
	  "bytes of incomplete request lines, all connections, before the longest go (K/M/G ok)" },
	{ "send-timeout", 0, CFG_INT, F(send_timeout), 0, 86400, 30, NULL,
	  "seconds a client may leave its replies unread before it is closed (0: forever)" },
	{ "query-timeout", 0, CFG_DUR, F(query_timeout), 0, 3600LL * 1000000, 2000000, NULL,
	  "time budget of one query; past it, ERR BUSY (us/ms/s; 0: none)" },
	{ "slow-log", 0, CFG_DUR, F(slow_log), 0, 3600LL * 1000000, 0, NULL,
	  "log every request slower than this (us/ms/s; default 0: off)" },
	{ "unix", 0, CFG_STR, F(unix_path), 0, 0, 0, NULL,
	  "also listen on a Unix socket at this path (default: none)" },
	{ "requirepass", 0, CFG_STR, F(requirepass), 0, 0, 0, NULL,
	  "clients must AUTH with this password (needed to --bind beyond loopback)" },
};
#define NDEFS (sizeof defs / sizeof defs[0])

void config_usage(FILE *f)
{
	fprintf(f, "usage: sousuo-server -i INDEX [options]\n");
	for (size_t i = 0; i < NDEFS; i++) {
		const cfg_def *d = &defs[i];
		char flag[48];
		const char *arg = d->kind == CFG_INT ? "N" : d->kind == CFG_DUR ? "T" : "S";
		if (d->short_name)
			snprintf(flag, sizeof flag, "-%c, --%s %s", d->short_name, d->name, arg);
		else
			snprintf(flag, sizeof flag, "    --%s %s", d->name, arg);
		if (d->kind == CFG_DUR && d->def > 0)
			fprintf(f, "  %-26s %s (default %lld ms)\n", flag, d->help, d->def / 1000);
		else if (d->kind == CFG_DUR)
			fprintf(f, "  %-26s %s\n", flag, d->help);
		else if (d->kind == CFG_INT && d->def > 0)
			fprintf(f, "  %-26s %s (%lld..%lld, default %lld)\n", flag, d->help, d->min, d->max, d->def);
		else if (d->kind == CFG_INT)
			fprintf(f, "  %-26s %s (%lld..%lld)\n", flag, d->help, d->min, d->max);
		else if (d->def_str)
			fprintf(f, "  %-26s %s (default %s)\n", flag, d->help, d->def_str);
		else
			fprintf(f, "  %-26s %s\n", flag, d->help);
	}
	fprintf(f, "  -h, --help                 this text\n"
	           "SOUSUO_REQUIREPASS in the environment is --requirepass without showing it in ps.\n"
	           "Signals: SIGHUP reloads the index file, SIGTERM/SIGINT stop after flushing.\n");
}

/* Decimal, optionally followed by K, M or G (powers of 1024). */
static int parse_int(const char *s, long long *out)
{
	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s)
		return -1;
	long long mul = 1;
	if (*end == 'k' || *end == 'K') mul = 1LL << 10, end++;
	else if (*end == 'm' || *end == 'M') mul = 1LL << 20, end++;
	else if (*end == 'g' || *end == 'G') mul = 1LL << 30, end++;
	if (*end || v > INT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

/* A duration: decimal with "us", "ms" or "s", or bare milliseconds. */
static int parse_dur(const char *s, long long *out_us)
{
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	if (errno)
		return -1;
	long long mul;
	if (!strcmp(end, "us"))
		mul = 1;
	else if (!strcmp(end, "ms") || !*end)
		mul = 1000;
	else if (!strcmp(end, "s"))
		mul = 1000000;
	else
		return -1;
	if (v > INT64_MAX / mul)
		return -1;
	*out_us = v * mul;
	return 0;
}

static const cfg_def *find_def(const char *arg, size_t *name_len)
{
	if (arg[0] == '-' && arg[1] && arg[1] != '-' && !arg[2]) {
		for (size_t i = 0; i < NDEFS; i++)
			if (defs[i].short_name == arg[1]) {
				*name_len = 2;
				return &defs[i];
			}
		return NULL;
	}
	if (strncmp(arg, "--", 2))
		return NULL;
	const char *n = arg + 2;
	size_t nl = strcspn(n, "=");
	for (size_t i = 0; i < NDEFS; i++)
		if (strlen(defs[i].name) == nl && !strncmp(defs[i].name, n, nl)) {
			*name_len = nl + 2;
			return &defs[i];
		}
	return NULL;
}

int config_parse(server_config *c, int argc, char **argv, char *err, size_t errlen)
{
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < NDEFS; i++) {
		char *field = (char *)c + defs[i].off;
		if (defs[i].kind == CFG_STR)
			memcpy(field, &defs[i].def_str, sizeof(const char *));
		else
			memcpy(field, &defs[i].def, sizeof(long long));
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return 1;
		size_t nl;
		const cfg_def *d = find_def(a, &nl);
		if (!d) {
			snprintf(err, errlen, "unknown option %s (try --help)", a);
			return -1;
		}
		const char *v;
		if (a[nl] == '=') {
			v = a + nl + 1;
		} else if (i + 1 < argc) {
			v = argv[++i];
		} else {
			snprintf(err, errlen, "%s needs a value", a);
			return -1;
		}
		char *field = (char *)c + d->off;
		if (d->kind == CFG_STR) {
			if (!*v) {
				snprintf(err, errlen, "--%s: empty value", d->name);
				return -1;
			}
			memcpy(field, &v, sizeof v);
			continue;
		}
		long long x;
		if (d->kind == CFG_DUR) {
			if (parse_dur(v, &x) || x < d->min || x > d->max) {
				snprintf(err, errlen, "--%s: \"%s\" is not a duration such as 500us, 250ms "
				         "or 2s (at most %lld s)", d->name, v, d->max / 1000000);
				return -1;
			}
		} else if (parse_int(v, &x) || x < d->min || x > d->max) {
			snprintf(err, errlen, "--%s: \"%s\" is not a number in %lld..%lld", d->name, v,
			         d->min, d->max);
			return -1;
		}
		memcpy(field, &x, sizeof x);
	}
	if (!c->index_path) {
		snprintf(err, errlen, "no index file: give -i INDEX");
		return -1;
	}
	/* the environment keeps the password out of ps's view of argv */
	const char *pw = getenv("SOUSUO_REQUIREPASS");
	if (!c->requirepass && pw && *pw)
		c->requirepass = pw;
	if (c->threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		c->threads = n < 1 ? 1 : n > SERVER_MAX_THREADS ? SERVER_MAX_THREADS : n;
	}
	return 0;
}
