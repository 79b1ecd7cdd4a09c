/* keys.h — how tokens become dictionary keys (format.h's key layout).  The
 * indexer and the query engine both call these, so a document and a query
 * always agree on which key a token or a pair of adjacent tokens has. */
#ifndef SOUSUO_KEYS_H
#define SOUSUO_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include "indexer/text.h"

/* Key of a single token: FMT_KIND_CJK for a CJK character, FMT_KIND_WORD for
 * a word (a 59-bit xxh3 of its normalized bytes). */
uint64_t keys_token(int kind, uint32_t cp, const char *word, size_t word_len);

/* Key of two adjacent tokens (positions differ by 1) given their single
 * keys, or 0 when the pair is not indexed (two words: never adjacent). */
uint64_t keys_pair(uint64_t first, uint64_t second);

/* Key of a run of n (3 or 4) adjacent CJK characters: FMT_KIND_NGRAM for 3,
 * FMT_KIND_NGRAM4 for 4. */
uint64_t keys_ngram(const uint32_t *cps, size_t n);

/* The same key in the title field. */
static inline uint64_t keys_title(uint64_t key) { return key | (1ull << 59); }

#endif
