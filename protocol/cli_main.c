/* cli_main.c — sousuo-cli, the command-line client of sousuo-server, in the
 * manner of redis-cli:
 *
 *   sousuo-cli [-h HOST] [-p PORT] [-t SECONDS] [-a PASSWORD] [--raw] [COMMAND ARGS...]
 *
 * With a command it sends the arguments joined by spaces as one request and
 * prints the reply; without one it reads commands from an interactive prompt
 * (libedit, history in ~/.sousuo_history), or line by line when stdin is not
 * a terminal.  Replies print readably (aligned search results, matches in
 * bold on a terminal, "(error) CODE message") or, with --raw, exactly as
 * received.  Exit status: 0 OK, 1 an ERR reply, 2 a connection problem. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <editline/readline.h>

#include "protocol/client.h"
#include "protocol/protocol.h"

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 7878
#define DEFAULT_TIMEOUT_MS 60000
#define HISTORY_FILE ".sousuo_history"
#define HISTORY_MAX 1000

static struct {
	const char *host;
	int port;
	int timeout_ms;
	bool raw;
	bool tty;          /* stdout is a terminal: bold matches, dim metadata */
	const char *password;   /* -a or SOUSUO_PASSWORD: sent as AUTH on connecting */
} opt = { DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TIMEOUT_MS, false, false, NULL };

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: sousuo-cli [-h HOST] [-p PORT] [-t SECONDS] [-a PASSWORD] [--raw] [COMMAND ARGS...]\n"
	        "  -h HOST      server address, or a Unix socket path starting with '/' (default %s)\n"
	        "  -p PORT      server port (default %d)\n"
	        "  -t SECONDS   give up on a reply after this long without progress (default %d)\n"
	        "  -a PASSWORD  AUTH with it on connecting (or SOUSUO_PASSWORD in the environment)\n"
	        "  --raw        print replies exactly as received\n"
	        "  --help       this text\n"
	        "With a COMMAND (e.g. SEARCH 外商投资 负面清单) it runs it and exits: status 0 for\n"
	        "OK, 1 for an ERR reply, 2 for a connection problem.  Without one it opens a\n"
	        "prompt (history in ~/%s); \"exit\" or \"quit\" leaves.\n",
	        DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TIMEOUT_MS / 1000, HISTORY_FILE);
}

/* ---- output helpers ------------------------------------------------------------ */

/* Decodes one UTF-8 sequence at s (n > 0 bytes); returns its length (1 for a
 * bad byte, *cp then 0xFFFD). */
static size_t utf8_next(const unsigned char *s, size_t n, unsigned *cp)
{
	unsigned c = s[0];
	size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
	if (len == 0 || len > n) {
		*cp = 0xFFFD;
		return 1;
	}
	unsigned v = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			*cp = 0xFFFD;
			return 1;
		}
		v = v << 6 | (s[i] & 0x3f);
	}
	*cp = v;
	return len;
}

static bool wide(unsigned cp)
{
	return (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
	       (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
	       (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
	       (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x20000 && cp <= 0x3fffd);
}

/* Columns the text takes on a terminal (CJK counts two). */
static size_t display_width(const char *s, size_t n)
{
	size_t w = 0;
	for (size_t i = 0; i < n;) {
		unsigned cp;
		i += utf8_next((const unsigned char *)s + i, n - i, &cp);
		w += wide(cp) ? 2 : 1;
	}
	return w;
}

static void pad(size_t n)
{
	while (n--)
		putchar(' ');
}

/* Prints a field for people: control bytes become spaces (so a title cannot
 * move the cursor or recolour the terminal); with `indent`, a line feed
 * starts a new line indented that far; with `highlight` on a terminal,
 * 【match】 prints as a bold match. */
static void put_text(const char *s, size_t n, const size_t *indent, bool highlight)
{
	static const char open[] = "\xe3\x80\x90", close_[] = "\xe3\x80\x91";
	bool bold = false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (highlight && opt.tty && n - i >= 3 && memcmp(s + i, open, 3) == 0) {
			fputs("\033[1m", stdout);
			bold = true;
			i += 2;
		} else if (highlight && opt.tty && n - i >= 3 && memcmp(s + i, close_, 3) == 0) {
			fputs("\033[22m", stdout);
			bold = false;
			i += 2;
		} else if (ch == '\n' && indent) {
			putchar('\n');
			pad(*indent);
		} else if (ch < 0x20 || ch == 0x7f) {
			putchar(' ');
		} else {
			putchar(ch);
		}
	}
	if (bold)
		fputs("\033[22m", stdout);
}

static void dim_on(void)  { if (opt.tty) fputs("\033[2m", stdout); }
static void dim_off(void) { if (opt.tty) fputs("\033[0m", stdout); }

/* ---- reply printing ------------------------------------------------------------ */

static void print_raw(const proto_reply *r)
{
	fwrite(r->status, 1, r->status_len, stdout);
	putchar('\n');
	for (uint32_t i = 0; i < r->nlines; i++) {
		fwrite(r->lines[i], 1, r->lens[i], stdout);
		putchar('\n');
	}
}

/* A line whose fields did not unescape: shown as sent. */
static void print_bad_line(const proto_reply *r, uint32_t i)
{
	fputs("(bad line) ", stdout);
	put_text(r->lines[i], strlen(r->lines[i]), NULL, false);
	putchar('\n');
}

/* Lines that are not search hits: "name TAB value" pairs aligned in two
 * columns when every line has two fields, otherwise fields two spaces apart. */
static void print_lines(proto_reply *r)
{
	enum { MAXF = 64 };
	uint32_t n = r->nlines;
	bool pairs = n > 0;
	size_t namew = 0;
	/* Decide the layout on the raw lines (names are rarely escaped). */
	for (uint32_t i = 0; i < n && pairs; i++) {
		const char *tab = memchr(r->lines[i], '\t', r->lens[i]);
		if (!tab || memchr(tab + 1, '\t', r->lens[i] - (size_t)(tab + 1 - r->lines[i])))
			pairs = false;
		else {
			size_t w = display_width(r->lines[i], (size_t)(tab - r->lines[i]));
			if (w > namew)
				namew = w;
		}
	}
	if (namew > 40)
		namew = 40;
	size_t indent = namew + 2;
	for (uint32_t i = 0; i < n; i++) {
		proto_slice f[MAXF];
		ssize_t nf = proto_reply_fields(r, i, f, MAXF);
		if (nf < 0) {
			print_bad_line(r, i);
			continue;
		}
		if (pairs && nf == 2) {
			dim_on();
			put_text(f[0].p, f[0].n, NULL, false);
			dim_off();
			size_t w = display_width(f[0].p, f[0].n);
			pad(w < namew ? namew - w + 2 : 2);
			put_text(f[1].p, f[1].n, &indent, true);
			putchar('\n');
			continue;
		}
		for (size_t k = 0; k < (size_t)nf && k < MAXF; k++) {
			if (k)
				fputs("  ", stdout);
			put_text(f[k].p, f[k].n, NULL, true);
		}
		putchar('\n');
	}
}

static bool word_is(const char *line, const char *word)
{
	while (*line == ' ' || *line == '\t')
		line++;
	size_t n = strlen(word);
	return strncasecmp(line, word, n) == 0 && (line[n] == 0 || line[n] == ' ' || line[n] == '\t');
}

/* "total=132 exact=1 took_us=41" → "132 results (1.2 ms)". */
static void print_search_info(const proto_status *st)
{
	char info[256];
	size_t n = st->info_len < sizeof info - 1 ? st->info_len : sizeof info - 1;
	memcpy(info, st->info, n);
	info[n] = 0;
	unsigned long long total, took;
	int exact;
	if (sscanf(info, "total=%llu exact=%d took_us=%llu", &total, &exact, &took) == 3) {
		printf("%s%llu result%s", exact ? "" : "at least ", total, total == 1 ? "" : "s");
		dim_on();
		printf(" (%.3f ms)", (double)took / 1000.0);
		dim_off();
		putchar('\n');
	} else if (n) {
		put_text(info, n, NULL, false);
		putchar('\n');
	}
}

static void print_search(const char *req, proto_reply *r)
{
	proto_request q;
	proto_error perr;
	print_search_info(&r->st);
	if (proto_parse_request(req, strlen(req), &q, &perr) != 0 || q.cmd != PROTO_CMD_SEARCH) {
		print_lines(r);
		return;
	}
	uint32_t n = r->nlines;
	/* per hit, per proto_field: the value (p NULL when not asked for) */
	proto_slice (*v)[PROTO_NFIELDS] = calloc(n ? n : 1, sizeof *v);
	bool *bad = calloc(n ? n : 1, sizeof *bad);
	if (!v || !bad) {
		free(v);
		free(bad);
		print_raw(r);
		return;
	}
	size_t titlew = 0, rankw = 1;
	for (uint32_t i = 0; i < n; i++) {
		proto_slice f[PROTO_NFIELDS];
		ssize_t nf = proto_reply_fields(r, i, f, PROTO_NFIELDS);
		if (nf != q.opt.nfields) {
			/* not the fields asked for: keep them in order, print them plainly */
			bad[i] = true;
			for (size_t k = 0; nf > 0 && k < (size_t)nf && k < PROTO_NFIELDS; k++)
				v[i][k] = f[k];
			continue;
		}
		for (size_t k = 0; k < q.opt.nfields; k++)
			v[i][q.opt.fields[k]] = f[k];
		const proto_slice *t = v[i][PROTO_F_TITLE].p ? &v[i][PROTO_F_TITLE] : &v[i][PROTO_F_PATH];
		if (t->p) {
			size_t w = display_width(t->p, t->n);
			if (w > titlew)
				titlew = w;
		}
		size_t rw = v[i][PROTO_F_RANK].p ? v[i][PROTO_F_RANK].n : 0;
		if (rw > rankw)
			rankw = rw;
	}
	if (titlew > 60)
		titlew = 60;
	char num[24];
	snprintf(num, sizeof num, "%u", (unsigned)(q.opt.offset + n));
	if (strlen(num) > rankw)
		rankw = strlen(num);
	size_t indent = rankw + 2;
	for (uint32_t i = 0; i < n; i++) {
		if (bad[i]) {
			if (i)
				putchar('\n');
			if (!v[i][0].p) {          /* a bad escape: the line as it came */
				print_bad_line(r, i);
				continue;
			}
			for (size_t k = 0; k < PROTO_NFIELDS && v[i][k].p; k++) {
				if (k)
					fputs("  ", stdout);
				put_text(v[i][k].p, v[i][k].n, NULL, true);
			}
			putchar('\n');
			continue;
		}
		proto_slice *h = v[i];
		if (i)
			putchar('\n');
		if (h[PROTO_F_RANK].p)
			printf("%*.*s. ", (int)(rankw - h[PROTO_F_RANK].n) + (int)h[PROTO_F_RANK].n,
			       (int)h[PROTO_F_RANK].n, h[PROTO_F_RANK].p);
		else
			printf("%*u. ", (int)rankw, (unsigned)(q.opt.offset + i + 1));
		/* line 1: title (or the path), then the date in a column */
		const proto_slice *t = h[PROTO_F_TITLE].p ? &h[PROTO_F_TITLE] : h[PROTO_F_PATH].p ? &h[PROTO_F_PATH] : NULL;
		size_t w = 0;
		if (t) {
			if (opt.tty)
				fputs("\033[1m", stdout);
			put_text(t->p, t->n, NULL, false);
			if (opt.tty)
				fputs("\033[0m", stdout);
			w = display_width(t->p, t->n);
		}
		if (h[PROTO_F_DATE].p && h[PROTO_F_DATE].n) {
			pad(w < titlew ? titlew - w + 2 : 2);
			put_text(h[PROTO_F_DATE].p, h[PROTO_F_DATE].n, NULL, false);
		}
		putchar('\n');
		/* line 2: the path (when the title took line 1), category, id, score */
		bool meta = false;
		if (t == &h[PROTO_F_TITLE] && h[PROTO_F_PATH].p) {
			pad(indent);
			put_text(h[PROTO_F_PATH].p, h[PROTO_F_PATH].n, NULL, false);
			meta = true;
		}
		static const proto_field extra[] = { PROTO_F_CATEGORY, PROTO_F_ID, PROTO_F_SCORE };
		for (size_t k = 0; k < sizeof extra / sizeof extra[0]; k++) {
			const proto_slice *e = &h[extra[k]];
			if (!e->p || !e->n)
				continue;
			if (!meta)
				pad(indent);
			else
				fputs("  ", stdout);
			dim_on();
			if (extra[k] != PROTO_F_CATEGORY)
				printf("%s=", proto_field_name(extra[k]));
			put_text(e->p, e->n, NULL, false);
			dim_off();
			meta = true;
		}
		if (meta)
			putchar('\n');
		/* line 3: the snippet, matches highlighted */
		if (h[PROTO_F_SNIPPET].p && h[PROTO_F_SNIPPET].n) {
			pad(indent);
			put_text(h[PROTO_F_SNIPPET].p, h[PROTO_F_SNIPPET].n, &indent, true);
			putchar('\n');
		}
	}
	free(v);
	free(bad);
}

/* Prints a reply; returns the exit status it stands for (0 OK, 1 ERR). */
static int print_reply(const char *req, proto_reply *r)
{
	if (opt.raw) {
		print_raw(r);
	} else if (!r->ok) {
		printf("(error) %.*s", (int)r->st.code_len, r->st.code_word);
		if (r->st.msg_len) {
			putchar(' ');
			put_text(r->st.msg, r->st.msg_len, NULL, false);
		}
		putchar('\n');
	} else if (word_is(req, "SEARCH")) {
		print_search(req, r);
	} else {
		if (r->st.info_len) {
			put_text(r->st.info, r->st.info_len, NULL, false);
			putchar('\n');
		} else if (r->nlines == 0) {
			puts("OK");
		}
		print_lines(r);
	}
	fflush(stdout);
	return r->ok ? 0 : 1;
}

/* ---- running requests ---------------------------------------------------------- */

static proto_client *connect_or_say(void)
{
	char err[256];
	proto_client *c = proto_client_connect(opt.host, opt.port, opt.timeout_ms, err, sizeof err);
	if (!c) {
		fprintf(stderr, "Could not connect to sousuo-server: %s\n", err);
		return NULL;
	}
	if (opt.password) {
		proto_reply r;
		size_t n = strlen(opt.password) + 6;
		char *line = malloc(n);
		int rc = line ? snprintf(line, n, "AUTH %s", opt.password) < 0 : 1;
		if (rc || proto_client_request(c, line, &r) || !r.ok) {
			fprintf(stderr, "AUTH failed: %s\n", !line ? "out of memory"
			        : proto_client_error(c)[0] ? proto_client_error(c) : r.status);
			free(line);
			proto_client_close(c);
			return NULL;
		}
		free(line);
	}
	return c;
}

/* Sends one request on *cp (connecting if need be) and prints the reply.
 * Returns 0, 1 (ERR) or 2 (connection problem; *cp is then closed). */
static int run(proto_client **cp, const char *req)
{
	bool fresh = false;
	if (!*cp) {
		if (!(*cp = connect_or_say()))
			return 2;
		fresh = true;
	}
	proto_reply r;
	int rc = proto_client_request(*cp, req, &r);
	if (rc == PROTO_CLIENT_EARG) {
		fprintf(stderr, "(error) %s\n", proto_client_error(*cp));
		return 1;
	}
	if (rc != 0 && !fresh && (rc == PROTO_CLIENT_ECLOSED || rc == PROTO_CLIENT_ESYS) &&
	    !word_is(req, "QUIT")) {
		/* The server may have dropped an idle connection: try once more. */
		proto_client_close(*cp);
		if (!(*cp = connect_or_say()))
			return 2;
		rc = proto_client_request(*cp, req, &r);
	}
	if (rc != 0) {
		fprintf(stderr, "(error) connection: %s\n", proto_client_error(*cp));
		proto_client_close(*cp);
		*cp = NULL;
		return 2;
	}
	int status = print_reply(req, &r);
	if (word_is(req, "QUIT")) {
		proto_client_close(*cp);
		*cp = NULL;
	}
	return status;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = 0;
	return s;
}

static bool is_exit(const char *s)
{
	return strcasecmp(s, "exit") == 0 || strcasecmp(s, "quit") == 0;
}

/* stdin is not a terminal: one request per line, no prompt.  The exit status
 * is the worst seen. */
static int run_stdin(void)
{
	proto_client *c = NULL;
	char *line = NULL;
	size_t cap = 0;
	int worst = 0;
	while (getline(&line, &cap, stdin) >= 0) {
		char *s = trim(line);
		if (!*s)
			continue;
		int st = run(&c, s);
		if (st > worst)
			worst = st;
		if (word_is(s, "QUIT"))
			break;
	}
	free(line);
	proto_client_close(c);
	return worst;
}

static int run_prompt(void)
{
	char prompt[300];
	if (opt.host[0] == '/')
		snprintf(prompt, sizeof prompt, "%s> ", opt.host);
	else
		snprintf(prompt, sizeof prompt, "%s:%d> ", opt.host, opt.port);
	char hist[4096] = "";
	const char *home = getenv("HOME");
	if (home && *home)
		snprintf(hist, sizeof hist, "%s/%s", home, HISTORY_FILE);
	using_history();
	stifle_history(HISTORY_MAX);
	if (hist[0])
		read_history(hist);

	proto_client *c = connect_or_say();
	char *line;
	while ((line = readline(prompt)) != NULL) {
		char *s = trim(line);
		if (!*s) {
			free(line);
			continue;
		}
		add_history(s);
		if (hist[0])
			write_history(hist);
		if (is_exit(s)) {
			if (c && strcasecmp(s, "quit") == 0)
				(void)run(&c, "QUIT");
			free(line);
			break;
		}
		(void)run(&c, s);
		free(line);
	}
	proto_client_close(c);
	return 0;
}

int main(int argc, char **argv)
{
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(a, "--raw") == 0) {
			opt.raw = true;
		} else if (strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "-a") == 0 && i + 1 < argc) {
			opt.password = argv[++i];
		} else if ((strcmp(a, "-h") == 0 || strcmp(a, "-p") == 0 || strcmp(a, "-t") == 0)) {
			if (i + 1 >= argc) {
				fprintf(stderr, "sousuo-cli: %s needs a value\n", a);
				usage(stderr);
				return 2;
			}
			const char *v = argv[++i];
			if (a[1] == 'h') {
				opt.host = v;
			} else {
				char *end;
				errno = 0;
				long n = strtol(v, &end, 10);
				long max = a[1] == 'p' ? 65535 : 86400;
				if (errno || *end || end == v || n < (a[1] == 'p' ? 1 : 0) || n > max) {
					fprintf(stderr, "sousuo-cli: bad value for %s: %s\n", a, v);
					return 2;
				}
				if (a[1] == 'p')
					opt.port = (int)n;
				else
					opt.timeout_ms = (int)n * 1000;
			}
		} else if (a[0] == '-' && a[1] == '-') {
			fprintf(stderr, "sousuo-cli: unknown option %s\n", a);
			usage(stderr);
			return 2;
		} else {
			break;
		}
	}
	opt.tty = isatty(STDOUT_FILENO);
	if (!opt.password && getenv("SOUSUO_PASSWORD") && *getenv("SOUSUO_PASSWORD"))
		opt.password = getenv("SOUSUO_PASSWORD");

	if (i < argc) {
		/* one-shot: the arguments joined by spaces are one request */
		size_t len = 0;
		for (int k = i; k < argc; k++)
			len += strlen(argv[k]) + 1;
		char *req = malloc(len + 1);
		if (!req) {
			fprintf(stderr, "sousuo-cli: out of memory\n");
			return 2;
		}
		req[0] = 0;
		char *p = req;
		for (int k = i; k < argc; k++) {
			if (k > i)
				*p++ = ' ';
			size_t n = strlen(argv[k]);
			memcpy(p, argv[k], n + 1);
			p += n;
		}
		proto_client *c = NULL;
		int st = run(&c, req);
		proto_client_close(c);
		free(req);
		return st;
	}
	if (!isatty(STDIN_FILENO))
		return run_stdin();
	return run_prompt();
}
