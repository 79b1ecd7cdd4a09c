/* text.h — the match rules' text layer: UTF-8 decoding, NFKC + case folding
 * (utf8proc), and cutting text into tokens.  Used by the indexer on documents
 * and by the query parser on query terms, so both see text the same way.
 *
 * Rules (DEVELOPERS.md, "Match rules"):
 *  - A CJK character is a Han ideograph: U+3400–4DBF, U+4E00–9FFF,
 *    U+F900–FAFF, U+20000–2FFFF, and U+3007 (〇), judged after normalization.
 *    Each CJK character is one token.
 *  - A word is a maximal run of other letters, digits and combining marks
 *    (Unicode categories L*, N*, M*) after normalization; "2019", "5g", "app".
 *    Words are case-folded and NFKC-normalized ("ＡＰＰ" -> "app").
 *  - Whitespace (Unicode White_Space) between two CJK characters is ignored;
 *    whitespace anywhere else, every other character, and every invalid UTF-8
 *    byte sequence separate tokens.
 *  - Positions: the first token has position 0; each further token has the
 *    previous token's position + 1, or + 2 when a separator came between them
 *    (the "gap").  So "外商投\n\n资" is 外0 商1 投2 资3, "外商，投资" is
 *    外0 商1 投3 资4, and "500万元" is 500@0 万1 元2.  Two tokens are adjacent
 *    (part of one run / one exact sequence) iff their positions differ by 1.
 */
#ifndef SOUSUO_TEXT_H
#define SOUSUO_TEXT_H

#include <stddef.h>
#include <stdint.h>

enum { TEXT_TOK_CJK = 1, TEXT_TOK_WORD = 2 };

typedef struct {
	int kind;            /* TEXT_TOK_CJK or TEXT_TOK_WORD */
	uint32_t cp;         /* CJK: the normalized code point; WORD: 0 */
	const char *word;    /* WORD: normalized UTF-8 bytes, not NUL-terminated,
	                        owned by the tokenizer, valid until its next call;
	                        CJK: NULL */
	size_t word_len;     /* WORD: bytes of word; CJK: 0 */
	uint32_t pos;        /* position, see the rules above */
	size_t src_start;    /* byte range of the original text this token was */
	size_t src_end;      /* made from: [src_start, src_end).  A word's runs
	                        from its first to its last source code point;
	                        code points normalized together (a letter and
	                        its combining marks, Hangul jamo, "㈱" giving
	                        "(株)") share the range of all of them. */
} text_token;

typedef struct text_tokenizer text_tokenizer;

/* Returns a new tokenizer, or NULL when out of memory.  Free it with
 * text_tokenizer_free.  One tokenizer is used by one thread at a time. */
text_tokenizer *text_tokenizer_new(void);
void text_tokenizer_free(text_tokenizer *tk);

/* Starts tokenizing text[0..len).  The text is borrowed: it must stay valid
 * and unchanged until the last text_tokenizer_next call for it.  Any bytes
 * are accepted (NUL and invalid UTF-8 are separators). */
void text_tokenizer_reset(text_tokenizer *tk, const char *text, size_t len);

/* Stores the next token in *out and returns 1, or returns 0 at the end.
 * Tokens are exactly those of normalizing each whole valid stretch of the
 * text at once (utf8proc_map with STABLE | COMPOSE | COMPAT | CASEFOLD) and
 * cutting the result by the rules above, with one exception for hostile
 * text: a run of more than 256 code points that normalization would have to
 * treat as one unit (a letter followed by hundreds of combining marks) is
 * normalized in pieces of 256, which bounds the work per code point.  Words
 * have no length limit; if memory runs out while one grows, it is cut short
 * (there is no error to return). */
int text_tokenizer_next(text_tokenizer *tk, text_token *out);

/* 1 if cp is a CJK character under the rules above, else 0. */
int text_is_cjk(uint32_t cp);

/* Encodes cp as UTF-8 into out (room for 4 bytes); returns the byte count. */
size_t text_utf8_put(char *out, uint32_t cp);

/* Decodes one code point from s[0..len), len > 0.  Returns the number of bytes
 * consumed (1..4) and stores the code point in *cp; an invalid or truncated
 * sequence consumes 1 byte and stores UINT32_MAX. */
size_t text_utf8_get(const char *s, size_t len, uint32_t *cp);

/* 1 if s[0..len) is valid UTF-8 (no surrogates, no overlongs, <= U+10FFFF). */
int text_utf8_valid(const char *s, size_t len);

#endif
