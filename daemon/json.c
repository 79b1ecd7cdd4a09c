/* json.c — the JSON writer (json.h). */
#include "daemon/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return len;
}

void json_str(proto_buf *b, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	proto_buf_append(b, "\"", 1);
	size_t run = 0;   /* bytes of s[i-run..i) to copy as they are */
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		const char *esc = NULL;
		char u[8];
		size_t k = 1;
		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			run++, i++;
			continue;
		}
		if (c >= 0x80) {
			k = utf8_len(s + i, n - i);
			if (k) {
				run += k, i += k;
				continue;
			}
			esc = "\\ufffd";
			k = 1;
		} else {
			switch (c) {
			case '"': esc = "\\\""; break;
			case '\\': esc = "\\\\"; break;
			case '\b': esc = "\\b"; break;
			case '\f': esc = "\\f"; break;
			case '\n': esc = "\\n"; break;
			case '\r': esc = "\\r"; break;
			case '\t': esc = "\\t"; break;
			default:
				snprintf(u, sizeof u, "\\u%04x", c);
				esc = u;
			}
		}
		proto_buf_append(b, s + i - run, run);
		run = 0;
		proto_buf_append(b, esc, strlen(esc));
		i += k;
	}
	proto_buf_append(b, s + n - run, run);
	proto_buf_append(b, "\"", 1);
}

void json_cstr(proto_buf *b, const char *s)
{
	json_str(b, s ? s : "", s ? strlen(s) : 0);
}

void json_key(proto_buf *b, const char *key)
{
	json_cstr(b, key);
	proto_buf_append(b, ":", 1);
}

void json_raw(proto_buf *b, const char *s)
{
	proto_buf_append(b, s, strlen(s));
}

void json_u64(proto_buf *b, uint64_t v)
{
	char t[24];
	int k = snprintf(t, sizeof t, "%" PRIu64, v);
	proto_buf_append(b, t, (size_t)k);
}
