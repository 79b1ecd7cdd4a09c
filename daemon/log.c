/* log.c — the daemon's stderr log (log.h). */
#include "daemon/log.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A log line is cut to this many bytes, newline included. */
#define LOG_LINE_MAX 1024

static atomic_int min_level = LOGL_INFO;

void log_set_level(log_level lv)
{
	atomic_store(&min_level, (int)lv);
}

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static void log_vmsg(log_level lv, const char *fmt, va_list ap)
{
	if ((int)lv < atomic_load(&min_level))
		return;
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s sousuo-server[%ld]: ",
	                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	                 tm.tm_sec, ts.tv_nsec / 1000000, level_names[lv], (long)getpid());
	if (n < 0 || (size_t)n >= sizeof line)
		return;
	size_t head = (size_t)n;
	int m = vsnprintf(line + head, sizeof line - head - 1, fmt, ap);
	if (m < 0)
		m = 0;
	size_t len = head + (size_t)m;
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	for (size_t i = head; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = ' ';
	line[len++] = '\n';
	ssize_t w = write(2, line, len);
	(void)w;
}

void log_msg(log_level lv, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(lv, fmt, ap);
	va_end(ap);
}

static void libevent_log(int severity, const char *msg)
{
	log_level lv = severity >= EVENT_LOG_ERR ? LOGL_ERROR :
	               severity >= EVENT_LOG_WARN ? LOGL_WARN :
	               severity >= EVENT_LOG_MSG ? LOGL_INFO : LOGL_DEBUG;
	log_msg(lv, "libevent: %s", msg);
}

void log_route_libevent(void)
{
	event_set_log_callback(libevent_log);
}

bool log_due(time_t *last, int seconds)
{
	time_t now = time(NULL);
	if (now - *last < seconds)
		return false;
	*last = now;
	return true;
}
