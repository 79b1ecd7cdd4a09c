/* test_text.c — unit tests of indexer/text.c, checked against a reference built on utf8proc_map. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "indexer/text.h"
#include "tests/text_ref.h"

/* ---- token lists -------------------------------------------------------- */

typedef struct {
	int kind;
	uint32_t cp;
	size_t word_off, word_len; /* into the list's byte arena */
	uint32_t pos;
	size_t src_start, src_end;
} tok;

typedef struct {
	tok *t;
	size_t n, cap;
	char *bytes;               /* words, back to back */
	size_t nbytes, bytes_cap;
} tok_list;

static void list_free(tok_list *l)
{
	free(l->t);
	free(l->bytes);
	memset(l, 0, sizeof *l);
}

static void list_push(tok_list *l, int kind, uint32_t cp, const char *w,
		      size_t wlen, uint32_t pos, size_t s, size_t e)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->t = realloc(l->t, l->cap * sizeof *l->t);
		assert_non_null(l->t);
	}
	if (l->bytes_cap - l->nbytes < wlen + 1) {
		while (l->bytes_cap - l->nbytes < wlen + 1)
			l->bytes_cap = l->bytes_cap ? l->bytes_cap * 2 : 64;
		l->bytes = realloc(l->bytes, l->bytes_cap);
		assert_non_null(l->bytes);
	}
	tok *t = &l->t[l->n++];
	t->kind = kind;
	t->cp = cp;
	t->word_off = l->nbytes;
	t->word_len = wlen;
	if (wlen)
		memcpy(l->bytes + l->nbytes, w, wlen);
	l->nbytes += wlen;
	l->bytes[l->nbytes] = 0;
	t->pos = pos;
	t->src_start = s;
	t->src_end = e;
}

/* Tokenizes s[0..len) with the tokenizer under test.  It reads a copy in a
 * heap block of exactly len bytes, so that the sanitizer catches any read
 * past the end. */
static void run_tokenizer(text_tokenizer *tk, const char *s, size_t len, tok_list *l)
{
	text_token t;
	char *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	if (len)
		memcpy(copy, s, len);
	text_tokenizer_reset(tk, copy, len);
	while (text_tokenizer_next(tk, &t)) {
		if (t.kind == TEXT_TOK_CJK) {
			assert_null(t.word);
			assert_int_equal(t.word_len, 0);
		} else {
			assert_int_equal(t.kind, TEXT_TOK_WORD);
			assert_int_equal(t.cp, 0);
			assert_true(t.word_len > 0);
		}
		list_push(l, t.kind, t.cp, t.word, t.word_len, t.pos, t.src_start, t.src_end);
	}
	/* The end is sticky. */
	assert_int_equal(text_tokenizer_next(tk, &t), 0);
	free(copy);
}

/* ---- the reference (tests/text_ref.h) ----------------------------------- */

/* utf8proc_map of a valid stretch; the result is malloc'd, *out_len bytes. */
static char *ref_map(const char *s, size_t len, size_t *out_len)
{
	utf8proc_uint8_t *dst = NULL;
	utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s,
					  (utf8proc_ssize_t)len, &dst, TEXT_REF_NORM);
	assert_true(n >= 0);
	*out_len = (size_t)n;
	return (char *)dst;
}

static void ref_push(void *l, int kind, uint32_t cp, const char *w, size_t wlen, uint32_t pos)
{
	list_push(l, kind, cp, w, wlen, pos, 0, 0);
}

static void ref_tokenize(const char *s, size_t len, tok_list *l)
{
	assert_int_equal(text_ref_tokenize(s, len, ref_push, l), 0);
}

/* Prints s as escaped bytes, for failure messages. */
static void dump_bytes(const char *what, const char *s, size_t len)
{
	fprintf(stderr, "%s (%zu bytes): \"", what, len);
	for (size_t i = 0; i < len && i < 400; i++)
		fprintf(stderr, "\\x%02x", (unsigned char)s[i]);
	fprintf(stderr, "\"\n");
}

static void dump_list(const char *what, const tok_list *l)
{
	fprintf(stderr, "%s:", what);
	for (size_t i = 0; i < l->n && i < 60; i++) {
		const tok *t = &l->t[i];
		if (t->kind == TEXT_TOK_CJK)
			fprintf(stderr, " U+%04X@%u", t->cp, t->pos);
		else
			fprintf(stderr, " \"%.*s\"@%u", (int)t->word_len, l->bytes + t->word_off, t->pos);
	}
	fprintf(stderr, "\n");
}

static int lists_equal(const tok_list *a, const tok_list *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++) {
		const tok *x = &a->t[i], *y = &b->t[i];
		if (x->kind != y->kind || x->cp != y->cp || x->pos != y->pos ||
		    x->word_len != y->word_len ||
		    memcmp(a->bytes + x->word_off, b->bytes + y->word_off, x->word_len))
			return 0;
	}
	return 1;
}

/* Source ranges are in bounds, start in order, and normalizing the range
 * alone yields the token. */
static int src_ranges_ok(const char *s, size_t len, const tok_list *l)
{
	size_t prev = 0;
	for (size_t i = 0; i < l->n; i++) {
		const tok *t = &l->t[i];
		if (t->src_start >= t->src_end || t->src_end > len || t->src_start < prev)
			return 0;
		prev = t->src_start;
		if (!text_utf8_valid(s + t->src_start, t->src_end - t->src_start))
			return 0;
		size_t mlen;
		char *m = ref_map(s + t->src_start, t->src_end - t->src_start, &mlen);
		char cjk[4];
		const char *needle = l->bytes + t->word_off;
		size_t nlen = t->word_len;
		if (t->kind == TEXT_TOK_CJK) {
			nlen = text_utf8_put(cjk, t->cp);
			needle = cjk;
		}
		int found = memmem(m, mlen, needle, nlen) != NULL;
		free(m);
		if (!found)
			return 0;
	}
	return 1;
}

/* Tokenizes s both ways and fails the test on any difference. */
static void check_against_ref(text_tokenizer *tk, const char *s, size_t len)
{
	tok_list got = { 0 }, want = { 0 };
	run_tokenizer(tk, s, len, &got);
	ref_tokenize(s, len, &want);
	if (!lists_equal(&got, &want)) {
		dump_bytes("input", s, len);
		dump_list("got ", &got);
		dump_list("want", &want);
		fail_msg("tokenizer differs from the reference");
	}
	if (!src_ranges_ok(s, len, &got)) {
		dump_bytes("input", s, len);
		fail_msg("bad source range");
	}
	list_free(&got);
	list_free(&want);
}

/* ---- expectations written out by hand ---------------------------------- */

/* One expected token: a word ("..."), or a CJK character when word is NULL. */
typedef struct {
	const char *word;
	uint32_t cp;
	uint32_t pos;
} want_tok;

#define W(w, p) { (w), 0, (p) }
#define C(c, p) { NULL, (c), (p) }

static void expect_n(const char *s, size_t len, const want_tok *w, size_t n)
{
	text_tokenizer *tk = text_tokenizer_new();
	tok_list got = { 0 };
	assert_non_null(tk);
	run_tokenizer(tk, s, len, &got);
	int ok = got.n == n;
	for (size_t i = 0; ok && i < n; i++) {
		const tok *t = &got.t[i];
		if (w[i].word)
			ok = t->kind == TEXT_TOK_WORD && t->word_len == strlen(w[i].word) &&
			     !memcmp(got.bytes + t->word_off, w[i].word, t->word_len);
		else
			ok = t->kind == TEXT_TOK_CJK && t->cp == w[i].cp;
		ok = ok && t->pos == w[i].pos;
	}
	if (!ok) {
		dump_bytes("input", s, len);
		dump_list("got", &got);
		fail_msg("unexpected tokens");
	}
	assert_true(src_ranges_ok(s, len, &got));
	check_against_ref(tk, s, len);
	list_free(&got);
	text_tokenizer_free(tk);
}

#define EXPECT(s, ...)                                                         \
	do {                                                                   \
		static const want_tok w_[] = { __VA_ARGS__ };                  \
		expect_n((s), sizeof(s) - 1, w_, sizeof w_ / sizeof *w_);      \
	} while (0)
#define EXPECT_NONE(s) expect_n((s), sizeof(s) - 1, NULL, 0)

/* Tokenizes s and returns the tokens (caller frees with list_free). */
static tok_list tokens_of(const char *s, size_t len)
{
	text_tokenizer *tk = text_tokenizer_new();
	tok_list l = { 0 };
	assert_non_null(tk);
	run_tokenizer(tk, s, len, &l);
	text_tokenizer_free(tk);
	return l;
}

/* ---- tests -------------------------------------------------------------- */

static void test_empty_and_separators(void **state)
{
	EXPECT_NONE("");
	EXPECT_NONE("，。、！？ \n\t\r；：（）《》“”——……");
	EXPECT_NONE("\x80\xff\xc0");
	EXPECT_NONE("\0\0 \x1f\x7f");
	EXPECT_NONE("\xe3\x80\x80 \xc2\xa0\xe2\x80\xa8");  /* U+3000, U+00A0, U+2028 */
	EXPECT_NONE("😀👍🏻");                           /* symbols separate */

	text_tokenizer *tk = text_tokenizer_new();
	text_token t;
	assert_non_null(tk);
	text_tokenizer_reset(tk, NULL, 0);
	assert_int_equal(text_tokenizer_next(tk, &t), 0);
	text_tokenizer_free(tk);
	text_tokenizer_free(NULL);
}

static void test_is_cjk(void **state)
{
	assert_true(text_is_cjk(0x4E00));
	assert_true(text_is_cjk(0x9FFF));
	assert_true(text_is_cjk(0x3400));
	assert_true(text_is_cjk(0x4DBF));
	assert_true(text_is_cjk(0xF900));
	assert_true(text_is_cjk(0xFAFF));
	assert_true(text_is_cjk(0x20000));
	assert_true(text_is_cjk(0x2FFFF));
	assert_true(text_is_cjk(0x3007));
	assert_false(text_is_cjk(0x4DC0));
	assert_false(text_is_cjk(0x33FF));
	assert_false(text_is_cjk(0x3006));
	assert_false(text_is_cjk(0x3001));
	assert_false(text_is_cjk(0x30000));
	assert_false(text_is_cjk('a'));
	assert_false(text_is_cjk(0x2F00));  /* Kangxi radical: CJK only once normalized */
	assert_false(text_is_cjk(UINT32_MAX));
}

static void test_basic_positions(void **state)
{
	EXPECT("外商投\n\n资", C(0x5916, 0), C(0x5546, 1), C(0x6295, 2), C(0x8D44, 3));
	EXPECT("外商，投资", C(0x5916, 0), C(0x5546, 1), C(0x6295, 3), C(0x8D44, 4));
	EXPECT("500万元", W("500", 0), C(0x4E07, 1), C(0x5143, 2));
	EXPECT("第3条", C(0x7B2C, 0), W("3", 1), C(0x6761, 2));
	EXPECT("hello world", W("hello", 0), W("world", 2));
	EXPECT("  a,,b  ", W("a", 0), W("b", 2));
	EXPECT("〇一", C(0x3007, 0), C(0x4E00, 1));
}

static void test_whitespace_gaps(void **state)
{
	/* Whitespace between two CJK characters is no gap... */
	EXPECT("外 \t商", C(0x5916, 0), C(0x5546, 1));
	EXPECT("外\xe3\x80\x80商", C(0x5916, 0), C(0x5546, 1));   /* U+3000 */
	EXPECT("外\xc2\xa0商", C(0x5916, 0), C(0x5546, 1));       /* U+00A0 */
	EXPECT("外\xe2\x80\xa8商", C(0x5916, 0), C(0x5546, 1));   /* U+2028 */
	/* ...but it is next to a word, and with a separator among it. */
	EXPECT("外商 app", C(0x5916, 0), C(0x5546, 1), W("app", 3));
	EXPECT("app 外", W("app", 0), C(0x5916, 2));
	EXPECT("外 。 商", C(0x5916, 0), C(0x5546, 2));
	EXPECT("外\x80商", C(0x5916, 0), C(0x5546, 2));
	/* Adjacent word and CJK have no gap. */
	EXPECT("5g网络", W("5g", 0), C(0x7F51, 1), C(0x7EDC, 2));
	/* U+200B is not White_Space: it separates. */
	EXPECT("外\xe2\x80\x8b商", C(0x5916, 0), C(0x5546, 2));
}

static void test_fullwidth(void **state)
{
	EXPECT("ＡＰＰ２０１９", W("app2019", 0));
	EXPECT("使用ＡＰＰ。", C(0x4F7F, 0), C(0x7528, 1), W("app", 2));
	EXPECT("（一）", C(0x4E00, 0));
	EXPECT("ａ，ｂ", W("a", 0), W("b", 2));
	EXPECT("ｶﾞ", W("\xe3\x82\xac", 0));   /* half-width kana + voiced mark -> ガ */
}

static void test_compatibility(void **state)
{
	EXPECT("㈱", C(0x682A, 0));                         /* (株) */
	EXPECT("a㈱b", W("a", 0), C(0x682A, 2), W("b", 4));
	EXPECT("①", W("1", 0));
	EXPECT("①②", W("12", 0));
	EXPECT("ﬁle", W("file", 0));
	EXPECT("\xef\xa4\x80", C(0x8C48, 0));                /* U+F900 */
	EXPECT("\xef\xa8\x8e", C(0xFA0E, 0));                /* stays itself */
	EXPECT("\xe2\xbc\x80\xe2\xbc\x88", C(0x4E00, 0), C(0x4EBA, 1)); /* Kangxi ⼀⼈ */
	EXPECT("\xf0\xaf\xa0\x80", C(0x4E3D, 0));            /* U+2F800 */
	EXPECT("Ⅲ期", W("iii", 0), C(0x671F, 1));
	EXPECT("km²", W("km2", 0));
	EXPECT("\xef\xb7\xba", W("\xd8\xb5\xd9\x84\xd9\x89", 0),
	       W("\xd8\xa7\xd9\x84\xd9\x84\xd9\x87", 2), W("\xd8\xb9\xd9\x84\xd9\x8a\xd9\x87", 4),
	       W("\xd9\x88\xd8\xb3\xd9\x84\xd9\x85", 6));   /* U+FDFA, 4 words */
}

static void test_case_folding(void **state)
{
	EXPECT("HeLLo", W("hello", 0));
	EXPECT("Straße STRASSE", W("strasse", 0), W("strasse", 2));
	EXPECT("\xe1\xba\x9e", W("ss", 0));                   /* ẞ */
	EXPECT("\xce\x9f\xce\x94\xce\x9f\xce\xa3 \xce\xbf\xce\xb4\xce\xbf\xcf\x82",
	       W("\xce\xbf\xce\xb4\xce\xbf\xcf\x83", 0),
	       W("\xce\xbf\xce\xb4\xce\xbf\xcf\x83", 2));   /* ΟΔΟΣ οδος: final sigma folds */
	EXPECT("\xc4\xb0", W("i\xcc\x87", 0));                /* İ */
	EXPECT("\xc7\x85", W("d\xc5\xbe", 0));                /* ǅ -> dž */
	EXPECT("\xe2\x84\xab", W("\xc3\xa5", 0));               /* U+212B ANGSTROM SIGN */
}

static void test_composition(void **state)
{
	EXPECT("e\xcc\x81", W("\xc3\xa9", 0));                       /* é */
	EXPECT("cafe\xcc\x81 bar", W("caf\xc3\xa9", 0), W("bar", 2));
	EXPECT("E\xcc\x81", W("\xc3\xa9", 0));
	EXPECT("a\xcc\x81\xcc\x81", W("\xc3\xa1\xcc\x81", 0));
	EXPECT("\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8", W("\xea\xb0\x81", 0)); /* 각 */
	EXPECT("\xea\xb0\x80\xe1\x86\xa8", W("\xea\xb0\x81", 0));     /* 가 + ᆨ */
	EXPECT("か\xe3\x82\x99", W("が", 0));
	EXPECT_NONE("<\xcc\xb8");                         /* ≮ is a symbol */
	/* A mark after a CJK character is a word of its own, right after. */
	EXPECT("中\xcc\x81", C(0x4E2D, 0), W("\xcc\x81", 1));
	/* No composition across an invalid byte. */
	EXPECT("e\x80\xcc\x81", W("e", 0), W("\xcc\x81", 2));
	/* Canonical reordering: ccc 220 below goes before ccc 230 above. */
	EXPECT("a\xcc\x81\xcc\xa3", W("\xe1\xba\xa1\xcc\x81", 0));
}

static void test_invalid_bytes(void **state)
{
	EXPECT("ab\x80" "cd", W("ab", 0), W("cd", 2));          /* lone continuation */
	EXPECT("\x80" "ab", W("ab", 0));
	EXPECT("ab\x80", W("ab", 0));
	EXPECT("ab\xc3", W("ab", 0));                            /* truncated 2-byte */
	EXPECT("ab\xe4\xb8", W("ab", 0));                        /* truncated 3-byte */
	EXPECT("ab\xf0\x9f\x98", W("ab", 0));                    /* truncated 4-byte */
	EXPECT_NONE("\xe4\xb8");
	EXPECT("a\xc0\xaf" "b", W("a", 0), W("b", 2));           /* overlong '/' */
	EXPECT("a\xe0\x80\xaf" "b", W("a", 0), W("b", 2));       /* overlong, 3 bytes */
	EXPECT("a\xed\xa0\x80" "b", W("a", 0), W("b", 2));       /* surrogate D800 */
	EXPECT("a\xf4\x90\x80\x80" "b", W("a", 0), W("b", 2));   /* U+110000 */
	EXPECT("a\xf5\x80\x80\x80" "b", W("a", 0), W("b", 2));
	EXPECT("a\xfe\xff" "b", W("a", 0), W("b", 2));
	EXPECT("a\0b", W("a", 0), W("b", 2));                    /* NUL */
	EXPECT("外\xe4\xb8" "商", C(0x5916, 0), C(0x5546, 2));  /* truncated between CJK */
	EXPECT("外\xe4\xb8", C(0x5916, 0));
	EXPECT("\xe4\xb8\xe4\xb8\xad", C(0x4E2D, 0));            /* bad prefix, then 中 */
	EXPECT("中\xcc", C(0x4E2D, 0));
	EXPECT("e\xcc", W("e", 0));
}

static void test_src_offsets(void **state)
{
	/* "a 外商Ｂｃ\xcc\x81 ㈱" */
	static const char s[] = "a \xe5\xa4\x96\xe5\x95\x86\xef\xbc\xa2\xef\xbd\x83\xcc\x81 \xe3\x88\xb1";
	tok_list l = tokens_of(s, sizeof s - 1);
	assert_int_equal(l.n, 5);
	assert_int_equal(l.t[0].src_start, 0);
	assert_int_equal(l.t[0].src_end, 1);
	assert_int_equal(l.t[1].src_start, 2);   /* 外 */
	assert_int_equal(l.t[1].src_end, 5);
	assert_int_equal(l.t[2].src_start, 5);   /* 商 */
	assert_int_equal(l.t[2].src_end, 8);
	assert_int_equal(l.t[3].src_start, 8);   /* Ｂｃ + U+0301 -> "bć" */
	assert_int_equal(l.t[3].src_end, 16);
	assert_int_equal(l.t[3].word_len, 3);
	assert_memory_equal(l.bytes + l.t[3].word_off, "b\xc4\x87", 3);
	assert_int_equal(l.t[4].kind, TEXT_TOK_CJK); /* 株 from ㈱ */
	assert_int_equal(l.t[4].cp, 0x682A);
	assert_int_equal(l.t[4].src_start, 17);
	assert_int_equal(l.t[4].src_end, 20);
	assert_int_equal(l.t[4].pos, 6);   /* "(" before 株 is a separator */
	list_free(&l);

	/* A word ends at its last source code point, not at what follows. */
	static const char s2[] = "\x80xyz\x80";
	l = tokens_of(s2, sizeof s2 - 1);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.t[0].src_start, 1);
	assert_int_equal(l.t[0].src_end, 4);
	list_free(&l);
}

static void test_long_word(void **state)
{
	size_t n = 1 << 20;
	char *s = malloc(n + 8);
	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		s[i] = (char)('A' + i % 26);
	memcpy(s + n, "\xe4\xb8\xad" "x", 4);   /* then 中 and "x" */
	tok_list l = tokens_of(s, n + 4);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.t[0].word_len, n);
	for (size_t i = 0; i < n; i++)
		if (l.bytes[l.t[0].word_off + i] != (char)('a' + i % 26))
			fail_msg("byte %zu of the long word", i);
	assert_int_equal(l.t[0].src_end, n);
	assert_int_equal(l.t[1].cp, 0x4E2D);
	assert_int_equal(l.t[1].pos, 1);
	assert_int_equal(l.t[2].pos, 2);
	list_free(&l);

	/* A long word that goes through utf8proc segment by segment. */
	size_t reps = (1 << 20) / 3;
	for (size_t i = 0; i < reps; i++)
		memcpy(s + 3 * i, "e\xcc\x81", 3);
	l = tokens_of(s, 3 * reps);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.t[0].word_len, 2 * reps);
	assert_int_equal(l.t[0].src_end, 3 * reps);
	list_free(&l);
	free(s);
}

/* Hundreds of thousands of combining marks in a row: no hang, no crash, and
 * the marks still come out as one word (the segment cap in text.c cuts the
 * normalization, not the word). */
static void test_long_mark_run(void **state)
{
	size_t marks = 200000;
	char *s = malloc(1 + 2 * marks);
	assert_non_null(s);
	s[0] = 'a';
	for (size_t i = 0; i < marks; i++)
		memcpy(s + 1 + 2 * i, i % 2 ? "\xcc\xa3" : "\xcc\x81", 2); /* 0323, 0301 */
	tok_list l = tokens_of(s, 1 + 2 * marks);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.t[0].kind, TEXT_TOK_WORD);
	assert_int_equal(l.t[0].src_start, 0);
	assert_int_equal(l.t[0].src_end, 1 + 2 * marks);
	assert_true(l.t[0].word_len >= 2 * marks - 2);
	list_free(&l);
	free(s);
}

/* One tokenizer reused over many texts, and reset in the middle of one. */
static void test_reuse(void **state)
{
	text_tokenizer *tk = text_tokenizer_new();
	text_token t;
	assert_non_null(tk);
	text_tokenizer_reset(tk, "abc def", 7);
	assert_int_equal(text_tokenizer_next(tk, &t), 1);
	assert_int_equal(t.pos, 0);
	text_tokenizer_reset(tk, "，外", 6);
	assert_int_equal(text_tokenizer_next(tk, &t), 1);
	assert_int_equal(t.kind, TEXT_TOK_CJK);
	assert_int_equal(t.pos, 0);
	assert_int_equal(t.src_start, 3);
	assert_int_equal(text_tokenizer_next(tk, &t), 0);
	text_tokenizer_reset(tk, "x", 1);
	assert_int_equal(text_tokenizer_next(tk, &t), 1);
	assert_int_equal(t.word_len, 1);
	assert_memory_equal(t.word, "x", 1);
	assert_int_equal(text_tokenizer_next(tk, &t), 0);
	text_tokenizer_free(tk);
}

/* The code points text.c answers without a property lookup (this list is
 * inert_fast_class's) really are left alone by normalization and cannot
 * compose with a neighbour. */
static void test_fast_path_is_inert(void **state)
{
	static const uint32_t ranges[][2] = {
		{ 0x3400, 0x4DBF }, { 0x4E00, 0x9FFF }, { 0x3001, 0x3002 },
		{ 0x3007, 0x3007 }, { 0x3008, 0x3011 }, { 0x3014, 0x301B },
		{ 0x2018, 0x2019 }, { 0x201C, 0x201D }, { 0x2014, 0x2014 },
	};
	for (size_t r = 0; r < sizeof ranges / sizeof *ranges; r++) {
		for (uint32_t cp = ranges[r][0]; cp <= ranges[r][1]; cp++) {
			const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
			if (p->decomp_seqindex != UINT16_MAX || p->casefold_seqindex != UINT16_MAX ||
			    p->combining_class != 0 || p->comb_index != UINT16_MAX)
				fail_msg("U+%04X is not inert", cp);
		}
	}
	/* Full-width ASCII maps onto ASCII (then folds), U+3000 onto space. */
	for (uint32_t cp = 0xFF01; cp <= 0xFF5E; cp++) {
		char in[4], want[2] = { 0 };
		size_t n = text_utf8_put(in, cp), mlen;
		char *m = ref_map(in, n, &mlen);
		want[0] = (char)(cp - 0xFEE0);
		if (want[0] >= 'A' && want[0] <= 'Z')
			want[0] += 'a' - 'A';
		assert_int_equal(mlen, 1);
		assert_int_equal(m[0], want[0]);
		free(m);
	}
}

/* Every code point alone, and between neighbours it could compose with,
 * tokenizes as the reference does.  This checks where text.c lets
 * normalization restart (its "boundary" rule) for every code point. */
static void test_every_code_point(void **state)
{
	/* X goes between the two halves of each pair, and all pairs go into
	 * one text per code point (X alone is checked too). */
	static const char *const ctx[][2] = {
		{ "e", "\xcc\x81" },                  /* e _ U+0301 */
		{ "\xe1\x84\x80", "\xe1\x85\xa1" },   /* L jamo _ V jamo */
		{ "\xea\xb0\x80", "\xe1\x86\xa8" },   /* LV syllable _ T jamo */
		{ "\xe3\x81\x8b", "\xe3\x82\x99" },   /* か _ U+3099 */
		{ "\xe0\xb7\x99", "\xe0\xb7\x8f" },   /* U+0DD9 _ U+0DCF */
		{ "\xe0\xb3\x86", "\xe0\xb3\x95" },   /* U+0CC6 _ U+0CD5 */
		{ "<", "." },
	};
	text_tokenizer *tk = text_tokenizer_new();
	assert_non_null(tk);
	for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
		if (cp >= 0xD800 && cp <= 0xDFFF)
			continue;
		/* Beyond plane 3 only the special-purpose plane has data. */
		if (cp == 0x40000)
			cp = 0xE0000;
		if (cp == 0xE1000)
			break;
		char s[128];
		size_t n = text_utf8_put(s, cp);
		check_against_ref(tk, s, n);
		n = 0;
		for (size_t c = 0; c < sizeof ctx / sizeof *ctx; c++) {
			n += (size_t)sprintf(s + n, "%s", ctx[c][0]);
			n += text_utf8_put(s + n, cp);
			n += (size_t)sprintf(s + n, "%s", ctx[c][1]);
		}
		check_against_ref(tk, s, n);
	}
	text_tokenizer_free(tk);
}

/* ---- randomized differential test ---------------------------------------- */

/* xorshift64*: a fixed-seed generator owned by the test. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/* Pieces the random texts are made of; strings so invalid bytes fit too. */
static const char *const pool[] = {
	/* ASCII */
	"a", "b", "e", "E", "Z", "s", "S", "i", "I", "0", "5", "9", " ", "\n", "\t",
	",", ".", "<", "=", ">", "-", "_", "\x1f", "\x7f",
	/* CJK, CJK punctuation, ideographic space */
	"外", "商", "投", "资", "一", "中", "〇", "，", "。", "、", "《", "》", "“", "”",
	"\xe3\x80\x80", "\xe2\x80\x94",
	/* full-width forms */
	"Ａ", "ｐ", "Ｐ", "２", "０", "（", "）", "；", "．", "－",
	/* combining marks: acute, diaeresis, cedilla, dot below, horn,
	 * ypogegrammeni (folds to iota), overlay, kana voiced/semi-voiced */
	"\xcc\x81", "\xcc\x88", "\xcc\xa7", "\xcc\xa3", "\xcc\x9b", "\xcd\x85",
	"\xcc\xb8", "\xe3\x82\x99", "\xe3\x82\x9a", "\xef\xbe\x9e",
	/* compatibility ideographs, Kangxi radicals */
	"\xef\xa4\x80", "\xef\xa8\x8e", "\xef\xa8\x90", "\xf0\xaf\xa0\x80",
	"\xe2\xbc\x80", "\xe2\xbc\x88", "\xe2\xba\x9f",
	/* Hangul: L, V, T (incl. U+11A7), LV, LVT, old jamo */
	"\xe1\x84\x80", "\xe1\x84\x81", "\xe1\x85\xa1", "\xe1\x85\xa2",
	"\xe1\x86\xa7", "\xe1\x86\xa8", "\xe1\x86\xa9", "\xea\xb0\x80",
	"\xea\xb0\x81", "\xe1\x85\x9f", "\xea\xa5\xa0",
	/* kana, half-width kana */
	"か", "は", "カ", "ハ", "ｶ", "ﾊ",
	/* assorted compatibility and case-folding characters */
	"㈱", "①", "ﬁ", "ß", "\xe1\xba\x9e", "Σ", "σ", "ς", "ΐ", "\xe1\xba\x9b",
	"\xe2\x84\xab", "\xe2\x84\xa6", "\xc4\xb0", "\xef\xb7\xba", "Ⅲ", "²", "…",
	"\xc7\x85", "\xcd\x84", "\xe0\xbd\xb3",
	/* Indic two-part vowels: Sinhala, Oriya, Kannada */
	"\xe0\xb7\x99", "\xe0\xb7\x8f", "\xe0\xb7\x8a", "\xe0\xad\x87",
	"\xe0\xac\xbe", "\xe0\xb3\x86", "\xe0\xb3\x95",
	/* other spaces and controls */
	"\xc2\x85", "\xc2\xa0", "\xe2\x80\xa8", "\xe2\x80\x8b", "\xe2\x80\x82",
	/* emoji, skin tone, variation selector */
	"😀", "👍", "\xf0\x9f\x8f\xbb", "\xef\xb8\x8f",
	/* invalid bytes and sequences */
	"\x80", "\xbf", "\xc0", "\xc3", "\xe4\xb8", "\xf0\x9f\x98", "\xc0\xaf",
	"\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff", "\xf8",
};

static void test_random_differential(void **state)
{
	uint64_t seed = 0x5EED5EED1234ULL;
	size_t npool = sizeof pool / sizeof *pool;
	text_tokenizer *tk = text_tokenizer_new();
	char s[512];
	assert_non_null(tk);
	for (int iter = 0; iter < 30000; iter++) {
		size_t pieces = rng_next(&seed) % 40, n = 0;
		/* Some texts draw from a small slice of the pool so that rare
		 * neighbours (mark after mark, jamo after jamo) meet often. */
		size_t lo = 0, span = npool;
		if (iter % 2) {
			lo = rng_next(&seed) % npool;
			span = 1 + rng_next(&seed) % 12;
		}
		for (size_t i = 0; i < pieces; i++) {
			const char *p = pool[(lo + rng_next(&seed) % span) % npool];
			size_t pl = strlen(p);
			memcpy(s + n, p, pl);
			n += pl;
		}
		check_against_ref(tk, s, n);
	}
	text_tokenizer_free(tk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_and_separators),
		cmocka_unit_test(test_is_cjk),
		cmocka_unit_test(test_basic_positions),
		cmocka_unit_test(test_whitespace_gaps),
		cmocka_unit_test(test_fullwidth),
		cmocka_unit_test(test_compatibility),
		cmocka_unit_test(test_case_folding),
		cmocka_unit_test(test_composition),
		cmocka_unit_test(test_invalid_bytes),
		cmocka_unit_test(test_src_offsets),
		cmocka_unit_test(test_long_word),
		cmocka_unit_test(test_long_mark_run),
		cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_fast_path_is_inert),
		cmocka_unit_test(test_every_code_point),
		cmocka_unit_test(test_random_differential),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
