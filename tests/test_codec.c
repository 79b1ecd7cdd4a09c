/* test_codec.c — varints, PFOR blocks and deltas (indexer/codec.h).
 * Every decoded block is first copied into a heap buffer of exactly its size,
 * so under AddressSanitizer any read past `end` is caught. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "indexer/codec.h"
#include "indexer/limits.h"

/* ---- helpers ---------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic, so a failure reproduces. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Du;
}

static uint32_t rnd_bits(unsigned b)
{
	return b ? (uint32_t)(rnd() >> (64 - b)) : 0;
}

static uint32_t rnd_below(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

/* Packs in[0..n), checks the size against the bound, then decodes from an
 * exact-size heap copy (slow path at the end of the buffer) and from a copy
 * with slack (fast path), checking values, the end pointer and that nothing
 * past out[n] is written.  Returns the packed size. */
static size_t roundtrip(const uint32_t *in, size_t n)
{
	uint8_t buf[1 + 4 * SOUSUO_BLOCK + 64];
	memset(buf, 0xAA, sizeof buf);
	size_t len = codec_pack(in, n, buf);
	assert_true(len <= codec_pack_bound(n));
	assert_int_equal(buf[len], 0xAA); /* wrote exactly len bytes */

	for (int slack = 0; slack <= 1; slack++) {
		size_t cap = len + (slack ? 32 : 0);
		uint8_t *copy = malloc(cap ? cap : 1);
		assert_non_null(copy);
		memcpy(copy, buf, len);
		if (slack)
			memset(copy + len, 0xFF, cap - len);
		uint32_t out[SOUSUO_BLOCK + 1];
		for (size_t i = 0; i <= SOUSUO_BLOCK; i++)
			out[i] = 0xDEADBEEF;
		const uint8_t *e = codec_unpack(copy, copy + cap, out, n);
		assert_ptr_equal(e, copy + len);
		for (size_t i = 0; i < n; i++)
			if (out[i] != in[i])
				fail_msg("n=%zu i=%zu got %u want %u (len %zu, hdr 0x%02x)",
					 n, i, out[i], in[i], len, len ? buf[0] : 0);
		assert_int_equal(out[n], 0xDEADBEEF);
		free(copy);
	}
	return len;
}

/* Every proper prefix of a valid block must be rejected. */
static void check_truncations(const uint32_t *in, size_t n)
{
	uint8_t buf[1 + 4 * SOUSUO_BLOCK];
	size_t len = codec_pack(in, n, buf);
	uint32_t out[SOUSUO_BLOCK];
	for (size_t k = 0; k < len; k++) {
		uint8_t *copy = malloc(k ? k : 1);
		assert_non_null(copy);
		memcpy(copy, buf, k);
		assert_null(codec_unpack(copy, copy + k, out, n));
		free(copy);
	}
}

static const size_t sizes[] = { 0, 1, 2, 3, 5, 127, 128 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* ---- varints ---------------------------------------------------------- */

static void test_varint_roundtrip(void **state)
{
	(void)state;
	uint8_t buf[CODEC_VARINT_MAX + 4];
	uint64_t vals[64 * 3 + 4];
	size_t nv = 0;
	vals[nv++] = 0;
	vals[nv++] = UINT64_MAX;
	for (unsigned k = 1; k < 64; k++) {
		uint64_t p = UINT64_C(1) << k;
		vals[nv++] = p - 1;
		vals[nv++] = p;
		vals[nv++] = p + 1;
	}
	for (size_t i = 0; i < nv; i++) {
		uint64_t v = vals[i], got = 0;
		size_t len = codec_varint_put(buf, v);
		unsigned bits = v ? 64 - (unsigned)__builtin_clzll(v) : 1;
		assert_int_equal(len, (bits + 6) / 7);
		assert_true(len <= CODEC_VARINT_MAX);
		/* exact-size heap copy: ASan catches an over-read */
		uint8_t *c = malloc(len);
		memcpy(c, buf, len);
		assert_ptr_equal(codec_varint_get(c, c + len, &got), c + len);
		assert_true(got == v);
		uint32_t g32 = 0;
		const uint8_t *e = codec_varint_get32(c, c + len, &g32);
		if (v <= UINT32_MAX) {
			assert_ptr_equal(e, c + len);
			assert_int_equal(g32, (uint32_t)v);
		} else {
			assert_null(e);
		}
		/* every truncation fails */
		for (size_t k = 0; k < len; k++) {
			assert_null(codec_varint_get(c, c + k, &got));
			assert_null(codec_varint_get32(c, c + k, &g32));
		}
		free(c);
	}
	for (int i = 0; i < 100000; i++) {
		uint64_t v = rnd() >> rnd_below(64), got;
		size_t len = codec_varint_put(buf, v);
		assert_ptr_equal(codec_varint_get(buf, buf + len, &got), buf + len);
		assert_true(got == v);
	}
}

static void test_varint_malformed(void **state)
{
	(void)state;
	uint64_t v;
	uint32_t v32;
	uint8_t b[16] = { 0 };

	/* empty */
	assert_null(codec_varint_get(b, b, &v));
	assert_null(codec_varint_get32(b, b, &v32));
	/* continuation bit on the last available byte */
	b[0] = 0x80;
	assert_null(codec_varint_get(b, b + 1, &v));
	/* 11 bytes */
	memset(b, 0x80, 10);
	b[10] = 0x00;
	assert_null(codec_varint_get(b, b + 11, &v));
	/* 10 bytes whose last byte overflows 64 bits */
	memset(b, 0xFF, 9);
	b[9] = 0x02;
	assert_null(codec_varint_get(b, b + 10, &v));
	b[9] = 0x7F;
	assert_null(codec_varint_get(b, b + 10, &v));
	/* ... and the largest valid 10-byte varint */
	b[9] = 0x01;
	assert_ptr_equal(codec_varint_get(b, b + 10, &v), b + 10);
	assert_true(v == UINT64_MAX);
	/* get32: 2^32 and UINT32_MAX */
	size_t len = codec_varint_put(b, UINT64_C(1) << 32);
	assert_null(codec_varint_get32(b, b + len, &v32));
	len = codec_varint_put(b, UINT32_MAX);
	assert_ptr_equal(codec_varint_get32(b, b + len, &v32), b + len);
	assert_int_equal(v32, UINT32_MAX);
	/* over-long but within 10 bytes is accepted (never written) */
	b[0] = 0x81; b[1] = 0x80; b[2] = 0x00;
	assert_ptr_equal(codec_varint_get(b, b + 3, &v), b + 3);
	assert_true(v == 1);
	/* the decoder stops at the varint's end, not at `end` */
	b[0] = 0x05; b[1] = 0xFF;
	assert_ptr_equal(codec_varint_get(b, b + 2, &v), b + 1);
	assert_true(v == 5);
}

/* ---- blocks: round trips ---------------------------------------------- */

static void test_pack_every_width(void **state)
{
	(void)state;
	uint32_t in[SOUSUO_BLOCK];
	for (unsigned b = 0; b <= 32; b++) {
		for (size_t s = 0; s < NSIZES; s++) {
			size_t n = sizes[s];
			for (int rep = 0; rep < 20; rep++) {
				for (size_t i = 0; i < n; i++)
					in[i] = rnd_bits(b);
				/* make b the true maximum width */
				if (n && b)
					in[rnd_below((uint32_t)n)] |= UINT32_C(1) << (b - 1);
				size_t len = roundtrip(in, n);
				if (n == 0)
					assert_int_equal(len, 0);
				/* never larger than plain packing at width b */
				if (n)
					assert_true(len <= 1 + (n * b + 7) / 8);
			}
		}
	}
}

static void test_pack_boundaries(void **state)
{
	(void)state;
	uint32_t specials[3 * 33 + 2];
	size_t ns = 0;
	specials[ns++] = 0;
	specials[ns++] = UINT32_MAX;
	for (unsigned k = 0; k < 32; k++) {
		uint32_t p = UINT32_C(1) << k;
		specials[ns++] = p - 1;
		specials[ns++] = p;
		specials[ns++] = p + 1;
	}
	uint32_t in[SOUSUO_BLOCK];
	/* each special alone, in every small size, and all together */
	for (size_t s = 0; s < NSIZES; s++) {
		size_t n = sizes[s];
		for (size_t j = 0; j < ns; j++) {
			for (size_t i = 0; i < n; i++)
				in[i] = specials[j];
			roundtrip(in, n);
			/* as a lone outlier among small values, at each end */
			for (size_t i = 0; i < n; i++)
				in[i] = (uint32_t)(i % 3);
			if (n) {
				in[0] = specials[j];
				roundtrip(in, n);
				in[0] = 0;
				in[n - 1] = specials[j];
				roundtrip(in, n);
			}
		}
		for (size_t i = 0; i < n; i++)
			in[i] = specials[rnd_below((uint32_t)ns)];
		roundtrip(in, n);
	}
	for (size_t i = 0; i < SOUSUO_BLOCK; i++)
		in[i] = specials[i % ns];
	roundtrip(in, SOUSUO_BLOCK);
	for (size_t i = 0; i < SOUSUO_BLOCK; i++)
		in[i] = UINT32_MAX;
	assert_int_equal(roundtrip(in, SOUSUO_BLOCK), codec_pack_bound(SOUSUO_BLOCK));
}

/* Value distributions that look like postings. */
enum dist { D_DOCGAP, D_TF, D_POSGAP, D_GEOM, D_OUTLIERS, D_UNIFORM, D_NDIST };

static uint32_t draw(enum dist d, size_t i)
{
	switch (d) {
	case D_DOCGAP: /* 1..50, mostly small */
		return 1 + (rnd_below(4) ? rnd_below(8) : rnd_below(50));
	case D_TF: /* tf - 1: mostly 0, zipf-like tail */
		if (rnd_below(10) < 8)
			return 0;
		return rnd_below(100) ? rnd_below(4) : rnd_below(5000);
	case D_POSGAP: /* first absolute, then gaps 10..3000 */
		if (i == 0 || rnd_below(20) == 0)
			return rnd_below(100000);
		return 10 + rnd_below(rnd_below(2) ? 200 : 3000);
	case D_GEOM: {
		uint32_t v = 0;
		while (rnd_below(3) && v < 60)
			v++;
		return v;
	}
	case D_OUTLIERS: /* small values, a few huge */
		return rnd_below(30) ? rnd_below(16) : (uint32_t)(rnd() >> rnd_below(32));
	case D_UNIFORM:
	default:
		return (uint32_t)rnd();
	}
}

static void test_pack_random(void **state)
{
	(void)state;
	uint32_t in[SOUSUO_BLOCK];
	for (int d = 0; d < D_NDIST; d++) {
		for (int rep = 0; rep < 3000; rep++) {
			size_t n = rep < 1000 ? 1 + rnd_below(4) : 1 + rnd_below(SOUSUO_BLOCK);
			for (size_t i = 0; i < n; i++)
				in[i] = draw((enum dist)d, i);
			roundtrip(in, n);
		}
	}
}

/* Blocks at every alignment inside one long stream, decoded in sequence. */
static void test_pack_stream(void **state)
{
	(void)state;
	enum { NB = 400 };
	static uint32_t vals[NB][SOUSUO_BLOCK];
	static size_t ns[NB];
	size_t cap = NB * (1 + 4 * SOUSUO_BLOCK);
	uint8_t *buf = malloc(cap), *o = buf;
	for (int k = 0; k < NB; k++) {
		ns[k] = rnd_below(SOUSUO_BLOCK + 1);
		for (size_t i = 0; i < ns[k]; i++)
			vals[k][i] = draw((enum dist)(k % D_NDIST), i);
		o += codec_pack(vals[k], ns[k], o);
	}
	size_t len = (size_t)(o - buf);
	uint8_t *copy = malloc(len);
	memcpy(copy, buf, len);
	const uint8_t *p = copy;
	uint32_t out[SOUSUO_BLOCK];
	for (int k = 0; k < NB; k++) {
		p = codec_unpack(p, copy + len, out, ns[k]);
		assert_non_null(p);
		assert_memory_equal(out, vals[k], ns[k] * sizeof(uint32_t));
	}
	assert_ptr_equal(p, copy + len);
	free(copy);
	free(buf);
}

/* ---- blocks: malformed input ------------------------------------------ */

static void test_truncation(void **state)
{
	(void)state;
	uint32_t in[SOUSUO_BLOCK];
	for (int rep = 0; rep < 600; rep++) {
		size_t n = rep % 3 ? 1 + rnd_below(8) : 1 + rnd_below(SOUSUO_BLOCK);
		enum dist d = (enum dist)(rep % D_NDIST);
		for (size_t i = 0; i < n; i++)
			in[i] = draw(d, i);
		check_truncations(in, n);
	}
	/* every width */
	for (unsigned b = 1; b <= 32; b++) {
		for (size_t i = 0; i < SOUSUO_BLOCK; i++)
			in[i] = rnd_bits(b) | (UINT32_C(1) << (b - 1));
		check_truncations(in, SOUSUO_BLOCK);
		check_truncations(in, 3);
	}
}

static void test_garbage(void **state)
{
	(void)state;
	uint32_t out[SOUSUO_BLOCK + 1];
	size_t ok = 0;
	for (int rep = 0; rep < 200000; rep++) {
		size_t len = rnd_below(rep % 4 ? 24 : 600);
		uint8_t *g = malloc(len ? len : 1);
		for (size_t i = 0; i < len; i++)
			g[i] = (uint8_t)rnd();
		/* bias the header towards plausible values */
		if (len && rep % 2)
			g[0] = (uint8_t)((g[0] & 0xC0) | rnd_below(34));
		size_t n = rnd_below(SOUSUO_BLOCK + 1);
		out[n] = 0xDEADBEEF;
		const uint8_t *e = codec_unpack(g, g + len, out, n);
		if (e) {
			assert_true(e >= g && e <= g + len);
			ok++;
		}
		assert_int_equal(out[n], 0xDEADBEEF);
		uint64_t v;
		e = codec_varint_get(g, g + len, &v);
		assert_true(!e || (e > g && e <= g + len));
		free(g);
	}
	/* some garbage must decode, or the test exercised nothing */
	assert_true(ok > 1000);
}

static const uint8_t *unpack_bytes(const uint8_t *bytes, size_t len, uint32_t *out, size_t n)
{
	/* exact-size heap copy: ASan catches an over-read */
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, bytes, len);
	const uint8_t *e = codec_unpack(copy, copy + len, out, n);
	const uint8_t *r = e ? bytes + (e - copy) : NULL;
	free(copy);
	return r;
}

static void test_malformed_blocks(void **state)
{
	(void)state;
	uint32_t out[SOUSUO_BLOCK];
	uint8_t b[600];
	memset(b, 0, sizeof b);

	/* n beyond the block limit */
	assert_null(unpack_bytes(b, sizeof b, out, SOUSUO_BLOCK + 1));
	/* empty input for n >= 1; n == 0 reads nothing */
	assert_null(unpack_bytes(b, 0, out, 1));
	assert_ptr_equal(unpack_bytes(b, 0, out, 0), b);
	/* bit width 33..63 */
	for (unsigned w = 33; w < 64; w++) {
		b[0] = (uint8_t)w;
		assert_null(unpack_bytes(b, sizeof b, out, 4));
	}
	/* b == 32 with exceptions */
	b[0] = 32 | 0x40;
	b[5] = 0x00; b[6] = 0x01;
	assert_null(unpack_bytes(b, 7, out, 1));
	b[0] = 32;
	assert_ptr_equal(unpack_bytes(b, 5, out, 1), b + 5);

	/* b = 0, exceptions: one exception at index 1 of n = 2, high part 7 */
	uint8_t ok[] = { 0x40, 0x01, 0x07 };
	assert_ptr_equal(unpack_bytes(ok, sizeof ok, out, 2), ok + 3);
	assert_int_equal(out[0], 0);
	assert_int_equal(out[1], 7);
	/* exception index >= n */
	uint8_t e1[] = { 0x40, 0x02, 0x07 };
	assert_null(unpack_bytes(e1, sizeof e1, out, 2));
	/* index not increasing, repeated, or a chain longer than n */
	uint8_t e2[] = { 0x40, 0x81, 0x07, 0x00, 0x07 };
	assert_null(unpack_bytes(e2, sizeof e2, out, 2));
	uint8_t e3[] = { 0x40, 0x81, 0x07, 0x01, 0x07 };
	assert_null(unpack_bytes(e3, sizeof e3, out, 2));
	uint8_t e4[] = { 0x40, 0x80, 0x07, 0x81, 0x07, 0x82, 0x07 };
	assert_null(unpack_bytes(e4, sizeof e4, out, 2));
	/* zero high part */
	uint8_t e5[] = { 0x40, 0x00, 0x00 };
	assert_null(unpack_bytes(e5, sizeof e5, out, 1));
	/* high part overflowing 32 bits after the shift: b = 4, hi = 2^28 */
	uint8_t e6[] = { 0x44, 0x0F, 0x00, 0x80, 0x80, 0x80, 0x80, 0x01 };
	assert_null(unpack_bytes(e6, sizeof e6, out, 1));
	/* ... and hi = 2^28 - 1 fits: value UINT32_MAX */
	uint8_t e7[] = { 0x44, 0x0F, 0x00, 0xFF, 0xFF, 0xFF, 0x7F };
	assert_ptr_equal(unpack_bytes(e7, sizeof e7, out, 1), e7 + sizeof e7);
	assert_int_equal(out[0], UINT32_MAX);
	/* high part varint overlong (> 10 bytes) */
	uint8_t e8[14] = { 0x40, 0x00 };
	memset(e8 + 2, 0x80, 11);
	e8[13] = 0x01;
	assert_null(unpack_bytes(e8, sizeof e8, out, 1));
	/* exception list ends without a terminating exception */
	uint8_t e9[] = { 0x40, 0x80, 0x07 };
	assert_null(unpack_bytes(e9, sizeof e9, out, 2));

	/* varint mode: value[0] = 5 | (hi << 6) */
	uint8_t v1[] = { 0xC5, 0x02, 0x09 };
	assert_ptr_equal(unpack_bytes(v1, sizeof v1, out, 2), v1 + 3);
	assert_int_equal(out[0], 5 + (2 << 6));
	assert_int_equal(out[1], 9);
	/* value[0] overflowing 32 bits: hi = 2^26 */
	uint8_t v2[] = { 0xC0, 0x80, 0x80, 0x80, 0x20 };
	assert_null(unpack_bytes(v2, sizeof v2, out, 1));
	uint8_t v3[] = { 0xFF, 0xFF, 0xFF, 0xFF, 0x1F };
	assert_ptr_equal(unpack_bytes(v3, sizeof v3, out, 1), v3 + 5);
	assert_int_equal(out[0], UINT32_MAX);
	/* a later value overflowing 32 bits */
	uint8_t v4[] = { 0x81, 0x80, 0x80, 0x80, 0x80, 0x10 };
	assert_null(unpack_bytes(v4, sizeof v4, out, 2));
	/* too few varints */
	uint8_t v5[] = { 0x81, 0x01 };
	assert_null(unpack_bytes(v5, sizeof v5, out, 3));
}

/* The byte format is the on-disk format: pin the examples of codec.c. */
static void test_golden(void **state)
{
	(void)state;
	static const struct {
		uint32_t v[8];
		size_t n, len;
		uint8_t bytes[8];
	} g[] = {
		{ { 0 }, 0, 0, { 0 } },
		{ { 0, 0, 0 }, 3, 1, { 0x00 } },
		{ { 5 }, 1, 1, { 0x85 } },
		{ { 100000 }, 1, 3, { 0xE0, 0x9A, 0x0C } },
		{ { 7, 7, 7, 7, 7, 7, 7, 7 }, 8, 4, { 0x03, 0xFF, 0xFF, 0xFF } },
		{ { 1, 2, 3, 1000 }, 4, 5, { 0x44, 0x21, 0x83, 0x03, 0x3E } },
		{ { UINT32_MAX }, 1, 5, { 0x20, 0xFF, 0xFF, 0xFF, 0xFF } }, /* tie: PFOR */
	};
	uint8_t buf[1 + 4 * SOUSUO_BLOCK];
	for (size_t k = 0; k < sizeof g / sizeof g[0]; k++) {
		assert_int_equal(codec_pack(g[k].v, g[k].n, buf), g[k].len);
		assert_memory_equal(buf, g[k].bytes, g[k].len);
		roundtrip(g[k].v, g[k].n);
	}
	uint8_t vb[CODEC_VARINT_MAX];
	assert_int_equal(codec_varint_put(vb, 300), 2);
	assert_int_equal(vb[0], 0xAC);
	assert_int_equal(vb[1], 0x02);
}

/* ---- sizes ------------------------------------------------------------ */

static void test_sizes(void **state)
{
	(void)state;
	uint8_t buf[1 + 4 * SOUSUO_BLOCK];
	uint32_t in[SOUSUO_BLOCK];

	/* all zeros: 1 byte for every n >= 1 */
	memset(in, 0, sizeof in);
	for (size_t n = 1; n <= SOUSUO_BLOCK; n++)
		assert_int_equal(codec_pack(in, n, buf), 1);
	/* n == 0: nothing */
	assert_int_equal(codec_pack(in, 0, buf), 0);

	/* 128 values < 16: at most 1 + 64 bytes */
	for (int rep = 0; rep < 1000; rep++) {
		for (size_t i = 0; i < SOUSUO_BLOCK; i++)
			in[i] = rnd_below(16);
		assert_true(codec_pack(in, SOUSUO_BLOCK, buf) <= 1 + 64);
	}
	for (size_t i = 0; i < SOUSUO_BLOCK; i++)
		in[i] = 15;
	assert_int_equal(codec_pack(in, SOUSUO_BLOCK, buf), 1 + 64);

	/* one outlier among 128 values < 16: index byte + a short varint */
	for (unsigned k = 4; k < 32; k++) {
		for (size_t i = 0; i < SOUSUO_BLOCK; i++)
			in[i] = 8 + rnd_below(8);
		in[rnd_below(SOUSUO_BLOCK)] = UINT32_C(1) << k;
		size_t len = codec_pack(in, SOUSUO_BLOCK, buf);
		size_t hibits = k + 1 - 4;
		assert_true(len <= 1 + 64 + 1 + (hibits + 6) / 7);
		assert_true(len <= 1 + 64 + 5);
		roundtrip(in, SOUSUO_BLOCK);
	}

	/* doc-id gaps 1..50: never above 6 bits a value */
	for (size_t i = 0; i < SOUSUO_BLOCK; i++)
		in[i] = 1 + rnd_below(50);
	assert_true(codec_pack(in, SOUSUO_BLOCK, buf) <= 1 + 6 * 16);

	/* tiny lists: one value < 64 is one byte, < 8192 two */
	for (uint32_t v = 0; v < 64; v++) {
		in[0] = v;
		assert_int_equal(codec_pack(in, 1, buf), 1);
	}
	in[0] = 8191;
	assert_int_equal(codec_pack(in, 1, buf), 2);
	in[0] = 100000; /* a first position */
	assert_int_equal(codec_pack(in, 1, buf), 3);
	/* two small values: one byte each at most */
	in[0] = 3; in[1] = 100;
	assert_true(codec_pack(in, 2, buf) <= 2);
	/* tf - 1 of a tiny list: zeros */
	in[0] = 0; in[1] = 0; in[2] = 0;
	assert_int_equal(codec_pack(in, 3, buf), 1);

	/* ties go to PFOR (faster to decode): 2 bytes either way */
	in[0] = 3; in[1] = 5;
	assert_int_equal(codec_pack(in, 2, buf), 2);
	assert_int_equal(buf[0] & 0x80, 0);

	/* ... and among PFOR widths to the one with fewer exceptions: 16
	 * values < 2 and one 3 cost 5 bytes at b = 2 and at b = 1 + exception */
	for (size_t i = 0; i < 16; i++)
		in[i] = (uint32_t)(i & 1);
	in[7] = 3;
	assert_int_equal(codec_pack(in, 16, buf), 5);
	assert_int_equal(buf[0], 2);

	/* pack_bound is exact for the worst case and 1 + 4n */
	for (size_t n = 1; n <= SOUSUO_BLOCK; n++)
		assert_int_equal(codec_pack_bound(n), 1 + 4 * n);
}

/* ---- deltas ----------------------------------------------------------- */

static void test_delta(void **state)
{
	(void)state;
	uint32_t v[SOUSUO_BLOCK], orig[SOUSUO_BLOCK];
	for (int rep = 0; rep < 2000; rep++) {
		size_t n = rnd_below(SOUSUO_BLOCK + 1);
		uint32_t base = rep % 3 ? rnd_below(1000000) : 0;
		uint32_t x = base;
		for (size_t i = 0; i < n; i++) {
			x += rnd_below(4) ? rnd_below(50) : 0; /* repeats allowed */
			orig[i] = v[i] = x;
		}
		codec_delta(v, n, base);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(v[i], orig[i] - (i ? orig[i - 1] : base));
		codec_undelta(v, n, base);
		assert_memory_equal(v, orig, n * sizeof *v);
	}
	/* documented example: v[i] = base + v[0] + ... + v[i] */
	uint32_t g[] = { 3, 0, 5, 1 };
	codec_undelta(g, 4, 10);
	assert_int_equal(g[0], 13);
	assert_int_equal(g[1], 13);
	assert_int_equal(g[2], 18);
	assert_int_equal(g[3], 19);
	/* the full range */
	uint32_t h[] = { 0, 1, UINT32_MAX - 1, UINT32_MAX };
	codec_delta(h, 4, 0);
	assert_int_equal(h[0], 0);
	assert_int_equal(h[1], 1);
	assert_int_equal(h[2], UINT32_MAX - 2);
	assert_int_equal(h[3], 1);
	codec_undelta(h, 4, 0);
	assert_int_equal(h[3], UINT32_MAX);
	/* n == 0 touches nothing */
	codec_delta(NULL, 0, 5);
	codec_undelta(NULL, 0, 5);
}

/* Delta + pack + unpack + undelta, as the index writer and reader use it. */
static void test_postings_pipeline(void **state)
{
	(void)state;
	uint32_t docs[SOUSUO_BLOCK], gaps[SOUSUO_BLOCK], out[SOUSUO_BLOCK];
	uint8_t buf[1 + 4 * SOUSUO_BLOCK];
	uint32_t base = 0;
	for (int blk = 0; blk < 500; blk++) {
		size_t n = 1 + rnd_below(SOUSUO_BLOCK);
		uint32_t x = base;
		for (size_t i = 0; i < n; i++) {
			x += 1 + rnd_below(50);
			docs[i] = gaps[i] = x;
		}
		codec_delta(gaps, n, base);
		size_t len = codec_pack(gaps, n, buf);
		assert_ptr_equal(codec_unpack(buf, buf + len, out, n), buf + len);
		codec_undelta(out, n, base);
		assert_memory_equal(out, docs, n * sizeof *out);
		base = docs[n - 1];
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varint_roundtrip),
		cmocka_unit_test(test_varint_malformed),
		cmocka_unit_test(test_pack_every_width),
		cmocka_unit_test(test_pack_boundaries),
		cmocka_unit_test(test_pack_random),
		cmocka_unit_test(test_pack_stream),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_malformed_blocks),
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_delta),
		cmocka_unit_test(test_postings_pipeline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
