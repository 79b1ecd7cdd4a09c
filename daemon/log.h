/* log.h — the daemon's log: one line per event on stderr, with a time, a
 * level and the process id.  Thread-safe (each line is one write(2)).  Used by
 * every daemon file; libevent's own messages are routed here too. */
#ifndef SOUSUO_DAEMON_LOG_H
#define SOUSUO_DAEMON_LOG_H

#include <stdbool.h>
#include <time.h>

typedef enum { LOGL_DEBUG, LOGL_INFO, LOGL_WARN, LOGL_ERROR } log_level;

/* Lines below this level are dropped (default LOGL_INFO). */
void log_set_level(log_level lv);

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ LEVEL sousuo-server[PID]: message\n";
 * control bytes in the message become spaces, long messages are cut. */
void log_msg(log_level lv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* For an event that may repeat many times a second (an accept error):
 * true, and *last set to now, when *last is at least `seconds` ago.  *last
 * belongs to one thread. */
bool log_due(time_t *last, int seconds);

/* Sends libevent's warnings and errors to log_msg. */
void log_route_libevent(void);

#endif
