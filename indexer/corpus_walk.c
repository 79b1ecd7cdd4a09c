/* corpus_walk.c — the sorted recursive folder walk (hidden entries left out,
 * symbolic links and loops handled); called by corpus_next in corpus.c. */
#include "indexer/corpus_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* a + "/" + b; just b when a is "" ; no doubled "/" when a ends with one. */
static char *join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la == 0)
		return corpus_dup_n(b, lb);
	int slash = a[la - 1] != '/';
	char *p = malloc(la + slash + lb + 1);
	if (!p)
		return NULL;
	memcpy(p, a, la);
	if (slash)
		p[la] = '/';
	memcpy(p + la + slash, b, lb + 1);
	return p;
}

static int skip_hidden(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

static int by_bytes(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

void corpus_walk_pop(corpus_reader *r)
{
	frame *f = &r->stack[--r->depth];
	for (int i = 0; i < f->n; i++)
		free(f->ents[i]);
	free(f->ents);
	free(f->rel);
	free(f->fs);
}

/* Pushes a folder (taking rel and fs); returns 0 or -1 (fatal). */
int corpus_walk_push(corpus_reader *r, char *rel, char *fs)
{
	struct stat st;
	if (stat(fs, &st) != 0) {
		int rc = corpus_skip_input(r, fs, "cannot open folder: %s", strerror(errno));
		free(rel);
		free(fs);
		return rc;
	}
	for (size_t i = 0; i < r->depth; i++)
		if (r->stack[i].dev == st.st_dev && r->stack[i].ino == st.st_ino) {
			free(rel);  /* a loop through a bind mount: not followed */
			free(fs);
			return 0;
		}
	if (r->depth == r->stack_cap) {
		size_t nc = r->stack_cap ? r->stack_cap * 2 : 8;
		frame *ns = realloc(r->stack, nc * sizeof *ns);
		if (!ns) {
			free(rel);
			free(fs);
			return corpus_oom(r);
		}
		r->stack = ns;
		r->stack_cap = nc;
	}
	struct dirent **ents = NULL;
	errno = 0;
	int n = scandir(fs, &ents, skip_hidden, by_bytes);
	if (n < 0) {
		int e = errno;
		int rc = e == ENOMEM ? corpus_oom(r) : corpus_skip_input(r, fs, "cannot open folder: %s", strerror(e));
		free(rel);
		free(fs);
		return rc;
	}
	frame *f = &r->stack[r->depth++];
	f->ents = ents;
	f->n = n;
	f->i = 0;
	f->rel = rel;
	f->fs = fs;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	return 0;
}

/* Handles the next entry of the top folder: 1 (document), 0 (go on), -1. */
int corpus_walk_step(corpus_reader *r)
{
	frame *f = &r->stack[r->depth - 1];
	if (f->i >= f->n) {
		corpus_walk_pop(r);
		return 0;
	}
	struct dirent *e = f->ents[f->i++];
	const char *name = e->d_name;
	int kind = corpus_kind_of_name(name);
	char *rel = join(f->rel, name);
	char *fs = join(f->fs, name);
	if (!rel || !fs) {
		free(rel);
		free(fs);
		return corpus_oom(r);
	}
	int type = K_NONE, rc = 0;
	if (e->d_type == DT_DIR) {
		type = K_DIR;
	} else if (e->d_type == DT_REG) {
		type = kind;
	} else if (e->d_type == DT_LNK || e->d_type == DT_UNKNOWN) {
		struct stat st;
		if (lstat(fs, &st) != 0) {
			if (kind != K_NONE)
				rc = corpus_skip_input(r, fs, "cannot stat: %s", strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			type = K_DIR;
		} else if (S_ISREG(st.st_mode)) {
			type = kind;
		} else if (S_ISLNK(st.st_mode) && kind != K_NONE) {
			/* a link to a file is read; a link to a folder is not followed */
			if (stat(fs, &st) != 0)  /* the reason tells a loop from a dangling link */
				rc = corpus_skip_input(r, fs, "broken symbolic link: %s", strerror(errno));
			else if (S_ISREG(st.st_mode))
				type = kind;
		}
	}
	if (type == K_DIR)
		return corpus_walk_push(r, rel, fs);  /* takes rel and fs */
	if (type == K_MD || type == K_TXT)
		rc = corpus_load_file(r, rel, fs, type);
	else if (type == K_JSONL)
		rc = corpus_jsonl_open(r, rel, fs);
	free(rel);
	free(fs);
	return rc;
}
