/* commands.h — the server's commands: one request line in, one reply out,
 * through the engine.  No I/O: conn.c feeds it lines and sends what it
 * writes.  One cmd_ctx per worker thread holds that thread's engine, store
 * and snippet contexts and scratch buffers, reused for every request. */
#ifndef SOUSUO_DAEMON_COMMANDS_H
#define SOUSUO_DAEMON_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/config.h"
#include "daemon/index_holder.h"
#include "daemon/stats.h"
#include "protocol/protocol.h"

typedef struct cmd_ctx cmd_ctx;

/* holder, stats and cfg are borrowed and must outlive the ctx.  NULL when
 * out of memory. */
cmd_ctx *cmd_ctx_new(index_holder *holder, server_stats *stats, const server_config *cfg);
void cmd_ctx_free(cmd_ctx *c);

/* One client's state across its requests (a connection; for HTTP, one
 * request): whether it has given the --requirepass password. */
typedef struct {
	bool authed;
	unsigned auth_failures;
} cmd_session;

/* Wrong AUTH passwords a connection may give before it is closed, so that
 * guessing costs a connection per few tries. */
#define CMD_MAX_AUTH_FAILURES 3

/* Constant-time comparison of a password given by a client with the
 * configured one: the time depends on the configured one's length only. */
bool cmd_password_ok(const char *given, size_t given_len, const char *secret);

typedef enum {
	CMD_KEEP,    /* the connection stays open */
	CMD_CLOSE    /* close it once the reply is sent (QUIT, TOOLONG) */
} cmd_after;

/* Runs one request line, given without its "\n" / "\r\n", and writes its
 * whole reply into out (reset first; empty for a blank line).  Counts the
 * request and any error in the stats.  The line must stay valid during the
 * call only.  With --requirepass, a session that has not authenticated may
 * only run AUTH, PING, HELP and QUIT (others: ERR AUTH). */
cmd_after cmd_execute(cmd_ctx *c, cmd_session *s, const char *line, size_t len, proto_buf *out);

/* Writes the TOOLONG reply (for a line the reader could not find the end of
 * within max_line bytes) and counts it. */
void cmd_toolong(cmd_ctx *c, size_t max_line, proto_buf *out);

/* The reply to a connection whose partial line is dropped because the
 * worker's connections hold their share of --max-input-total (ERR BUSY). */
void cmd_input_full(cmd_ctx *c, proto_buf *out);

#endif
