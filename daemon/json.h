/* json.h — a small JSON writer into a proto_buf (RFC 8259): strings are
 * escaped (\" \\ \b \f \n \r \t, \u00XX for other control bytes, and
 * \ufffd for each byte that does not start valid UTF-8); valid UTF-8
 * passes through.  The caller places the commas and colons. */
#ifndef SOUSUO_DAEMON_JSON_H
#define SOUSUO_DAEMON_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/protocol.h"

/* A JSON string literal, quotes included, for n bytes of s. */
void json_str(proto_buf *b, const char *s, size_t n);
/* The same for a NUL-terminated string (NULL writes ""). */
void json_cstr(proto_buf *b, const char *s);
/* "key": (the key escaped like a string). */
void json_key(proto_buf *b, const char *key);
/* Raw text, for punctuation and literals. */
void json_raw(proto_buf *b, const char *s);
void json_u64(proto_buf *b, uint64_t v);

#endif
