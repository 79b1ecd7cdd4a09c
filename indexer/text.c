/* text.c — the tokenizer of text.h: text to CJK characters and words (indexer, query parser). */

/* How it stays exact and fast.  The reference result is utf8proc_map(STABLE |
 * COMPOSE | COMPAT | CASEFOLD) over each whole valid stretch of the text, then
 * classified and cut.  Normalization can only reach across the point before a
 * code point whose mapping starts with a non-starter, with a starter that
 * canonically composes onto what precedes it, or with a Hangul vowel or
 * trailing jamo; before any other code point (a "boundary") the text can be
 * normalized in independent pieces.  So the scanner splits the input into
 * segments: one code point plus the code points after it that have no
 * boundary before them.  A segment of one code point whose mapping is one
 * code point (ASCII, Han ideographs, CJK punctuation, full-width forms, most
 * other characters) is mapped without utf8proc's string functions; any other
 * segment goes through utf8proc_decompose + utf8proc_normalize_utf32 into a
 * preallocated buffer.  The cutter then classifies the normalized code points
 * and applies the token and position rules.  A token's source range is that
 * of the segments it came from, so a character composed from several code
 * points ("e" + U+0301) covers all of them. */
#include "indexer/text.h"

#include <stdlib.h>
#include <utf8proc.h>

#define NORM_OPTIONS (UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD)

/* A run of code points with no boundary between them is normalized as one
 * segment of at most this many code points; a longer run (only pathological
 * text has one: hundreds of combining marks in a row) is cut here.  The cap
 * bounds the buffer below and utf8proc's quadratic canonical reordering. */
#define SEG_MAX_CPS 256
/* The longest normalization of one code point (U+FDFA, 18 code points). */
#define MAP_MAX_CPS 18
#define NBUF_CAP ((size_t)SEG_MAX_CPS * MAP_MAX_CPS)

/* Stands for one invalid UTF-8 byte in the normalized stream; a separator. */
#define INVALID_CP UINT32_MAX

/* Hangul jamo that utf8proc's composition glues onto a preceding syllable or
 * leading consonant (its VBASE/VCOUNT and TBASE/TCOUNT; note TBASE itself,
 * U+11A7, is swallowed after an LV syllable). */
#define HANGUL_V_FIRST 0x1161
#define HANGUL_V_LAST 0x1175
#define HANGUL_T_FIRST 0x11A7
#define HANGUL_T_LAST 0x11C2

enum { CL_SEP, CL_SPACE, CL_WORD, CL_CJK };

/* The per-code-point functions of the hot path must be inlined into
 * text_tokenizer_next (it doubles the throughput); gcc -O2 declines on its
 * own because they have several callers. */
#if defined(__GNUC__)
#define HOT static inline __attribute__((always_inline))
#else
#define HOT static inline
#endif

/* What the scanner learned about the code point at one byte offset.  The
 * fields are all 32 bits wide and read one at a time: copying the struct
 * whole right after filling it field by field stalls the CPU's store
 * forwarding, which made the tokenizer markedly slower. */
typedef struct {
	uint32_t cp;       /* the source code point, INVALID_CP for a bad byte */
	uint32_t mapped;   /* its normalization when alone, if simple */
	uint32_t len;      /* its length in bytes; 0 at the end of the text */
	uint32_t boundary; /* normalization may restart just before it (also
	                      set for a bad byte and at the end) */
	uint32_t simple;   /* alone it normalizes to the one code point mapped */
	uint32_t cls;      /* if simple: the class (CL_*) of mapped */
} scan_cp;

struct text_tokenizer {
	const char *text;        /* borrowed input */
	size_t len;
	size_t at;               /* first byte not yet normalized */
	scan_cp la;              /* the code point at `at` (lookahead) */

	utf8proc_int32_t *nbuf;  /* normalized code points of the current
	                            segment, NBUF_CAP of them */
	uint8_t *ncls;           /* their classes (CL_*) */
	size_t nlen, ni;         /* count, and the next one to cut */
	size_t seg_start, seg_end; /* source bytes of the current segment */

	char *word;              /* UTF-8 of the word being built */
	size_t word_len, word_cap;
	size_t word_start, word_end; /* its source bytes */
	int in_word;

	uint32_t last_pos;       /* position of the last token emitted */
	int last_kind;           /* its kind, 0 before the first token */
	int saw_space, saw_sep;  /* what came between it and now */
};

int text_is_cjk(uint32_t cp)
{
	return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
	       (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x20000 && cp <= 0x2FFFF) ||
	       cp == 0x3007;
}

/* Unicode White_Space, as it can appear after normalization (and before,
 * so the function does not depend on that). */
static int is_white_space(uint32_t cp)
{
	return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 ||
	       cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
	       cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
	       cp == 0x3000;
}

HOT int ascii_class(uint32_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))
		return CL_WORD;
	return c == ' ' || (c >= 0x09 && c <= 0x0D) ? CL_SPACE : CL_SEP;
}

/* The class of a normalized code point.  CJK is tested before word
 * characters because U+3007 is a number (Nl) but counts as CJK. */
static int classify(uint32_t cp)
{
	if (cp < 0x80)
		return ascii_class(cp);
	if (text_is_cjk(cp))
		return CL_CJK;
	if (cp == INVALID_CP)
		return CL_SEP;
	if (is_white_space(cp))
		return CL_SPACE;
	utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
	return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_NO ? CL_WORD : CL_SEP;
}

HOT uint32_t ascii_fold(uint32_t c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* The class of a code point that normalization leaves alone and that cannot
 * compose with a neighbour (no decomposition, no case folding, combining
 * class 0, in no composition pair), for the Han blocks and the common CJK
 * punctuation; -1 for any other code point.  These are answered without a
 * property lookup; tests/test_text.c checks each against utf8proc's tables. */
HOT int inert_fast_class(uint32_t cp)
{
	if ((cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
	    cp == 0x3007)
		return CL_CJK;
	if ((cp >= 0x3001 && cp <= 0x3002) || (cp >= 0x3008 && cp <= 0x3011) ||
	    (cp >= 0x3014 && cp <= 0x301B) || (cp >= 0x2018 && cp <= 0x2019) ||
	    (cp >= 0x201C && cp <= 0x201D) || cp == 0x2014)
		return CL_SEP;
	return -1;
}

/* 1 if a code point already in fully decomposed form can start a new piece of
 * normalization: combining class 0, not the second half of any canonical
 * composition, and not a Hangul jamo that utf8proc composes algorithmically
 * onto what precedes it. */
static int starter_alone(uint32_t cp, const utf8proc_property_t *p)
{
	if (p->combining_class != 0)
		return 0;
	/* comb_index: UINT16_MAX = in no pair, < 0x8000 = first of a pair,
	 * >= 0x8000 = second of a pair. */
	if (p->comb_index != UINT16_MAX && p->comb_index >= 0x8000)
		return 0;
	if (cp >= HANGUL_V_FIRST && cp <= HANGUL_V_LAST)
		return 0;
	return !(cp >= HANGUL_T_FIRST && cp <= HANGUL_T_LAST);
}

/* Completes sc (a valid non-ASCII code point) through utf8proc's tables: the
 * slow part of scanning, for the few characters that are neither Han nor
 * common punctuation nor full-width forms. */
static void scan_props(scan_cp *sc)
{
	const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)sc->cp);
	utf8proc_int32_t map[MAP_MAX_CPS];
	int boundclass = 0;
	utf8proc_ssize_t n;

	if (p->decomp_seqindex == UINT16_MAX && p->casefold_seqindex == UINT16_MAX) {
		/* Maps to itself (Hangul syllables decompose algorithmically
		 * but recompose to themselves when alone). */
		sc->boundary = (uint32_t)starter_alone(sc->cp, p);
		sc->cls = (uint32_t)classify(sc->cp);
		return;
	}
	n = utf8proc_decompose_char((utf8proc_int32_t)sc->cp, map, MAP_MAX_CPS,
				    NORM_OPTIONS, &boundclass);
	if (n < 1 || n > MAP_MAX_CPS) {
		/* Cannot happen with utf8proc's data; stay on the safe side
		 * by neither splitting nor taking the one-code-point path. */
		sc->simple = 0;
		sc->boundary = 0;
		return;
	}
	/* A fully decomposed single code point has nothing to compose with. */
	sc->simple = n == 1;
	sc->mapped = (uint32_t)map[0];
	sc->cls = (uint32_t)classify(sc->mapped);
	sc->boundary = (uint32_t)starter_alone(sc->mapped, utf8proc_get_property(map[0]));
}

/* Describes the valid non-ASCII code point cp: everything but the Han and
 * CJK punctuation fast path of scan_at. */
static void scan_other(uint32_t cp, scan_cp *sc)
{
	sc->cp = sc->mapped = cp;
	sc->boundary = 1;
	sc->simple = 1;
	int cl = inert_fast_class(cp);
	if (cl >= 0) {
		sc->cls = (uint32_t)cl;
		return;
	}
	if (cp >= 0xFF01 && cp <= 0xFF5E) {
		/* Full-width ASCII: <wide> maps onto U+0021..007E. */
		sc->mapped = ascii_fold(cp - 0xFEE0);
		sc->cls = (uint32_t)ascii_class(sc->mapped);
		return;
	}
	if (cp == 0x3000) {
		sc->mapped = ' ';
		sc->cls = CL_SPACE;
		return;
	}
	scan_props(sc);
}

/* Decodes and describes the code point at byte offset off of text[0..len)
 * into *sc, and returns sc->boundary (in a register: reading it back from *sc
 * right away would wait on the stores).  This is the tokenizer's innermost
 * loop, kept small enough to be inlined: ASCII and well-formed 3-byte Han or
 * CJK punctuation are handled here (decoding those 3 bytes inline rather than
 * through text_utf8_get, which the rest takes), everything else in
 * scan_other. */
HOT uint32_t scan_at(const char *text, size_t len, size_t off, scan_cp *sc)
{
	if (off >= len) {
		/* The end: a boundary, never simple. */
		sc->cp = INVALID_CP;
		sc->len = 0;
		sc->boundary = 1;
		sc->simple = 0;
		return 1;
	}
	const unsigned char *u = (const unsigned char *)text + off;
	if (u[0] < 0x80) {
		/* ASCII never composes onto what precedes it. */
		sc->cp = u[0];
		sc->mapped = ascii_fold(u[0]);
		sc->len = 1;
		sc->boundary = 1;
		sc->simple = 1;
		sc->cls = (uint32_t)ascii_class(u[0]);
		return 1;
	}
	if (len - off >= 3 && (u[0] & 0xF0) == 0xE0 && (u[1] & 0xC0) == 0x80 &&
	    (u[2] & 0xC0) == 0x80) {
		uint32_t cp = ((uint32_t)(u[0] & 0x0F) << 12) |
			      ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
		int cl = inert_fast_class(cp);
		if (cl >= 0) {
			/* Well-formed: no inert code point is below U+0800 or
			 * a surrogate. */
			sc->cp = sc->mapped = cp;
			sc->len = 3;
			sc->boundary = 1;
			sc->simple = 1;
			sc->cls = (uint32_t)cl;
			return 1;
		}
	}
	uint32_t cp;
	sc->len = (uint32_t)text_utf8_get(text + off, len - off, &cp);
	if (cp == INVALID_CP) {
		/* A bad byte: a boundary, never simple. */
		sc->cp = INVALID_CP;
		sc->boundary = 1;
		sc->simple = 0;
		return 1;
	}
	scan_other(cp, sc);
	return sc->boundary;
}

/* Normalizes text[start..end), one segment of valid UTF-8, into nbuf and
 * classifies the result into ncls. */
static void normalize_segment(text_tokenizer *tk, size_t start, size_t end)
{
	utf8proc_ssize_t n = utf8proc_decompose(
		(const utf8proc_uint8_t *)tk->text + start,
		(utf8proc_ssize_t)(end - start), tk->nbuf,
		(utf8proc_ssize_t)NBUF_CAP, NORM_OPTIONS);
	if (n >= 0 && (size_t)n <= NBUF_CAP)
		n = utf8proc_normalize_utf32(tk->nbuf, n, NORM_OPTIONS);
	if (n < 0 || (size_t)n > NBUF_CAP) {
		/* Unreachable for valid input within SEG_MAX_CPS; the segment
		 * becomes one separator rather than garbage. */
		tk->nbuf[0] = (utf8proc_int32_t)INVALID_CP;
		n = 1;
	}
	tk->nlen = (size_t)n;
	for (size_t i = 0; i < tk->nlen; i++)
		tk->ncls[i] = (uint8_t)classify((uint32_t)tk->nbuf[i]);
}

/* Takes the next segment, which starts at `at` with a code point of `end - at`
 * bytes (or a bad byte) and is more than one code point or one that utf8proc
 * must map: normalizes it into nbuf/ncls, to be cut from there.  On entry la
 * describes the code point at end. */
static void load_segment(text_tokenizer *tk, size_t end, int bad)
{
	size_t start = tk->at, ncp = 1;
	if (bad) {
		tk->nbuf[0] = (utf8proc_int32_t)INVALID_CP;
		tk->ncls[0] = CL_SEP;
		tk->nlen = 1;
	} else {
		uint32_t boundary = tk->la.boundary;
		while (!boundary && ncp < SEG_MAX_CPS) {
			end += tk->la.len;
			ncp++;
			boundary = scan_at(tk->text, tk->len, end, &tk->la);
		}
		normalize_segment(tk, start, end);
	}
	tk->ni = 0;
	tk->seg_start = start;
	tk->seg_end = end;
	tk->at = end;
}

/* Appends cp to the word.  If memory runs out the word is cut short rather
 * than failing: text_tokenizer_next has no error to report. */
static void word_append(text_tokenizer *tk, uint32_t cp)
{
	if (tk->word_cap - tk->word_len < 4) {
		size_t cap = tk->word_cap * 2;
		char *w = realloc(tk->word, cap);
		if (!w)
			return;
		tk->word = w;
		tk->word_cap = cap;
	}
	if (cp < 0x80)
		tk->word[tk->word_len++] = (char)cp;
	else
		tk->word_len += text_utf8_put(tk->word + tk->word_len, cp);
}

/* The position of a new token of the given kind, by the gap rule: + 2 after
 * a separator, or after whitespace unless both neighbours are CJK. */
HOT uint32_t take_pos(text_tokenizer *tk, int kind)
{
	uint32_t pos = 0;
	if (tk->last_kind) {
		int both_cjk = kind == TEXT_TOK_CJK && tk->last_kind == TEXT_TOK_CJK;
		int gap = tk->saw_sep || (tk->saw_space && !both_cjk);
		pos = tk->last_pos + 1 + (uint32_t)gap;
	}
	tk->last_pos = pos;
	tk->last_kind = kind;
	tk->saw_space = tk->saw_sep = 0;
	return pos;
}

static int emit_word(text_tokenizer *tk, text_token *out)
{
	out->kind = TEXT_TOK_WORD;
	out->cp = 0;
	out->word = tk->word;
	out->word_len = tk->word_len;
	out->pos = take_pos(tk, TEXT_TOK_WORD);
	out->src_start = tk->word_start;
	out->src_end = tk->word_end;
	tk->in_word = 0;
	return 1;
}

HOT int emit_cjk(text_tokenizer *tk, uint32_t cp, size_t start, size_t end,
	     text_token *out)
{
	out->kind = TEXT_TOK_CJK;
	out->cp = cp;
	out->word = NULL;
	out->word_len = 0;
	out->pos = take_pos(tk, TEXT_TOK_CJK);
	out->src_start = start;
	out->src_end = end;
	return 1;
}

/* What cut() did with a normalized code point. */
enum {
	CUT_TAKEN,       /* took it, no token yet */
	CUT_TOKEN,       /* took it and stored a token */
	CUT_WORD_BEFORE  /* stored the word it ends; the code point is not taken */
};

/* Feeds one normalized code point of class cl, made from the source bytes
 * [start, end), to the token rules. */
HOT int cut(text_tokenizer *tk, uint32_t cp, uint32_t cl, size_t start,
	       size_t end, text_token *out)
{
	if (cl == CL_WORD) {
		if (!tk->in_word) {
			tk->in_word = 1;
			tk->word_len = 0;
			tk->word_start = start;
		}
		word_append(tk, cp);
		tk->word_end = end;
		return CUT_TAKEN;
	}
	if (tk->in_word) {
		emit_word(tk, out);
		return CUT_WORD_BEFORE;
	}
	if (cl == CL_CJK) {
		emit_cjk(tk, cp, start, end, out);
		return CUT_TOKEN;
	}
	if (cl == CL_SPACE)
		tk->saw_space = 1;
	else
		tk->saw_sep = 1;
	return CUT_TAKEN;
}

/* text_tokenizer_next for everything but its fast path. */
static int next_general(text_tokenizer *tk, text_token *out)
{
	for (;;) {
		int r;
		if (tk->ni < tk->nlen) {
			/* Cutting a segment utf8proc normalized. */
			r = cut(tk, (uint32_t)tk->nbuf[tk->ni], tk->ncls[tk->ni],
				tk->seg_start, tk->seg_end, out);
			if (r != CUT_WORD_BEFORE)
				tk->ni++;
			if (r != CUT_TAKEN)
				return 1;
			continue;
		}
		if (tk->at >= tk->len)
			return tk->in_word ? emit_word(tk, out) : 0;

		/* The next code point, and a look at the one after it. */
		size_t start = tk->at, end = start + tk->la.len;
		uint32_t cp = tk->la.cp, mapped = tk->la.mapped;
		uint32_t simple = tk->la.simple, cls = tk->la.cls;
		uint32_t boundary = scan_at(tk->text, tk->len, end, &tk->la);
		if (cp == INVALID_CP || !simple || !boundary) {
			load_segment(tk, end, cp == INVALID_CP);
			continue;
		}
		/* The common case: one code point that maps to one, cut right
		 * here without going through nbuf. */
		tk->at = end;
		if (cls == CL_CJK && !tk->in_word)
			return emit_cjk(tk, mapped, start, end, out);
		r = cut(tk, mapped, cls, start, end, out);
		if (r == CUT_WORD_BEFORE) {
			/* Keep it for the next call. */
			tk->nbuf[0] = (utf8proc_int32_t)mapped;
			tk->ncls[0] = (uint8_t)cls;
			tk->nlen = 1;
			tk->ni = 0;
			tk->seg_start = start;
			tk->seg_end = end;
		}
		if (r != CUT_TAKEN)
			return 1;
	}
}

int text_tokenizer_next(text_tokenizer *tk, text_token *out)
{
	/* The fast path, most of Chinese text: nothing pending, no word being
	 * built, and a Han character next that maps to itself.  It is a small
	 * function of its own so that the common call stays cheap. */
	if (tk->ni == tk->nlen && !tk->in_word && tk->la.simple &&
	    tk->la.cls == CL_CJK && tk->at < tk->len) {
		size_t start = tk->at, end = start + tk->la.len;
		uint32_t cp = tk->la.mapped;
		if (scan_at(tk->text, tk->len, end, &tk->la)) {
			tk->at = end;
			return emit_cjk(tk, cp, start, end, out);
		}
		/* A mark or the like follows: normalize the two together. */
		load_segment(tk, end, 0);
	}
	return next_general(tk, out);
}

void text_tokenizer_reset(text_tokenizer *tk, const char *text, size_t len)
{
	tk->text = text;
	tk->len = text ? len : 0;
	tk->at = 0;
	tk->nlen = tk->ni = 0;
	tk->seg_start = tk->seg_end = 0;
	tk->in_word = 0;
	tk->word_len = 0;
	tk->last_pos = 0;
	tk->last_kind = 0;
	tk->saw_space = tk->saw_sep = 0;
	scan_at(tk->text, tk->len, 0, &tk->la);
}

text_tokenizer *text_tokenizer_new(void)
{
	text_tokenizer *tk = calloc(1, sizeof *tk);
	if (!tk)
		return NULL;
	tk->nbuf = malloc(NBUF_CAP * sizeof *tk->nbuf);
	tk->ncls = malloc(NBUF_CAP);
	tk->word_cap = 256;
	tk->word = malloc(tk->word_cap);
	if (!tk->nbuf || !tk->ncls || !tk->word) {
		text_tokenizer_free(tk);
		return NULL;
	}
	text_tokenizer_reset(tk, NULL, 0);
	return tk;
}

void text_tokenizer_free(text_tokenizer *tk)
{
	if (!tk)
		return;
	free(tk->nbuf);
	free(tk->ncls);
	free(tk->word);
	free(tk);
}
