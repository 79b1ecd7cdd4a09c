/* keys.c — token and pair keys; see keys.h and format.h. */
#include "indexer/keys.h"
#include "indexer/format.h"

#include <xxhash.h>

/* Seeds keep word hashes and pair hashes in unrelated spaces. */
#define KEYS_WORD_SEED 0x736f7573756f0001ull
#define KEYS_PAIR_SEED 0x736f7573756f0002ull
#define KEYS_NGRAM_SEED 0x736f7573756f0003ull

uint64_t keys_token(int kind, uint32_t cp, const char *word, size_t word_len)
{
	if (kind == TEXT_TOK_CJK)
		return fmt_key(FMT_KIND_CJK, cp);
	return fmt_key(FMT_KIND_WORD, XXH3_64bits_withSeed(word, word_len, KEYS_WORD_SEED));
}

uint64_t keys_pair(uint64_t first, uint64_t second)
{
	unsigned a = fmt_key_kind(first), b = fmt_key_kind(second);
	if (a == FMT_KIND_CJK && b == FMT_KIND_CJK)
		return fmt_key(FMT_KIND_BIGRAM, ((first & 0x1FFFFF) << 21) | (second & 0x1FFFFF));
	if (a == FMT_KIND_WORD && b == FMT_KIND_WORD)
		return 0;
	uint64_t both[2] = { first, second };
	return fmt_key(FMT_KIND_PAIR, XXH3_64bits_withSeed(both, sizeof both, KEYS_PAIR_SEED));
}

uint64_t keys_ngram(const uint32_t *cps, size_t n)
{
	return fmt_key(n == 4 ? FMT_KIND_NGRAM4 : FMT_KIND_NGRAM,
	               XXH3_64bits_withSeed(cps, n * sizeof *cps, KEYS_NGRAM_SEED));
}
