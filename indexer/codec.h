/* codec.h — integer compression for postings: varints and PFOR-style bit
 * packing of blocks of up to SOUSUO_BLOCK unsigned 32-bit values.  The writer
 * uses the encoders, the search side the decoders.  Decoders read from
 * untrusted mmapped bytes: they check every length against `end` and return
 * NULL instead of reading past it, so a corrupt index can never make them
 * over-read.  The byte format is documented at the top of codec.c and in
 * docs/INDEX-FORMAT.md. */
#ifndef SOUSUO_CODEC_H
#define SOUSUO_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* Longest varint of a uint64_t. */
#define CODEC_VARINT_MAX 10

/* LEB128-style varint (7 bits a byte, low bits first).  put returns the bytes
 * written (1..10); get returns the byte after the varint, or NULL when it runs
 * past end, is longer than 10 bytes or overflows 64 bits.  (Over-long forms
 * such as 0x80 0x00 are accepted; put never writes them.) */
static inline size_t codec_varint_put(uint8_t *out, uint64_t v)
{
	/* inline: the indexer's hot loop writes one per occurrence */
	size_t i = 0;
	while (v >= 0x80) {
		out[i++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[i++] = (uint8_t)v;
	return i;
}
const uint8_t *codec_varint_get(const uint8_t *p, const uint8_t *end, uint64_t *v);
/* The same for values that must fit 32 bits; a larger value is an error (NULL). */
const uint8_t *codec_varint_get32(const uint8_t *p, const uint8_t *end, uint32_t *v);

/* Most bytes codec_pack writes for n values (n <= SOUSUO_BLOCK): 1 + 4n. */
size_t codec_pack_bound(size_t n);

/* Packs in[0..n) (n <= SOUSUO_BLOCK, n may be 0) into out, which has room for
 * codec_pack_bound(n) bytes; returns the bytes written (0 when n is 0).  The
 * encoding picks the bit width that makes the block smallest, storing the few
 * values that do not fit as exceptions (PFOR), or plain varints when that is
 * smaller (tiny blocks).  A block of zeros is 1 byte, as is one value < 64. */
size_t codec_pack(const uint32_t *in, size_t n, uint8_t *out);

/* Unpacks n values (the same n given to codec_pack; the caller knows it) from
 * p into out[0..n).  Returns the byte after the block, or NULL when the block
 * is malformed, would run past end, or n > SOUSUO_BLOCK.  Never reads at or
 * past end; out[0..n) may hold garbage after a NULL return. */
const uint8_t *codec_unpack(const uint8_t *p, const uint8_t *end, uint32_t *out, size_t n);

/* Returns the byte after a block of n values without decoding it (for a
 * reader that needs a later block of a stream), or NULL when it would run
 * past end.  It checks lengths only: a block it skips may still be malformed
 * for codec_unpack. */
const uint8_t *codec_skip(const uint8_t *p, const uint8_t *end, size_t n);

/* Delta helpers: gaps to absolute values and back.  codec_undelta turns
 * v[i] into base + v[0] + ... + v[i]; codec_delta is its inverse (values
 * must be non-decreasing and >= base). */
void codec_undelta(uint32_t *v, size_t n, uint32_t base);
void codec_delta(uint32_t *v, size_t n, uint32_t base);

#endif
