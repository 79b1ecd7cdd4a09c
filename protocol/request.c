/* request.c — the daemon's request parser (protocol.h): one line to a
 * proto_request or a proto_error.  Called by sousuo-server per line read.
 * It only splits words and checks options; the query language is parsed later
 * by search/query.c, so here a query is just the non-empty rest of the line. */
#include <stdio.h>

#include "protocol/protocol.h"

/* Commands are data: argument counts are checked in one place (check_arity),
 * so a new command is one row here plus its case in proto_parse_request.
 * ARGS_REST: the arguments are the rest of the line (a query). */
#define ARGS_REST (-1)

typedef struct {
	const char *name;
	proto_cmd cmd;
	int min_args, max_args;
	const char *need;         /* what a missing argument is, for the message */
	const char *usage;
} command_def;

static const command_def commands[] = {
	{ "PING",   PROTO_CMD_PING,   0, 0,         NULL,      "PING" },
	{ "SEARCH", PROTO_CMD_SEARCH, 1, ARGS_REST, "a query", "SEARCH [option=value ...] [--] <query>" },
	{ "COUNT",  PROTO_CMD_COUNT,  1, ARGS_REST, "a query", "COUNT <query>" },
	{ "GET",    PROTO_CMD_GET,    1, 1,         "an id",   "GET <id>" },
	{ "STATS",  PROTO_CMD_STATS,  0, 0,         NULL,      "STATS" },
	{ "RELOAD", PROTO_CMD_RELOAD, 0, 0,         NULL,      "RELOAD" },
	{ "HELP",   PROTO_CMD_HELP,   0, 0,         NULL,      "HELP" },
	{ "QUIT",   PROTO_CMD_QUIT,   0, 0,         NULL,      "QUIT" },
	{ "AUTH",   PROTO_CMD_AUTH,   1, ARGS_REST, "a password", "AUTH <password>" },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const char *const field_names[PROTO_NFIELDS] = {
	"rank", "id", "score", "title", "path", "category", "date", "snippet",
};

static const char *const errcode_words[] = {
	[PROTO_E_UNKNOWN] = "UNKNOWN",   [PROTO_E_ARGS] = "ARGS",
	[PROTO_E_QUERY] = "QUERY",       [PROTO_E_UTF8] = "UTF8",
	[PROTO_E_NOTFOUND] = "NOTFOUND", [PROTO_E_BUSY] = "BUSY",
	[PROTO_E_TOOLONG] = "TOOLONG",   [PROTO_E_INTERNAL] = "INTERNAL",
	[PROTO_E_AUTH] = "AUTH",
};

const char *proto_cmd_name(proto_cmd cmd)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (commands[i].cmd == cmd)
			return commands[i].name;
	return "?";
}

const char *proto_field_name(proto_field f)
{
	return (unsigned)f < PROTO_NFIELDS ? field_names[f] : "?";
}

const char *proto_errcode_word(proto_errcode code)
{
	if ((unsigned)code < sizeof errcode_words / sizeof errcode_words[0] && errcode_words[code])
		return errcode_words[code];
	return "INTERNAL";
}

int proto_fail(proto_error *err, proto_errcode code, const char *fmt, ...)
{
	err->code = code;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		err->msg[0] = 0;
	/* The message goes on a status line: keep it one line. */
	for (char *p = err->msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	if (!err->msg[0])
		snprintf(err->msg, sizeof err->msg, "error");
	return -1;
}

/* ---- small scanners -------------------------------------------------------------- */

static bool is_sep(char c) { return c == ' ' || c == '\t'; }

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }

/* ASCII case-insensitive compare of a word with a lowercase or uppercase name. */
static bool word_is(const char *w, size_t n, const char *name)
{
	size_t i = 0;
	for (; i < n && name[i]; i++)
		if (lower(w[i]) != lower(name[i]))
			return false;
	return i == n && !name[i];
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF) and no
 * NUL.  Returns the offset of the first bad byte, or len if all is well. */
static size_t check_utf8(const unsigned char *s, size_t len, bool *nul)
{
	size_t i = 0;
	*nul = false;
	while (i < len) {
		unsigned c = s[i];
		if (c < 0x80) {
			if (c == 0) {
				*nul = true;
				return i;
			}
			i++;
			continue;
		}
		size_t need;
		unsigned lo = 0x80, hi = 0xbf;  /* range of the second byte */
		if (c >= 0xc2 && c <= 0xdf) need = 1;
		else if (c == 0xe0) { need = 2; lo = 0xa0; }
		else if (c == 0xed) { need = 2; hi = 0x9f; }
		else if (c >= 0xe1 && c <= 0xef) need = 2;
		else if (c == 0xf0) { need = 3; lo = 0x90; }
		else if (c == 0xf4) { need = 3; hi = 0x8f; }
		else if (c >= 0xf1 && c <= 0xf3) need = 3;
		else return i;
		if (len - i <= need)
			return i;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return i;
		for (size_t k = 2; k <= need; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
		i += need + 1;
	}
	return len;
}

/* The next word at or after *pos: returns its start and sets *wlen, moving
 * *pos past it; NULL when only separators remain. */
static const char *next_word(const char *line, size_t len, size_t *pos, size_t *wlen)
{
	size_t i = *pos;
	while (i < len && is_sep(line[i]))
		i++;
	if (i == len) {
		*pos = i;
		return NULL;
	}
	size_t start = i;
	while (i < len && !is_sep(line[i]))
		i++;
	*pos = i;
	*wlen = i - start;
	return line + start;
}

/* Quotes a piece of user input into a message: at most 40 bytes, cut at a
 * UTF-8 boundary (the line was validated), "..." when cut. */
static int quoted_len(const char *w, size_t n, const char **ell)
{
	*ell = "";
	if (n <= 40)
		return (int)n;
	size_t k = 40;
	while (k > 0 && ((unsigned char)w[k] & 0xc0) == 0x80)
		k--;
	*ell = "...";
	return (int)k;
}

/* Decimal digits only, into a uint64; false on anything else or overflow
 * (*overflow tells which). */
static bool parse_u64(const char *s, size_t n, uint64_t *v, bool *overflow)
{
	*overflow = false;
	if (n == 0)
		return false;
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (x > (UINT64_MAX - d) / 10) {
			/* keep checking that the rest are digits, so "99..9x" is not a number */
			for (size_t k = i + 1; k < n; k++)
				if (s[k] < '0' || s[k] > '9')
					return false;
			*overflow = true;
			return false;
		}
		x = x * 10 + d;
	}
	*v = x;
	return true;
}

/* ---- SEARCH options -------------------------------------------------------------- */

enum { OPT_LIMIT, OPT_OFFSET, OPT_SORT, OPT_SNIPPET, OPT_FIELDS, OPT_TOTAL, NOPTS };
static const char *const option_names[NOPTS] = {
	"limit", "offset", "sort", "snippet", "fields", "total",
};

static int parse_bounded(const char *v, size_t n, uint32_t max, uint32_t *out,
                         const char *name, proto_error *err)
{
	uint64_t x;
	bool ovf;
	if (!parse_u64(v, n, &x, &ovf) || x > max)
		return proto_fail(err, PROTO_E_ARGS, "%s must be 0..%u", name, (unsigned)max);
	*out = (uint32_t)x;
	return 0;
}

static int parse_fields(const char *v, size_t n, proto_search_opts *o, proto_error *err)
{
	bool seen[PROTO_NFIELDS] = { false };
	o->nfields = 0;
	size_t i = 0;
	for (;;) {
		size_t start = i;
		while (i < n && v[i] != ',')
			i++;
		const char *f = v + start;
		size_t fl = i - start;
		if (fl == 0)
			return proto_fail(err, PROTO_E_ARGS, "fields: empty field name (fields are "
			                  "rank,id,score,title,path,category,date,snippet)");
		int k = -1;
		for (int j = 0; j < PROTO_NFIELDS; j++)
			if (word_is(f, fl, field_names[j]))
				k = j;
		if (k < 0) {
			const char *ell;
			int ql = quoted_len(f, fl, &ell);
			return proto_fail(err, PROTO_E_ARGS, "fields: unknown field \"%.*s%s\" (fields are "
			                  "rank,id,score,title,path,category,date,snippet)", ql, f, ell);
		}
		if (seen[k])
			return proto_fail(err, PROTO_E_ARGS, "fields: \"%s\" given twice", field_names[k]);
		seen[k] = true;
		o->fields[o->nfields++] = (uint8_t)k;
		if (i == n)
			return 0;
		i++;  /* the comma */
	}
}

/* One option's value into *o. */
static int parse_option(int opt, const char *v, size_t n, proto_search_opts *o, proto_error *err)
{
	switch (opt) {
	case OPT_LIMIT:
		return parse_bounded(v, n, PROTO_MAX_LIMIT, &o->limit, "limit", err);
	case OPT_OFFSET:
		return parse_bounded(v, n, PROTO_MAX_OFFSET, &o->offset, "offset", err);
	case OPT_SORT:
		if (word_is(v, n, "relevance")) o->sort = PROTO_SORT_RELEVANCE;
		else if (word_is(v, n, "date")) o->sort = PROTO_SORT_DATE;
		else return proto_fail(err, PROTO_E_ARGS, "sort must be relevance or date");
		return 0;
	case OPT_SNIPPET:
		if (word_is(v, n, "on")) o->snippet = true;
		else if (word_is(v, n, "off")) o->snippet = false;
		else return proto_fail(err, PROTO_E_ARGS, "snippet must be on or off");
		return 0;
	case OPT_FIELDS:
		return parse_fields(v, n, o, err);
	case OPT_TOTAL:
		if (word_is(v, n, "exact")) o->total_exact = true;
		else if (word_is(v, n, "fast")) o->total_exact = false;
		else return proto_fail(err, PROTO_E_ARGS, "total must be exact or fast");
		return 0;
	}
	return proto_fail(err, PROTO_E_INTERNAL, "bad option index");
}

static void default_opts(proto_search_opts *o)
{
	o->limit = PROTO_DEFAULT_LIMIT;
	o->offset = 0;
	o->sort = PROTO_SORT_RELEVANCE;
	o->snippet = true;
	o->total_exact = true;
	o->nfields = PROTO_NFIELDS;
	for (int i = 0; i < PROTO_NFIELDS; i++)
		o->fields[i] = (uint8_t)i;
}

/* The query: the rest of the line from pos, trimmed; an empty one is an error. */
static int take_query(const char *line, size_t len, size_t pos, const command_def *c,
                      proto_request *out, proto_error *err)
{
	while (pos < len && is_sep(line[pos]))
		pos++;
	size_t end = len;
	while (end > pos && is_sep(line[end - 1]))
		end--;
	if (end == pos)
		return proto_fail(err, PROTO_E_ARGS, "%s needs %s", c->name, c->need);
	out->query = line + pos;
	out->query_len = end - pos;
	return 0;
}

/* Options are name=value words up to the first word that is not one, or "--". */
static int parse_search(const char *line, size_t len, size_t pos, const command_def *c,
                        proto_request *out, proto_error *err)
{
	bool given[NOPTS] = { false };
	for (;;) {
		size_t after = pos, wl;
		const char *w = next_word(line, len, &after, &wl);
		if (!w)
			break;
		if (wl == 2 && w[0] == '-' && w[1] == '-') {
			pos = after;
			break;
		}
		const char *eq = memchr(w, '=', wl);
		if (!eq)
			break;
		size_t nl = (size_t)(eq - w);
		int opt = -1;
		for (int k = 0; k < NOPTS; k++)
			if (word_is(w, nl, option_names[k]))
				opt = k;
		if (opt < 0)
			break;  /* not an option: the query starts here */
		if (given[opt])
			return proto_fail(err, PROTO_E_ARGS, "option \"%s\" given twice", option_names[opt]);
		given[opt] = true;
		if (parse_option(opt, eq + 1, wl - nl - 1, &out->opt, err) != 0)
			return -1;
		pos = after;
	}
	return take_query(line, len, pos, c, out, err);
}

/* The one place argument counts are checked.  A ARGS_REST command only needs
 * its minimum here; its parser checks the rest (the query may be missing). */
static int check_arity(const char *line, size_t len, size_t pos, const command_def *c,
                       proto_error *err)
{
	int n = 0;
	size_t wl;
	int cap = c->max_args == ARGS_REST ? c->min_args : c->max_args + 1;
	while (n < cap && next_word(line, len, &pos, &wl))
		n++;
	if (n < c->min_args)
		return proto_fail(err, PROTO_E_ARGS, "%s needs %s (usage: %s)", c->name, c->need, c->usage);
	if (c->max_args != ARGS_REST && n > c->max_args) {
		if (c->max_args == 0)
			return proto_fail(err, PROTO_E_ARGS, "%s takes no arguments", c->name);
		return proto_fail(err, PROTO_E_ARGS, "%s takes %d argument%s (usage: %s)", c->name,
		                  c->max_args, c->max_args == 1 ? "" : "s", c->usage);
	}
	return 0;
}

int proto_parse_request(const char *line, size_t len, proto_request *out, proto_error *err)
{
	/* Length first: it is the one error that closes the connection, and it
	 * keeps the scans below bounded. */
	if (len > PROTO_MAX_LINE - 1)
		return proto_fail(err, PROTO_E_TOOLONG, "line is over %d bytes", PROTO_MAX_LINE);
	bool nul;
	size_t bad = check_utf8((const unsigned char *)line, len, &nul);
	if (bad < len)
		return proto_fail(err, PROTO_E_UTF8, nul ? "NUL byte at byte %zu" :
		                  "invalid UTF-8 at byte %zu", bad + 1);

	size_t pos = 0, wl;
	const char *w = next_word(line, len, &pos, &wl);
	if (!w)
		return 1;

	memset(out, 0, sizeof *out);
	default_opts(&out->opt);

	const command_def *c = NULL;
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (word_is(w, wl, commands[i].name))
			c = &commands[i];
	if (!c) {
		const char *ell;
		int ql = quoted_len(w, wl, &ell);
		return proto_fail(err, PROTO_E_UNKNOWN, "unknown command \"%.*s%s\" (try HELP)", ql, w, ell);
	}
	out->cmd = c->cmd;
	if (check_arity(line, len, pos, c, err) != 0)
		return -1;

	switch (c->cmd) {
	case PROTO_CMD_SEARCH:
		return parse_search(line, len, pos, c, out, err);
	case PROTO_CMD_COUNT:
	case PROTO_CMD_AUTH:
		return take_query(line, len, pos, c, out, err);
	case PROTO_CMD_GET: {
		const char *a = next_word(line, len, &pos, &wl);
		bool ovf;
		if (!parse_u64(a, wl, &out->id, &ovf)) {
			if (ovf)
				return proto_fail(err, PROTO_E_ARGS, "id is over %llu",
				                  (unsigned long long)UINT64_MAX);
			const char *ell;
			int ql = quoted_len(a, wl, &ell);
			return proto_fail(err, PROTO_E_ARGS, "id must be a decimal number, not \"%.*s%s\"",
			                  ql, a, ell);
		}
		return 0;
	}
	default:
		return 0;
	}
}
