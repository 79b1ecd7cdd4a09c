/* protocol.h — the line protocol of docs/PROTOCOL.md: request parsing (the
 * daemon), reply writing (the daemon) and reply parsing (sousuo-cli, the
 * benchmark).  Pure functions: no I/O, no global state, and the parsers never
 * allocate (they point into the caller's line); only proto_buf grows. */
#ifndef SOUSUO_PROTOCOL_H
#define SOUSUO_PROTOCOL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

/* ---- limits (PROTOCOL.md quotes these; change both together) -------------- */

/* Longest request line in bytes, its "\n" included.  proto_parse_request gets
 * the line without its terminator, so it accepts len <= PROTO_MAX_LINE - 1;
 * the server's reader must also refuse (ERR TOOLONG, then close) a line it
 * could not find the end of within PROTO_MAX_LINE bytes. */
#define PROTO_MAX_LINE   65536
/* SEARCH limit=: most hits in one reply; bounds the reply's size. */
#define PROTO_MAX_LIMIT  1000
/* SEARCH offset=: deepest page; the engine keeps offset+limit hits in a heap. */
#define PROTO_MAX_OFFSET 10000
/* SEARCH limit= when not given. */
#define PROTO_DEFAULT_LIMIT 10
/* Room for proto_error.msg, NUL included; longer messages are cut. */
#define PROTO_MAX_MESSAGE 200

/* ---- requests --------------------------------------------------------------- */

typedef enum {
	PROTO_CMD_PING,
	PROTO_CMD_SEARCH,
	PROTO_CMD_COUNT,
	PROTO_CMD_GET,
	PROTO_CMD_STATS,
	PROTO_CMD_RELOAD,
	PROTO_CMD_HELP,
	PROTO_CMD_QUIT,
	PROTO_CMD_AUTH,
	PROTO_NCMDS
} proto_cmd;

/* The command word in capitals ("SEARCH"); "?" for a bad value. */
const char *proto_cmd_name(proto_cmd cmd);

/* SEARCH fields=, in the default order. */
typedef enum {
	PROTO_F_RANK,
	PROTO_F_ID,
	PROTO_F_SCORE,
	PROTO_F_TITLE,
	PROTO_F_PATH,
	PROTO_F_CATEGORY,
	PROTO_F_DATE,
	PROTO_F_SNIPPET,
	PROTO_NFIELDS
} proto_field;

/* The field's name as in fields= ("title"); "?" for a bad value. */
const char *proto_field_name(proto_field f);

typedef enum { PROTO_SORT_RELEVANCE, PROTO_SORT_DATE } proto_sort;

typedef struct {
	uint32_t limit;                   /* 0..PROTO_MAX_LIMIT, default 10 */
	uint32_t offset;                  /* 0..PROTO_MAX_OFFSET, default 0 */
	proto_sort sort;                  /* default relevance */
	bool snippet;                     /* default on */
	bool total_exact;                 /* total=exact (default) or fast */
	uint8_t nfields;                  /* 1..PROTO_NFIELDS, no repeats */
	uint8_t fields[PROTO_NFIELDS];    /* proto_field values, in reply order */
} proto_search_opts;

typedef struct {
	proto_cmd cmd;
	/* SEARCH, COUNT: the query; AUTH: the password.  Points into the parsed
	 * line (so valid while the line is); never empty, no leading or trailing
	 * spaces/tabs. */
	const char *query;
	size_t query_len;
	proto_search_opts opt;            /* SEARCH (defaults for the others) */
	uint64_t id;                      /* GET */
} proto_request;

/* Error codes; proto_errcode_word gives the word on the wire. */
typedef enum {
	PROTO_E_UNKNOWN = 1,
	PROTO_E_ARGS,
	PROTO_E_QUERY,
	PROTO_E_UTF8,
	PROTO_E_NOTFOUND,
	PROTO_E_BUSY,
	PROTO_E_TOOLONG,
	PROTO_E_INTERNAL,
	PROTO_E_AUTH,        /* added after INTERNAL: codes keep their numbers */
} proto_errcode;
#define PROTO_E_LAST PROTO_E_AUTH

/* "UNKNOWN", "ARGS", ...; "INTERNAL" for a value outside the enum. */
const char *proto_errcode_word(proto_errcode code);

typedef struct {
	proto_errcode code;
	char msg[PROTO_MAX_MESSAGE];      /* one line for people, never empty */
} proto_error;

/* Parses one request line, given without its "\n" or "\r\n".
 * Returns 0 and fills *out; 1 for an empty or blank line (send no reply);
 * -1 and fills *err (TOOLONG: the server closes after replying).
 * Option names and values are ASCII case-insensitive like command words. */
int proto_parse_request(const char *line, size_t len, proto_request *out, proto_error *err);

/* Sets err->code and formats err->msg (cut to fit, control bytes replaced);
 * returns -1 so parsers can `return proto_fail(...)`. */
int proto_fail(proto_error *err, proto_errcode code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- reply writing ------------------------------------------------------------ */

/* A growable byte buffer for replies.  Appends that run out of memory set
 * `failed` and drop the bytes, so a writer checks once at the end. */
typedef struct {
	char *p;
	size_t len, cap;
	bool failed;
} proto_buf;

void proto_buf_init(proto_buf *b);
void proto_buf_free(proto_buf *b);
/* Empties the buffer, keeping its memory, and clears `failed`. */
void proto_buf_reset(proto_buf *b);
/* The slow path of every append: makes room for `need` more bytes.  0 or -1. */
int proto_buf_grow(proto_buf *b, size_t need);

static inline int proto_buf_append(proto_buf *b, const void *s, size_t n)
{
	if (n > b->cap - b->len && proto_buf_grow(b, n) != 0)
		return -1;
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	return 0;
}

/* "OK <nlines> <info>\n"; info is printf-formatted, and any control byte in
 * it becomes a space so the status stays one line.  NULL or "" info writes
 * "OK <nlines>\n". */
int proto_put_ok(proto_buf *b, unsigned nlines, const char *info_fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "ERR <CODE> <message>\n", control bytes in the message made spaces. */
int proto_put_err(proto_buf *b, proto_errcode code, const char *message);
/* The same for a parse error. */
int proto_put_error(proto_buf *b, const proto_error *err);
/* One field, escaped as PROTOCOL.md says. */
int proto_put_field(proto_buf *b, const char *s, size_t n);
int proto_put_tab(proto_buf *b);
int proto_put_eol(proto_buf *b);
/* v in decimal, as printf's "%llu" writes it. */
int proto_put_uint(proto_buf *b, uint64_t v);
/* v in decimal, zero-padded to at least width digits ("%0*llu"), width <= 20. */
int proto_put_uint_pad(proto_buf *b, uint64_t v, unsigned width);
/* x with four decimals, byte for byte as printf's "%.4f" writes it (the
 * score field: printf took a tenth of the server's instructions there). */
int proto_put_fixed4(proto_buf *b, double x);

/* ---- reply parsing (client side) ---------------------------------------------- */

typedef struct {
	bool ok;
	uint32_t nlines;          /* OK: lines that follow */
	const char *info;         /* OK: the info, maybe empty (points into line) */
	size_t info_len;
	proto_errcode code;       /* ERR: the code; INTERNAL for a word we don't know */
	const char *code_word;    /* ERR: the code as sent */
	size_t code_len;
	const char *msg;          /* ERR: the message, maybe empty */
	size_t msg_len;
} proto_status;

/* Parses a status line given without its terminator: 0, or -1 if it is not
 * "OK <n>[ <info>]" or "ERR <CODE>[ <message>]" (single spaces, n decimal
 * below 2^32, CODE a capital then capitals or digits). */
int proto_parse_status(const char *line, size_t len, proto_status *st);

/* Undoes proto_put_field: returns the length written to out, -1 on a bad
 * escape, -2 if out is too small (cap >= n always suffices).  out may be s. */
ssize_t proto_unescape(const char *s, size_t n, char *out, size_t cap);

typedef struct {
	const char *p;
	size_t n;
} proto_slice;

/* Splits a reply line at its TABs into at most `max` slices (still escaped);
 * returns the number of fields in the line, which may exceed max (only the
 * first max are stored).  An empty line is one empty field. */
size_t proto_split_fields(const char *line, size_t len, proto_slice *fields, size_t max);

/* ==== incremental reply scanning (protocol/reply_scan.c) ====================== */

/* Frames a stream of pipelined replies without keeping them, for the load
 * generator (bench/benchmark_main.c): the caller feeds whatever bytes arrived,
 * split anywhere, and learns where each reply ends and whether it was OK or
 * ERR.  The status line goes through proto_parse_status; the n lines of an OK
 * reply are only counted, so a reply of any size costs no memory.  Pure: no
 * I/O, no allocation, no global state; one proto_scan per connection. */

/* Longest status line, its "\n" or "\r\n" excluded.  An ERR line is a code
 * word and a message of about PROTO_MAX_MESSAGE bytes, an OK line's info a
 * few name=value words: a longer line means the stream is not replies. */
#define PROTO_SCAN_MAX_STATUS 1024
/* Longest ERR code word kept in proto_scan_reply.code_word; longer is cut. */
#define PROTO_SCAN_MAX_CODE   23

typedef enum {
	PROTO_SCAN_MORE,      /* every byte was consumed and no reply ended */
	PROTO_SCAN_REPLY,     /* a reply ended with the last byte consumed */
	PROTO_SCAN_BAD,       /* a status line proto_parse_status refuses */
	PROTO_SCAN_TOOLONG,   /* a status line over PROTO_SCAN_MAX_STATUS */
} proto_scan_result;

/* What proto_scan_feed found.  The reply fields are set for REPLY only. */
typedef struct {
	proto_scan_result result;
	bool ok;                                  /* OK or ERR */
	uint32_t nlines;                          /* OK: the lines that followed */
	proto_errcode code;                       /* ERR: INTERNAL for a word we don't know */
	char code_word[PROTO_SCAN_MAX_CODE + 1];  /* ERR: as sent (cut), NUL-terminated */
} proto_scan_reply;

/* Scanner state; the fields are private. */
typedef struct {
	proto_scan_result broken;       /* MORE, or the BAD/TOOLONG that lost the framing */
	uint32_t lines_left;            /* lines of the OK reply in progress still to come */
	uint32_t nlines;                /* that reply's n */
	uint32_t status_len;            /* bytes of a split status line held in status[] */
	char status[PROTO_SCAN_MAX_STATUS + 1];   /* +1: its "\r" */
} proto_scan;

/* Starts a scanner at the beginning of a reply stream (also to reuse one). */
void proto_scan_init(proto_scan *s);

/* Consumes bytes of the stream up to the end of the first reply that ends
 * within buf[0..len).  Returns the number of bytes consumed and sets
 * out->result: REPLY (the reply ended at buf[returned - 1]; call again for
 * the rest of buf) or MORE (all len bytes consumed, the reply goes on in the
 * next feed).  Returns -1 with BAD or TOOLONG when a status line is
 * malformed or too long: the framing is lost, and every later feed returns
 * -1 with the same result until proto_scan_init. */
ssize_t proto_scan_feed(proto_scan *s, const char *buf, size_t len, proto_scan_reply *out);

#endif
