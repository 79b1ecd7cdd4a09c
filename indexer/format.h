/* format.h — the on-disk index format, shared by the writer (indexer/writer.c,
 * which documents the format in full at its top, as does docs/INDEX-FORMAT.md)
 * and the reader (search/index.c).  Constants, key construction and the fixed
 * records; nothing here allocates or does I/O.
 *
 * The file is little-endian; the build refuses a big-endian host rather than
 * byte-swapping on the hot path. */
#ifndef SOUSUO_FORMAT_H
#define SOUSUO_FORMAT_H

#include <stdint.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "sousuo's index format is little-endian; this host is not"
#endif

/* "SOUSUOIX" read as a little-endian u64: a byte-swapped or foreign file
 * shows up as a magic mismatch before anything else is read. */
#define FMT_MAGIC 0x58494F5553554F53ull
#define FMT_VERSION 2u   /* 2: every 3- and 4-character run of a title is a key */

/* Sections, in file order.  Every section starts on a 64-byte boundary and
 * has its own xxh3-64 checksum in the section table. */
enum {
	FMT_SEC_DICTINDEX = 0,/* fmt_group[ceil(nterms / FMT_GROUP)] */
	FMT_SEC_DICT,         /* per group: its terms' entries, varint-coded */
	FMT_SEC_POSTINGS,     /* per-term doc/tf blocks */
	FMT_SEC_POSITIONS,    /* per-term position streams */
	FMT_SEC_DOCS,         /* fmt_doc[ndocs] */
	FMT_SEC_CATEGORIES,   /* u32 count, u32 offsets[count+1], bytes */
	FMT_SEC_ZDICT,        /* zstd dictionary for the store */
	FMT_SEC_STORE,        /* zstd frames: per document a meta frame then a body frame */
	FMT_NSECTIONS
};

typedef struct {
	uint64_t offset;      /* from the start of the file */
	uint64_t length;      /* bytes */
	uint64_t checksum;    /* XXH3_64bits of the section's bytes */
} fmt_section;

/* The header: the first FMT_HEADER_BYTES of the file.  header_checksum is
 * XXH3_64bits of every byte before it. */
typedef struct {
	uint64_t magic;
	uint32_t version;
	uint32_t header_bytes;       /* sizeof(fmt_header) */
	uint64_t file_bytes;         /* whole file; a truncated file is caught here */
	uint32_t ndocs;
	uint32_t ncategories;
	uint64_t nterms;
	uint64_t body_tokens;        /* sum of documents' body lengths in tokens */
	uint64_t title_tokens;       /* sum of title lengths in tokens */
	uint64_t created;            /* unix time of the build */
	uint32_t block;              /* postings block size (SOUSUO_BLOCK) */
	uint32_t nsections;          /* FMT_NSECTIONS */
	fmt_section sections[FMT_NSECTIONS];
	uint64_t header_checksum;
} fmt_header;

/* The dictionary: terms in ascending key order, in groups of FMT_GROUP.
 * DICTINDEX holds one fmt_group per group (binary-searched by first_key);
 * DICT holds each group's entries:
 *   entry := [varint key - previous key]   (not for the group's first term)
 *            varint df                     (documents containing the term)
 *            varint blob bytes             (its blob in POSTINGS)
 * The group's terms' blobs lie back to back from fmt_group.postings. */
#define FMT_GROUP 16
typedef struct {
	uint64_t first_key;          /* key of the group's first term */
	uint32_t dict;               /* offset of the group's entries in DICT */
	uint32_t postings;           /* offset of the first term's blob in POSTINGS */
} fmt_group;

/* One document. */
typedef struct {
	uint32_t body_tokens;        /* body length in tokens (BM25 length) */
	uint32_t date;               /* YYYYMMDD or 0 */
	uint64_t store;              /* offset of its meta frame in STORE */
	uint32_t meta_bytes;         /* compressed meta frame length */
	uint32_t body_bytes;         /* compressed body frame length, right after */
	uint16_t title_tokens;       /* title length in tokens, capped at 65535 */
	uint16_t category;           /* index into CATEGORIES */
	uint32_t reserved;           /* zero */
} fmt_doc;

/* Term keys.  Bits 63..60 are the kind, bit 59 the field (1 = title), the
 * low 59 bits the value: a code point, two code points, or a hash. */
enum {
	FMT_KIND_CJK = 1,    /* one CJK character; doc-level postings, no positions */
	FMT_KIND_BIGRAM = 2, /* two adjacent CJK characters; positional */
	FMT_KIND_WORD = 3,   /* a word (hash of its normalized bytes); positional */
	FMT_KIND_PAIR = 4,   /* a word and a CJK character adjacent, either order
	                        (hash of the two tokens' keys); positional */
	FMT_KIND_NGRAM = 5,  /* a run of 3 adjacent CJK characters that occurs
	                        in many documents (hash of the code points);
	                        doc-level postings, no positions: an exact
	                        answer for a query of just that run */
	FMT_KIND_NGRAM4 = 6  /* the same for a run of 4, with positions: it also
	                        covers 4 characters of a longer run in one
	                        position check */
};
#define FMT_KEY_VALUE_MASK ((1ull << 59) - 1)
#define FMT_KEY_TITLE (1ull << 59)

static inline uint64_t fmt_key(unsigned kind, uint64_t value)
{
	return ((uint64_t)kind << 60) | (value & FMT_KEY_VALUE_MASK);
}
static inline unsigned fmt_key_kind(uint64_t key) { return (unsigned)(key >> 60); }
static inline int fmt_key_positional(uint64_t key)
{
	return fmt_key_kind(key) != FMT_KIND_CJK && fmt_key_kind(key) != FMT_KIND_NGRAM;
}

/* Meta frame payload: path NUL title NUL ext_id NUL (ext_id may be empty). */

#endif
