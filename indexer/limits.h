/* limits.h — every fixed limit of the indexer and the query engine, in one
 * place, each with the reason for its value.  Tunables that a user can change
 * at run time are options of the programs; these are the hard ceilings. */
#ifndef SOUSUO_LIMITS_H
#define SOUSUO_LIMITS_H

/* A document's body larger than this is skipped with a reason: positions are
 * 32-bit and the document store frames a body as one zstd frame. */
#define SOUSUO_MAX_DOC_BYTES (256u * 1024 * 1024)

/* Documents per index: document ids are 32-bit in postings. */
#define SOUSUO_MAX_DOCS (1u << 30)

/* A query line (bytes) accepted by the query parser. */
#define SOUSUO_MAX_QUERY_BYTES 4096

/* Terms (leaves of the query tree) in one query, and nesting depth of
 * parentheses: bound the work and the recursion of one query. */
#define SOUSUO_MAX_QUERY_TERMS 32
#define SOUSUO_MAX_QUERY_DEPTH 16

/* Tokens in one query term ("外商投资" is 4 tokens): bounds the positional
 * verification work per candidate document. */
#define SOUSUO_MAX_TERM_TOKENS 64

/* Results a caller may ask for in one call (limit + offset). */
#define SOUSUO_MAX_RESULTS 11000

/* Values packed together by the integer codec: one postings block. */
#define SOUSUO_BLOCK 128

#endif
