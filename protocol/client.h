/* client.h — the client library of the line protocol (docs/PROTOCOL.md), used
 * by sousuo-cli and the benchmark.  Plain POSIX sockets (TCP, or a Unix socket
 * when the host starts with '/'), buffered and pipelined: any number of
 * proto_client_send calls, one proto_client_flush, then one
 * proto_client_read_reply per request, in order.
 *
 * Every wait (connect, each write, each read) is bounded by the client's
 * timeout through poll(2): the timeout is the longest time the client waits
 * without the socket making progress.  Errors come back as a negative
 * PROTO_CLIENT_E* code with a message (proto_client_error); the library never
 * aborts, exits or raises SIGPIPE.  After any error except PROTO_CLIENT_EARG
 * the connection is broken (the framing is lost) and every later call returns
 * the same error: close it and connect again.
 *
 * Memory is bounded: a reply line longer than PROTO_CLIENT_MAX_LINE bytes or
 * a reply over PROTO_CLIENT_MAX_REPLY bytes in all is an error (ETOOBIG). */
#ifndef SOUSUO_CLIENT_H
#define SOUSUO_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "protocol/protocol.h"

/* Longest reply line, its terminator excluded. */
#define PROTO_CLIENT_MAX_LINE  (16u << 20)
/* Most bytes one reply may take in the client (its lines plus bookkeeping). */
#define PROTO_CLIENT_MAX_REPLY (256u << 20)

enum {
	PROTO_CLIENT_OK       = 0,
	PROTO_CLIENT_ESYS     = -1, /* a socket call failed (connect refused, reset, ...) */
	PROTO_CLIENT_ETIMEOUT = -2, /* no progress within the timeout */
	PROTO_CLIENT_ECLOSED  = -3, /* the server closed the connection (between or inside replies) */
	PROTO_CLIENT_EPROTO   = -4, /* a malformed reply (bad status line, ...) */
	PROTO_CLIENT_ETOOBIG  = -5, /* a reply line or reply over the limits above */
	PROTO_CLIENT_ENOMEM   = -6, /* out of memory */
	PROTO_CLIENT_EARG     = -7, /* a bad argument (request holding a newline, ...); not fatal */
};

/* A short name for a code: "ESYS", "ETIMEOUT", ... */
const char *proto_client_strcode(int code);

typedef struct proto_client proto_client;

/* One reply.  Filled by proto_client_read_reply; every pointer points into
 * memory of the client and stays valid until the next proto_client_read_reply
 * or proto_client_close on that client (sends and flushes keep it valid). */
typedef struct {
	bool ok;               /* OK (true) or ERR (false) */
	proto_status st;       /* the parsed status line (points into `status`) */
	const char *status;    /* the status line, no "\n"/"\r\n", NUL-terminated */
	size_t status_len;
	uint32_t nlines;       /* the lines that followed: st.nlines for OK, 0 for ERR */
	char **lines;          /* nlines lines, no terminator, NUL-terminated, still escaped */
	size_t *lens;          /* their lengths */
	unsigned char *split_; /* private: which lines proto_reply_fields has done */
} proto_reply;

/* Connects to host:port (a name or address; TCP_NODELAY is set), or to the
 * Unix socket at path `host` if it starts with '/' (port is then ignored).
 * timeout_ms bounds connecting and every later wait; 0 or less means no
 * timeout.  Returns the client, or NULL with a message in err (errlen bytes,
 * NUL-terminated; err may be NULL). */
proto_client *proto_client_connect(const char *host, int port, int timeout_ms,
                                   char *err, size_t errlen);

/* Closes the socket and frees everything, the last reply included.  NULL is fine. */
void proto_client_close(proto_client *c);

/* Changes the timeout (milliseconds; 0 or less: none). */
void proto_client_set_timeout(proto_client *c, int timeout_ms);

/* Appends `line` and "\n" to the output buffer.  The line must not hold
 * "\n" or "\r" (EARG).  Writes when the buffer passes 64 KiB; otherwise
 * nothing goes out before proto_client_flush.  0 or a negative code. */
int proto_client_send(proto_client *c, const char *line);
int proto_client_sendn(proto_client *c, const char *line, size_t len);

/* Writes the whole output buffer.  While the socket is full it also reads
 * what the server sends into free buffer room, so a long pipeline does not
 * deadlock.  0 or a negative code. */
int proto_client_flush(proto_client *c);

/* Flushes, then reads one reply: a status line and, for OK, its n lines.
 * Returns 0 (check r->ok: an ERR reply is a success here) or a negative
 * code; on failure *r is emptied. */
int proto_client_read_reply(proto_client *c, proto_reply *r);

/* send + read_reply: one request, one reply. */
int proto_client_request(proto_client *c, const char *line, proto_reply *r);

/* The message of the last error ("" if none). */
const char *proto_client_error(const proto_client *c);

/* Splits line i of r at its TABs and unescapes every field in place: the
 * line is changed, each field becomes NUL-terminated (a field may still hold
 * NUL bytes from "\x00"; use the length).  Stores the first `max` fields in
 * fields[] and returns the number of fields in the line (may exceed max);
 * -1 for a bad escape (the line is then left untouched), an i out of
 * range, or a line already split. */
ssize_t proto_reply_fields(proto_reply *r, uint32_t i, proto_slice *fields, size_t max);

#endif
