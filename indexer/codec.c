/* codec.c — varints and PFOR bit packing for postings blocks (codec.h).
 *
 * BYTE FORMAT
 * ===========
 * All multi-bit quantities are little-endian; nothing depends on the host's
 * byte order or alignment.
 *
 * Varint (LEB128, unsigned):
 *
 *   varint   := byte{0,9} last          (1..10 bytes)
 *               each byte but the last has bit 7 set; bits 0..6 carry the
 *               value, least significant group first.  The 10th byte may
 *               only be 0x00 or 0x01 (bit 63).  Over-long forms (0x80 0x00)
 *               are accepted by the decoder but never written.
 *
 * Block of n values, n <= SOUSUO_BLOCK (128).  n is NOT stored: the caller
 * knows it and passes it to codec_unpack.  A block is prefix-free given n:
 * every proper prefix of a valid block is rejected as truncated.
 *
 *   block    := <empty>                          if n == 0
 *             | pfor                             if n >= 1
 *             | vmode                            if n >= 1
 *
 *   pfor     := hdr packed exceptions?
 *   hdr      := 1 byte  0 E bbbbbb
 *                 bit 7     0 (PFOR mode)
 *                 bit 6 E   1 if exceptions follow the packed bits
 *                 bits 0..5 b, the bit width, 0..32 (33..63 are malformed;
 *                           b == 32 with E set is malformed)
 *   packed   := ceil(n * b / 8) bytes: a bit stream where value i occupies
 *               stream bits [i*b, i*b + b), stream bit k being bit (k % 8) of
 *               byte k / 8.  For an exception these are its low b bits.
 *               Unused high bits of the last byte are written as 0 and
 *               ignored when read.
 *   exceptions := exc+                        (only when E is set)
 *   exc      := ibyte varint
 *     ibyte  := 1 byte  C iiiiiii
 *                 bits 0..6 i, the index of the exception (must be < n,
 *                           and strictly greater than the previous index)
 *                 bit 7 C   1 if another exc follows, 0 on the last one
 *     varint := the value's high part, value >> b; must be >= 1 and
 *               < 2^(32-b) so the value fits 32 bits.
 *   value[i] := low bits from packed | (high part << b) for an exception.
 *
 *   vmode    := vhdr vcont? varint{n-1}
 *   vhdr     := 1 byte  1 C xxxxxx
 *                 bit 7     1 (varint mode)
 *                 bit 6 C   1 if vcont follows
 *                 bits 0..5 low 6 bits of value[0]
 *   vcont    := varint, value[0] >> 6 (value[0] must fit 32 bits)
 *   the n-1 varints are value[1..n), each must fit 32 bits.
 *
 * The encoder computes the exact size of every PFOR width 0..32 and of the
 * varint mode and writes the smallest; on a tie it prefers PFOR over varint
 * mode and the wider PFOR (fewer exceptions: faster to decode).  So a block
 * of zeros is 1 byte (0x00), one value < 64 is 1 byte, and 128 values < 16
 * are at most 1 + 64 bytes.  No format needs a count byte: the exception
 * list ends with the C bit, and strictly increasing indices bound it to n.
 *
 * Examples (hex):
 *   {0, 0, 0}        00                  PFOR b = 0
 *   {5}              85                  vmode, value in the header
 *   {100000}         E0 9A 0C            vmode: 100000 = 32 | 1562 << 6
 *   {7 x 8}          03 FF FF FF         PFOR b = 3
 *   {1, 2, 3, 1000}  44 21 83 03 3E      PFOR b = 4, E: 1000 = 8 | 62 << 4
 *                                        is exception index 3 (5 bytes; b = 2
 *                                        and vmode tie, the wider b wins)
 *
 * DECODING SAFETY
 * ===============
 * codec_unpack checks every length against `end` before reading.  The fast
 * bit-unpacker loads 8 bytes at a time; it runs in place only when at least
 * 8 bytes past the packed bits lie before `end`, otherwise the packed bits
 * (at most 512 bytes) are first copied to a zero-padded stack buffer.
 */
#include "indexer/codec.h"
#include "indexer/limits.h"

#include <assert.h>
#include <string.h>

#define PFOR_EXC 0x40u     /* hdr: exceptions follow */
#define VMODE 0x80u        /* hdr: varint mode */
#define VMODE_CONT 0x40u   /* vhdr: value[0] continues in a varint */
#define EXC_MORE 0x80u     /* ibyte: another exception follows */
#define MAX_B 32u

/* ---- varints ---------------------------------------------------------- */

const uint8_t *codec_varint_get(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	/* One byte, the common case. */
	if (p < end && *p < 0x80) {
		*v = *p;
		return p + 1;
	}
	for (unsigned i = 0; i < CODEC_VARINT_MAX; i++) {
		if (p >= end)
			return NULL;
		uint8_t c = *p++;
		if (i == CODEC_VARINT_MAX - 1 && c > 1)
			return NULL; /* more than 64 bits, or an 11th byte */
		r |= (uint64_t)(c & 0x7F) << (7 * i);
		if (c < 0x80) {
			*v = r;
			return p;
		}
	}
	return NULL; /* not reached: the 10th byte is 0 or 1 */
}

const uint8_t *codec_varint_get32(const uint8_t *p, const uint8_t *end, uint32_t *v)
{
	uint64_t r;
	if (p < end && *p < 0x80) {
		*v = *p;
		return p + 1;
	}
	p = codec_varint_get(p, end, &r);
	if (!p || r > UINT32_MAX)
		return NULL;
	*v = (uint32_t)r;
	return p;
}

/* ---- bit unpacking ---------------------------------------------------- */

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t w;
	memcpy(&w, p, sizeof w);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	return w;
}

/* Value i of width B: at most 7 + 32 bits from an 8-byte load at its first
 * byte.  Reads in[(i*B)/8 .. (i*B)/8 + 8), so the caller guarantees 8 bytes
 * of readable slack after the packed bits. */
#define GET(in, i, B) \
	((uint32_t)((load_le64((in) + ((size_t)(i) * (B)) / 8) >> (((size_t)(i) * (B)) % 8)) \
		& ((UINT64_C(1) << (B)) - 1)))

/* Eight values of width B take exactly B bytes, so each group of 8 starts on
 * a byte boundary and, with B a constant, every offset, shift and mask below
 * is a constant too. */
#define DEFINE_UNPACK(B) \
	static void unpack_##B(const uint8_t *in, uint32_t *out, size_t n) \
	{ \
		size_t i = 0; \
		for (; i + 8 <= n; i += 8, in += (B), out += 8) { \
			out[0] = GET(in, 0, B); \
			out[1] = GET(in, 1, B); \
			out[2] = GET(in, 2, B); \
			out[3] = GET(in, 3, B); \
			out[4] = GET(in, 4, B); \
			out[5] = GET(in, 5, B); \
			out[6] = GET(in, 6, B); \
			out[7] = GET(in, 7, B); \
		} \
		for (size_t j = 0; i < n; i++, j++) \
			out[j] = GET(in, j, B); \
	}

static void unpack_0(const uint8_t *in, uint32_t *out, size_t n)
{
	(void)in;
	memset(out, 0, n * sizeof *out);
}

DEFINE_UNPACK(1)  DEFINE_UNPACK(2)  DEFINE_UNPACK(3)  DEFINE_UNPACK(4)
DEFINE_UNPACK(5)  DEFINE_UNPACK(6)  DEFINE_UNPACK(7)  DEFINE_UNPACK(8)
DEFINE_UNPACK(9)  DEFINE_UNPACK(10) DEFINE_UNPACK(11) DEFINE_UNPACK(12)
DEFINE_UNPACK(13) DEFINE_UNPACK(14) DEFINE_UNPACK(15) DEFINE_UNPACK(16)
DEFINE_UNPACK(17) DEFINE_UNPACK(18) DEFINE_UNPACK(19) DEFINE_UNPACK(20)
DEFINE_UNPACK(21) DEFINE_UNPACK(22) DEFINE_UNPACK(23) DEFINE_UNPACK(24)
DEFINE_UNPACK(25) DEFINE_UNPACK(26) DEFINE_UNPACK(27) DEFINE_UNPACK(28)
DEFINE_UNPACK(29) DEFINE_UNPACK(30) DEFINE_UNPACK(31) DEFINE_UNPACK(32)

typedef void unpack_fn(const uint8_t *in, uint32_t *out, size_t n);
static unpack_fn *const unpackers[MAX_B + 1] = {
	unpack_0,  unpack_1,  unpack_2,  unpack_3,  unpack_4,  unpack_5,
	unpack_6,  unpack_7,  unpack_8,  unpack_9,  unpack_10, unpack_11,
	unpack_12, unpack_13, unpack_14, unpack_15, unpack_16, unpack_17,
	unpack_18, unpack_19, unpack_20, unpack_21, unpack_22, unpack_23,
	unpack_24, unpack_25, unpack_26, unpack_27, unpack_28, unpack_29,
	unpack_30, unpack_31, unpack_32,
};

/* Slack the unpackers may read past the packed bits. */
#define UNPACK_SLACK 8

/* ---- encoder ---------------------------------------------------------- */

size_t codec_pack_bound(size_t n)
{
	/* PFOR at b = 32 without exceptions is always a candidate, and the
	 * encoder never writes more than its best candidate. */
	return 1 + 4 * n;
}

static unsigned bit_len(uint32_t v)
{
	return v ? 32u - (unsigned)__builtin_clz(v) : 0u;
}

/* Writes the low b bits of in[0..n) as the bit stream of the format;
 * returns ceil(n * b / 8). */
static size_t pack_bits(const uint32_t *in, size_t n, unsigned b, uint8_t *out)
{
	size_t o = 0;
	uint64_t acc = 0;
	unsigned fill = 0;
	uint64_t mask = (UINT64_C(1) << b) - 1;
	if (b == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		acc |= ((uint64_t)in[i] & mask) << fill;
		fill += b;
		if (fill >= 32) {
			for (int k = 0; k < 4; k++)
				out[o++] = (uint8_t)(acc >> (8 * k));
			acc >>= 32;
			fill -= 32;
		}
	}
	for (; fill > 0; fill = fill > 8 ? fill - 8 : 0) {
		out[o++] = (uint8_t)acc;
		acc >>= 8;
	}
	return o;
}

size_t codec_pack(const uint32_t *in, size_t n, uint8_t *out)
{
	assert(n <= SOUSUO_BLOCK);
	if (n == 0)
		return 0;

	/* Histogram of bit lengths: the size of every candidate depends only
	 * on it.  A value of length L is a varint of max(1, ceil(L / 7))
	 * bytes; as an exception at width b < L it costs its index byte and a
	 * varint of its L - b high bits. */
	size_t cnt[MAX_B + 1] = { 0 };
	unsigned maxlen = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned L = bit_len(in[i]);
		cnt[L]++;
		if (L > maxlen)
			maxlen = L;
	}

	unsigned best_b = maxlen;
	size_t best = 1 + (n * maxlen + 7) / 8;
	for (unsigned b = maxlen; b-- > 0;) {
		size_t cost = 1 + (n * b + 7) / 8;
		for (unsigned L = b + 1; L <= maxlen; L++)
			cost += cnt[L] * (1 + (L - b + 6) / 7);
		if (cost < best) {
			best = cost;
			best_b = b;
		}
	}

	/* Varint mode: value[0] shares the header byte with 6 of its bits. */
	unsigned L0 = bit_len(in[0]);
	size_t vcost = 1 + (L0 > 6 ? (L0 - 6 + 6) / 7 : 0);
	cnt[L0]--;
	for (unsigned L = 0; L <= maxlen; L++)
		vcost += cnt[L] * (L > 7 ? (L + 6) / 7 : 1);

	if (vcost < best) {
		size_t o = 1;
		out[0] = (uint8_t)(VMODE | (in[0] & 0x3F));
		if (in[0] >= 64) {
			out[0] |= VMODE_CONT;
			o += codec_varint_put(out + o, in[0] >> 6);
		}
		for (size_t i = 1; i < n; i++)
			o += codec_varint_put(out + o, in[i]);
		assert(o == vcost);
		return o;
	}

	unsigned b = best_b;
	size_t o = 1;
	out[0] = (uint8_t)(b | (b < maxlen ? PFOR_EXC : 0));
	o += pack_bits(in, n, b, out + o);
	if (b < maxlen) {
		uint8_t exc[SOUSUO_BLOCK];
		size_t ne = 0;
		for (size_t i = 0; i < n; i++)
			if ((uint64_t)in[i] >> b)
				exc[ne++] = (uint8_t)i;
		for (size_t k = 0; k < ne; k++) {
			out[o++] = (uint8_t)(exc[k] | (k + 1 < ne ? EXC_MORE : 0));
			o += codec_varint_put(out + o, in[exc[k]] >> b);
		}
	}
	assert(o == best);
	return o;
}

/* ---- decoder ---------------------------------------------------------- */

static const uint8_t *unpack_vmode(const uint8_t *p, const uint8_t *end,
				   uint32_t *out, size_t n)
{
	uint8_t h = *p++;
	uint32_t v0 = h & 0x3F;
	if (h & VMODE_CONT) {
		uint64_t hi;
		p = codec_varint_get(p, end, &hi);
		if (!p || hi > (UINT32_MAX >> 6))
			return NULL;
		v0 |= (uint32_t)hi << 6;
	}
	out[0] = v0;
	for (size_t i = 1; i < n; i++) {
		p = codec_varint_get32(p, end, &out[i]);
		if (!p)
			return NULL;
	}
	return p;
}

const uint8_t *codec_unpack(const uint8_t *p, const uint8_t *end, uint32_t *out, size_t n)
{
	if (n == 0)
		return p;
	if (n > SOUSUO_BLOCK || p >= end)
		return NULL;
	uint8_t h = *p;
	if (h & VMODE)
		return unpack_vmode(p, end, out, n);

	unsigned b = h & 0x3F;
	int has_exc = (h & PFOR_EXC) != 0;
	if (b > MAX_B || (b == MAX_B && has_exc))
		return NULL;
	p++;
	size_t packed = (n * b + 7) / 8;
	if ((size_t)(end - p) < packed)
		return NULL;
	if ((size_t)(end - p) >= packed + UNPACK_SLACK) {
		unpackers[b](p, out, n);
	} else {
		uint8_t buf[SOUSUO_BLOCK * 4 + UNPACK_SLACK];
		memcpy(buf, p, packed);
		memset(buf + packed, 0, UNPACK_SLACK);
		unpackers[b](buf, out, n);
	}
	p += packed;
	if (!has_exc)
		return p;

	uint32_t limit = UINT32_MAX >> b; /* largest high part that fits */
	size_t next = 0;                  /* smallest index allowed next */
	for (;;) {
		if (p >= end)
			return NULL;
		uint8_t ib = *p++;
		size_t i = ib & 0x7F;
		if (i >= n || i < next)
			return NULL;
		next = i + 1;
		uint32_t hi;
		p = codec_varint_get32(p, end, &hi);
		if (!p || hi == 0 || hi > limit)
			return NULL;
		out[i] |= hi << b;
		if (!(ib & EXC_MORE))
			return p;
	}
}

/* Skips one varint without decoding it; NULL past end or over 10 bytes. */
static const uint8_t *skip_varint(const uint8_t *p, const uint8_t *end)
{
	for (int i = 0; i < CODEC_VARINT_MAX; i++) {
		if (p >= end)
			return NULL;
		if (!(*p++ & 0x80))
			return p;
	}
	return NULL;
}

const uint8_t *codec_skip(const uint8_t *p, const uint8_t *end, size_t n)
{
	if (n == 0)
		return p;
	if (n > SOUSUO_BLOCK || p >= end)
		return NULL;
	uint8_t h = *p++;
	if (h & VMODE) {
		if ((h & VMODE_CONT) && !(p = skip_varint(p, end)))
			return NULL;
		for (size_t i = 1; i < n; i++)
			if (!(p = skip_varint(p, end)))
				return NULL;
		return p;
	}
	unsigned b = h & 0x3F;
	if (b > MAX_B)
		return NULL;
	size_t packed = (n * b + 7) / 8;
	if ((size_t)(end - p) < packed)
		return NULL;
	p += packed;
	if (!(h & PFOR_EXC))
		return p;
	for (;;) {
		if (p >= end)
			return NULL;
		uint8_t ib = *p++;
		if (!(p = skip_varint(p, end)))
			return NULL;
		if (!(ib & EXC_MORE))
			return p;
	}
}

/* ---- deltas ----------------------------------------------------------- */

void codec_undelta(uint32_t *v, size_t n, uint32_t base)
{
	uint32_t acc = base;
	for (size_t i = 0; i < n; i++) {
		acc += v[i];
		v[i] = acc;
	}
}

void codec_delta(uint32_t *v, size_t n, uint32_t base)
{
	uint32_t prev = base;
	for (size_t i = 0; i < n; i++) {
		uint32_t cur = v[i];
		v[i] = cur - prev;
		prev = cur;
	}
}
