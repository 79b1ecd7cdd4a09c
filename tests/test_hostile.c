/* test_hostile.c — sousuo-index, the real program ($BIN/sousuo-index run by
 * fork/exec), on hostile corpora built in a temporary folder, and killed in
 * the middle of builds (issue 5).  Whatever the input, the indexer must
 * finish, skip what it must with a reason on stderr, and keep its peak
 * memory bounded; a build killed with SIGKILL at any moment must leave the
 * previous index intact and no file a server would load.  The corpus
 * reader's rules are unit-tested in test_corpus.c; here they are checked end
 * to end, through the exit status, the messages and the index written, and
 * the peak memory of each run (wait4's ru_maxrss) is printed for the record.
 *
 * The cases: one 100 MB line (a Markdown heading without end); random Han
 * characters (a new term at every character); binary files named .md and
 * invalid UTF-8 of every kind at every kind of place; 100,000 tiny files in
 * nested folders; JSON Lines with every kind of bad line, 1 GB without a
 * newline, a line over the 256 MB limit; unreadable files and folders (as
 * uid nobody when run as root), a FIFO, a folder named .md; link loops,
 * links to parents, folders nested past PATH_MAX; --strict, which fails and
 * keeps the old index; builds killed at seven moments, then the next build,
 * which removes the dead builds' temporaries.
 *
 * Sizes, from the environment:
 *   HOSTILE_BIG_MB       the file without a newline (default 100; 16 under
 *                        AddressSanitizer, whose build is several times slower)
 *   HOSTILE_RANDOM_MB    random Han characters (default 4; 2 under ASan)
 *   HOSTILE_TINY_FILES   the many-small-files case (default 100000)
 *   HOSTILE_LONG_LINE_MB a JSON line over the 256 MB limit (default 300;
 *                        not tried under ASan)
 *   HOSTILE_KILL_CORPUS  what the interrupted builds index (default
 *                        $SHARED/corpus/laws, its 行政法规 folder under
 *                        AddressSanitizer; a generated corpus when missing)
 *   HOSTILE_ONLY         a glob: run only the cases it matches
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "indexer/limits.h"
#include "search/engine.h"
#include "search/index.h"
#include "search/query.h"
#include "tests/testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define MB (1024.0 * 1024.0)

/* The user a root test switches to for the permission cases. */
#define NOBODY 65534

/* ---------------------------------------------------------------- helpers */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

static long env_long(const char *name, long def)
{
	const char *s = getenv(name);
	return s && *s ? strtol(s, NULL, 10) : def;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* The current case's folder: removed by the teardown even when the case
 * fails half-way (it may hold 100,000 files or a 100 MB one). */
static char live_root[256];

/* A fresh folder /tmp/sousuo-test-PID-name-XXXXXX into out, readable by
 * everyone (a root test runs the indexer as nobody in some cases). */
static void make_root(char *out, size_t n, const char *name)
{
	char pat[256];
	snprintf(pat, sizeof pat, "%s-XXXXXX", test_tmp_path(name));
	assert_non_null(mkdtemp(pat));
	assert_int_equal(chmod(pat, 0755), 0);
	snprintf(out, n, "%s", pat);
	snprintf(live_root, sizeof live_root, "%s", pat);
}

static void join(char *out, size_t n, const char *dir, const char *rel)
{
	int w = snprintf(out, n, "%s/%s", dir, rel);
	assert_true(w > 0 && (size_t)w < n);
}

static void put(const char *dir, const char *rel, const void *data, size_t len)
{
	char p[4096];
	join(p, sizeof p, dir, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fail_msg("create %s: %s", p, strerror(errno));
	const char *c = data;
	while (len) {
		ssize_t k = write(fd, c, len);
		assert_true(k > 0);
		c += k;
		len -= (size_t)k;
	}
	assert_int_equal(close(fd), 0);
}

static void put_s(const char *dir, const char *rel, const char *s)
{
	put(dir, rel, s, strlen(s));
}

static void make_dir(const char *dir, const char *rel)
{
	char p[4096];
	join(p, sizeof p, dir, rel);
	if (mkdir(p, 0755) != 0)
		fail_msg("mkdir %s: %s", p, strerror(errno));
}

static void make_link(const char *dir, const char *rel, const char *target)
{
	char p[4096];
	join(p, sizeof p, dir, rel);
	if (symlink(target, p) != 0)
		fail_msg("symlink %s: %s", p, strerror(errno));
}

/* Removes name under dfd, a whole tree; works below PATH_MAX depth and
 * through folders left without permissions. */
static void rm_at(int dfd, const char *name)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlinkat(dfd, name, 0);
		return;
	}
	int chmodded = fchmodat(dfd, name, 0755, 0) == 0;  /* one left without permissions */
	(void)chmodded;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		DIR *d = fdopendir(fd);
		if (d) {
			struct dirent *e;
			while ((e = readdir(d)))
				if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
					rm_at(fd, e->d_name);
			closedir(d);
		} else {
			close(fd);
		}
	}
	unlinkat(dfd, name, AT_REMOVEDIR);
}

static void rm_tree(const char *path)
{
	rm_at(AT_FDCWD, path);
}

static int remove_root(void **state)
{
	(void)state;
	if (live_root[0])
		rm_tree(live_root);
	live_root[0] = '\0';
	return 0;
}

static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	char *b = malloc((size_t)st.st_size + 1);
	assert_non_null(b);
	size_t n = 0;
	ssize_t k;
	while (n < (size_t)st.st_size && (k = read(fd, b + n, (size_t)st.st_size - n)) > 0)
		n += (size_t)k;
	close(fd);
	assert_int_equal(n, (size_t)st.st_size);
	b[n] = '\0';
	*len = n;
	return b;
}

/* ---------------------------------------------------------------- running */

typedef struct {
	int status;      /* from wait4 */
	long rss_kb;     /* the run's peak resident set (ru_maxrss) */
	double secs;
	char *out, *err; /* what it wrote on stdout and stderr */
} run_t;

static void run_free(run_t *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof *r);
}

/* The whole of an unlinked capture file. */
static char *read_capture(int fd)
{
	off_t end = lseek(fd, 0, SEEK_END);
	assert_true(end >= 0);
	char *b = malloc((size_t)end + 1);
	assert_non_null(b);
	size_t n = 0;
	ssize_t k;
	while (n < (size_t)end && (k = pread(fd, b + n, (size_t)end - n, (off_t)n)) > 0)
		n += (size_t)k;
	b[n] = '\0';
	close(fd);
	return b;
}

/* Starts sousuo-index with args (NULL-terminated, after argv[0]), its
 * stdout and stderr going to unlinked files *of and *ef; as user nobody
 * when drop_root. */
static pid_t spawn_index(const char *const *args, int drop_root, int *of, int *ef)
{
	char exe[512];
	snprintf(exe, sizeof exe, "%s/sousuo-index", test_bin_dir());
	const char *argv[64] = { exe };
	int argc = 1;
	for (int i = 0; args[i]; i++) {
		assert_true(argc < 63);
		argv[argc++] = args[i];
	}
	argv[argc] = NULL;
	const char *names[2] = { test_tmp_path("stdout"), test_tmp_path("stderr") };
	int fds[2];
	for (int i = 0; i < 2; i++) {
		fds[i] = open(names[i], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		assert_true(fds[i] >= 0);
		unlink(names[i]);
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[0], 1);
		dup2(fds[1], 2);
		if (drop_root && (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))) {
			dprintf(2, "cannot become uid %d: %s\n", NOBODY, strerror(errno));
			_exit(126);
		}
		execv(exe, (char *const *)argv);
		dprintf(2, "exec %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	*of = fds[0];
	*ef = fds[1];
	return pid;
}

/* Runs sousuo-index to its end; fails the test when it takes longer than
 * limit_s (a hang is a failure, not a wait). */
static void run_index(const char *const *args, int drop_root, double limit_s, run_t *r)
{
	memset(r, 0, sizeof *r);
	int of, ef;
	double t0 = now_s();
	pid_t pid = spawn_index(args, drop_root, &of, &ef);
	struct rusage ru;
	pid_t w;
	while ((w = wait4(pid, &r->status, WNOHANG, &ru)) == 0) {
		if (now_s() - t0 > limit_s) {
			kill(pid, SIGKILL);
			wait4(pid, &r->status, 0, &ru);
			char *e = read_capture(ef);
			fail_msg("sousuo-index %s ... did not finish in %.0f s; stderr:\n%.2000s",
			         args[0], limit_s, e);
		}
		sleep_us(2000);
	}
	assert_int_equal(w, pid);
	r->secs = now_s() - t0;
	r->rss_kb = ru.ru_maxrss;
	r->out = read_capture(of);
	r->err = read_capture(ef);
}

static void expect_exit(const run_t *r, int code)
{
	if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != code)
		fail_msg("sousuo-index: wanted exit %d, got status 0x%x; stderr:\n%.4000s", code,
		         (unsigned)r->status, r->err);
}

/* The reason given for skipping what (the path as opened, or "path:line"),
 * or NULL: the text after "sousuo-index: skipped WHAT: " on its line. */
static const char *skip_reason(const run_t *r, const char *what)
{
	static char why[512];
	char pre[4200];
	snprintf(pre, sizeof pre, "sousuo-index: skipped %s: ", what);
	size_t pl = strlen(pre);
	for (const char *l = r->err; *l;) {
		const char *eol = strchr(l, '\n');
		size_t ll = eol ? (size_t)(eol - l) : strlen(l);
		if (ll >= pl && !memcmp(l, pre, pl)) {
			snprintf(why, sizeof why, "%.*s", (int)(ll - pl), l + pl);
			return why;
		}
		l += ll + (eol != NULL);
	}
	return NULL;
}

static void expect_skip(const run_t *r, const char *what, const char *reason)
{
	const char *why = skip_reason(r, what);
	if (!why || !strstr(why, reason))
		fail_msg("%s: wanted a skip with \"%s\", got %s; stderr:\n%.6000s", what, reason,
		         why ? why : "none", r->err);
}

/* Lines of stderr that report a skip, and those among them holding s. */
static int count_skips(const run_t *r, const char *s)
{
	int n = 0;
	for (const char *l = r->err; *l;) {
		const char *eol = strchr(l, '\n');
		size_t ll = eol ? (size_t)(eol - l) : strlen(l);
		if (!strncmp(l, "sousuo-index: skipped ", 22) && (!s || memmem(l, ll, s, strlen(s))))
			n++;
		l += ll + (eol != NULL);
	}
	return n;
}

/* N and M of the summary line "FILE: N documents, M skipped, ...". */
static void summary(const run_t *r, long *docs, long *skipped)
{
	const char *p = strstr(r->out, " documents, ");
	if (!p)
		fail_msg("no summary line in:\n%s", r->out);
	const char *q = p;
	while (q > r->out && q[-1] >= '0' && q[-1] <= '9')
		q--;
	*docs = strtol(q, NULL, 10);
	*skipped = strtol(p + 12, NULL, 10);
}

static void report(const char *what, const run_t *r, double input_bytes)
{
	if (input_bytes > 0)
		print_message("hostile: %-40s %7.2f s, peak RSS %7.1f MB (%.2fx the input, %.1f MB)\n",
		              what, r->secs, r->rss_kb / 1024.0, r->rss_kb * 1024.0 / input_bytes,
		              input_bytes / MB);
	else
		print_message("hostile: %-40s %7.2f s, peak RSS %7.1f MB\n", what, r->secs,
		              r->rss_kb / 1024.0);
}

/* ---------------------------------------------------------------- the index */

static sousuo_index *open_ix(const char *path)
{
	sousuo_index *ix;
	char err[512];
	if (index_open(path, &ix, err, sizeof err))
		fail_msg("index_open %s: %s", path, err);
	return ix;
}

static uint64_t count_q(const sousuo_index *ix, const char *q)
{
	query_error qe;
	query *pq = query_parse(q, strlen(q), &qe);
	if (!pq)
		fail_msg("query %s: %s", q, qe.msg);
	engine_ctx *ec = engine_ctx_new();
	assert_non_null(ec);
	engine_opts eo;
	engine_opts_default(&eo);
	engine_result r;
	char err[256];
	if (engine_search(ec, ix, pq, &eo, &r, err, sizeof err))
		fail_msg("search %s: %s", q, err);
	uint64_t n = r.total;
	engine_ctx_free(ec);
	query_free(pq);
	return n;
}

/* Document doc's path and title, copied into the buffers. */
static void doc_meta(const sousuo_index *ix, uint32_t doc, char *path, size_t pn, char *title,
                     size_t tn)
{
	index_store_ctx *sc = index_store_ctx_new();
	assert_non_null(sc);
	index_meta m;
	assert_int_equal(index_doc_meta(ix, sc, doc, &m), 0);
	snprintf(path, pn, "%s", m.path);
	snprintf(title, tn, "%s", m.title);
	index_store_ctx_free(sc);
}

/* A --strict run over inputs writing idx (as nobody when drop_root) must
 * fail with `want` in its message and leave idx as it was, with no
 * temporary beside it. */
static void check_strict(const char *idx, const char *const *inputs, int n, const char *want,
                         int drop_root)
{
	size_t old_len;
	char *old = slurp(idx, &old_len);
	const char *args[32] = { "--strict", "-o", idx };
	int argc = 3;
	for (int i = 0; i < n; i++)
		args[argc++] = inputs[i];
	args[argc] = NULL;
	run_t r;
	run_index(args, drop_root, 120, &r);
	expect_exit(&r, 1);
	if (!strstr(r.err, want))
		fail_msg("--strict: wanted \"%s\" in stderr:\n%.4000s", want, r.err);
	size_t len;
	char *now = slurp(idx, &len);
	assert_int_equal(len, old_len);
	assert_memory_equal(now, old, len);
	char *dir = strdup(idx), *slash = strrchr(dir, '/');
	*slash = '\0';
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, slash + 1, strlen(slash + 1)) && strstr(e->d_name, ".tmp."))
			fail_msg("--strict left %s/%s", dir, e->d_name);
	closedir(d);
	free(dir);
	free(now);
	free(old);
	run_free(&r);
}

/* ---------------------------------------------------------------- one 100 MB line */

/* Text with no newline: CJK runs, ASCII words and punctuation drawn from
 * small sets, so that its terms stay few and its positions many — the shape
 * of a PDF extraction that lost its line breaks. */
static char *line_block(size_t n)
{
	static const char *const cjk[] = {
		"中", "华", "人", "民", "共", "和", "国", "外", "商", "投", "资", "法", "第", "一",
		"条", "为", "了", "进", "步", "扩", "大", "对", "开", "放", "积", "极", "促", "政",
		"府", "企", "业", "依",
	};
	static const char *const other[] = { "article", "covid", "19", "abc123", "2024", "，",
	                                     "。", " ", "、", "（", "）", "500" };
	char *b = malloc(n);
	assert_non_null(b);
	size_t o = 0;
	while (o + 16 < n) {
		uint64_t x = next_rand();
		const char *s = x % 5 ? cjk[(x >> 8) % 32] : other[(x >> 8) % 12];
		size_t k = strlen(s);
		memcpy(b + o, s, k);
		o += k;
	}
	memset(b + o, ' ', n - o);
	return b;
}

static void test_big_line(void **state)
{
	(void)state;
	long mb = env_long("HOSTILE_BIG_MB", UNDER_ASAN ? 16 : 100);
	char root[256], in[300], out[300], idx[400], big[400];
	make_root(root, sizeof root, "big");
	join(in, sizeof in, root, "in");
	join(out, sizeof out, root, "out");
	make_dir(root, "in");
	make_dir(root, "out");
	join(idx, sizeof idx, out, "x.idx");
	join(big, sizeof big, in, "big.md");

	/* "# " makes the whole line a level-1 heading, the worst case for the
	 * title; the end marker shows that the line was read to its end */
	double t0 = now_s();
	const size_t block = 1u << 20;
	char *b = line_block(block);
	int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "# 起始标记 ", strlen("# 起始标记 ")), (ssize_t)strlen("# 起始标记 "));
	for (long i = 0; i < mb; i++) {
		size_t done = 0;
		while (done < block) {
			ssize_t k = write(fd, b + done, block - done);
			assert_true(k > 0);
			done += (size_t)k;
		}
	}
	assert_int_equal(write(fd, " 末尾标记 zzendzz", strlen(" 末尾标记 zzendzz")),
	                 (ssize_t)strlen(" 末尾标记 zzendzz"));
	assert_int_equal(close(fd), 0);
	free(b);
	struct stat st;
	assert_int_equal(stat(big, &st), 0);
	double gen = now_s() - t0;
	put_s(in, "normal.md", "# 正常\n正常的文件，外商投资。\n");

	const char *args[] = { "-o", idx, in, NULL };
	run_t r;
	run_index(args, 0, 600, &r);
	unlink(big);  /* 100 MB of disk back at once */
	expect_exit(&r, 0);
	long docs, skipped;
	summary(&r, &docs, &skipped);
	assert_int_equal(docs, 2);
	assert_int_equal(skipped, 0);
	char what[64];
	snprintf(what, sizeof what, "one line of %ld MB (written in %.1f s)", mb, gen);
	report(what, &r, (double)st.st_size);

	sousuo_index *ix = open_ix(idx);
	assert_int_equal(index_ndocs(ix), 2);
	assert_int_equal(count_q(ix, "资"), 2);
	assert_int_equal(count_q(ix, "article"), 1);
	assert_int_equal(count_q(ix, "起始标记"), 1);
	assert_int_equal(count_q(ix, "末尾标记"), 1);
	assert_int_equal(count_q(ix, "zzendzz"), 1);
	/* the heading is the whole line: the title shown is cut, not 100 MB
	 * repeated with every result */
	char path[256], title[4096];
	doc_meta(ix, 0, path, sizeof path, title, sizeof title);
	assert_string_equal(path, "big.md");
	assert_true(strlen(title) <= 1024 + 3);
	assert_int_equal(strncmp(title, "起始标记 ", strlen("起始标记 ")), 0);
	assert_string_equal(title + strlen(title) - 3, "…");
	doc_meta(ix, 1, path, sizeof path, title, sizeof title);
	assert_string_equal(title, "正常");
	index_close(ix);

	/* The bound: positions cost a few bytes a token, a token is 1-3 bytes of
	 * text; the sanitizer's shadow and quarantine add their own. */
	double bound = 10.0 * (double)st.st_size + (UNDER_ASAN ? 1024 * MB : 0);
	if (r.rss_kb * 1024.0 >= bound)
		fail_msg("peak RSS %.1f MB for a %.1f MB line: over the bound of %.1f MB",
		         r.rss_kb / 1024.0, st.st_size / MB, bound / MB);
	run_free(&r);
	rm_tree(root);
}

/* ---------------------------------------------------------------- random CJK */

/* The other extreme: random Han characters, where nearly every character
 * starts a bigram never seen before.  Memory follows the distinct terms: the
 * writer keeps each one (32 bytes, so short a postings chain inside) until
 * the postings are encoded, beside its hash slot while tokenizing and its
 * merged entry (32 + 8 bytes) after; with the rest of the process some 90
 * bytes a term at the peak, so here some 30 times the text: bounded, but by
 * the terms, which is what is checked. */
static void test_random_cjk(void **state)
{
	(void)state;
	long mb = env_long("HOSTILE_RANDOM_MB", UNDER_ASAN ? 2 : 4);
	char root[256], in[300], out[300], idx[400];
	make_root(root, sizeof root, "random");
	join(in, sizeof in, root, "in");
	join(out, sizeof out, root, "out");
	make_dir(root, "in");
	make_dir(root, "out");
	join(idx, sizeof idx, out, "x.idx");
	size_t n = (size_t)mb << 20, o = 0;
	char *b = malloc(n + 4);
	assert_non_null(b);
	while (o + 3 <= n) {
		uint32_t cp = 0x4E00 + (uint32_t)(next_rand() % (0xA000 - 0x4E00));
		b[o++] = (char)(0xE0 | (cp >> 12));
		b[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[o++] = (char)(0x80 | (cp & 0x3F));
	}
	put(in, "random.txt", b, o);
	free(b);

	const char *args[] = { "-o", idx, in, NULL };
	run_t r;
	run_index(args, 0, 300, &r);
	expect_exit(&r, 0);
	const char *t = strstr(r.out, " terms (");
	assert_non_null(t);
	while (t > r.out && t[-1] >= '0' && t[-1] <= '9')
		t--;
	long terms = strtol(t, NULL, 10);
	char what[96];
	snprintf(what, sizeof what, "random CJK, %ld MB, %.1fM terms", mb, terms / 1e6);
	report(what, &r, (double)o);
	print_message("hostile: %-40s %7.0f bytes of peak RSS per term\n", "",
	              r.rss_kb * 1024.0 / (double)terms);
	assert_true(terms > (long)(o / 3 / 2));
	double bound = 128.0 * (double)terms + 64 * MB + (UNDER_ASAN ? 1024 * MB : 0);
	if (r.rss_kb * 1024.0 >= bound)
		fail_msg("peak RSS %.1f MB for %ld terms: over the bound of %.1f MB",
		         r.rss_kb / 1024.0, terms, bound / MB);
	sousuo_index *ix = open_ix(idx);
	assert_int_equal(index_ndocs(ix), 1);
	index_close(ix);
	run_free(&r);
	rm_tree(root);
}

/* ---------------------------------------------------------------- binary files, bad UTF-8 */

static void test_binary_and_utf8(void **state)
{
	(void)state;
	char root[256], in[300], out[300], idx[400];
	make_root(root, sizeof root, "utf8");
	join(in, sizeof in, root, "in");
	join(out, sizeof out, root, "out");
	make_dir(root, "in");
	make_dir(root, "out");
	join(idx, sizeof idx, out, "x.idx");
	char p[4096];
	int nbad = 0, nok = 0;

	/* binary files named .md: the corpus rules skip a file with a NUL as
	 * binary, and one that is not UTF-8 as such */
	size_t rn = 64 << 10;
	unsigned char *rb = malloc(rn);
	assert_non_null(rb);
	for (size_t i = 0; i < rn; i++)
		rb[i] = (unsigned char)next_rand();
	rb[1000] = 0;
	put(in, "random.md", rb, rn);
	for (size_t i = 0; i < rn; i++)
		rb[i] = rb[i] ? rb[i] : 1;
	rb[10] = 0xFF;
	put(in, "random-nonul.md", rb, rn);
	free(rb);
	snprintf(p, sizeof p, "%s/sousuo-index", test_bin_dir());
	size_t elen;
	char *elf = slurp(p, &elen);
	assert_int_equal(memcmp(elf, "\x7f" "ELF", 4), 0);
	put(in, "elf.md", elf, elen < rn ? elen : rn);
	free(elf);
	char zeros[4096] = { 0 };
	put(in, "zeros.md", zeros, sizeof zeros);
	put_s(in, "empty.md", "");
	put_s(in, "bom-only.md", "\xEF\xBB\xBF");
	nbad += 6;

	/* every kind of invalid sequence at every kind of place: each file is
	 * skipped whole ("invalid UTF-8"), none of its words reach the index */
	static const char *const bad[] = {
		"\xC3",                     /* truncated 2-byte */
		"\xE4\xB8",                 /* truncated 3-byte (中 without its last byte) */
		"\xF0\x9F\x98",             /* truncated 4-byte */
		"\xC0\xAF", "\xC1\xBF",     /* overlong 2-byte, bytes C0/C1 */
		"\xE0\x80\xAF",             /* overlong 3-byte */
		"\xF0\x80\x80\xAF",         /* overlong 4-byte */
		"\xED\xA0\x80", "\xED\xBF\xBF",  /* surrogates D800, DFFF */
		"\xED\xA0\xBD\xED\xB8\x80", /* a surrogate pair in UTF-8 (CESU-8) */
		"\xF4\x90\x80\x80",         /* above U+10FFFF */
		"\xF5\x80\x80\x80", "\xF8\x88\x80\x80\x80", "\xFC\x84\x80\x80\x80\x80",
		"\xFE", "\xFF", "\xC0", "\xF7",
		"\x80", "\xBF",             /* lone continuation bytes */
		"\xE4\x41\xB8",             /* a lead byte then ASCII */
		"\xE4\xB8\xE4\xB8\xAD",     /* truncated, then a valid 中 */
	};
	static const char *const where[][2] = {
		{ "", " mustnotindex 外商投资" },           /* at the start of the file */
		{ "mustnotindex 外商投资", "" },            /* at its very end */
		{ "mustnotindex 外商", "投资" },            /* in the middle of a CJK run */
		{ "mustnot", "index 外商投资" },            /* inside a word */
		{ "# 标题 mustnotindex\n", "\n正文" },      /* a line of its own */
		{ "<!-- ", " --> mustnotindex" },           /* inside markup that is dropped */
	};
	size_t nbadseq = sizeof bad / sizeof *bad, nwhere = sizeof where / sizeof *where;
	for (size_t i = 0; i < nbadseq; i++)
		for (size_t k = 0; k < nwhere; k++) {
			char name[64], text[256];
			snprintf(name, sizeof name, "u%02zu-%zu.md", i, k);
			snprintf(text, sizeof text, "%s%s%s", where[k][0], bad[i], where[k][1]);
			put_s(in, name, text);
			nbad++;
		}
	/* a file name and a folder name that are not UTF-8 */
	put_s(in, "name\xFF.md", "mustnotindex");
	make_dir(in, "dir\xFE");
	put_s(in, "dir\xFE/a.md", "mustnotindex");
	nbad += 2;

	/* valid, if odd: indexed (a file of control characters is text by the
	 * corpus rules: only a NUL makes a file binary) */
	static const char *const ok[][2] = {
		{ "ok-astral.md", "keepme 😀 \xF4\x8F\xBF\xBF 𠀀" },        /* 4-byte, U+10FFFF */
		{ "ok-nonchar.md", "\xEF\xBF\xBF\xEF\xBF\xBE keepme" },     /* U+FFFF, U+FFFE */
		{ "ok-bom-inside.md", "keepme\xEF\xBB\xBF外商投资" },       /* U+FEFF mid-text */
		{ "ok-controls.md", "\x01\x02\x1b[31m keepme \x7f\x1f" },
		{ "ok-crlf.md", "# 标题\r\n外商投资\r\nkeepme\r\n" },
		{ "ok-replacement.md", "\xEF\xBF\xBD keepme" },
		{ "ok-edges.md", "\xED\x9F\xBF\xEE\x80\x80\xDF\xBF\xC2\x80 keepme" }, /* U+D7FF U+E000 U+7FF U+80 */
	};
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
		put_s(in, ok[i][0], ok[i][1]);
	put_s(in, "ok-blank.md", "  \n\t\n");  /* valid, not empty: a document of no tokens */
	nok = (int)(sizeof ok / sizeof *ok) + 1;

	const char *args[] = { "-o", idx, in, NULL };
	run_t r;
	run_index(args, 0, 120, &r);
	expect_exit(&r, 0);
	report("binary files and bad UTF-8", &r, 0);
	long docs, skipped;
	summary(&r, &docs, &skipped);
	assert_int_equal(docs, nok);
	assert_int_equal(skipped, nbad);
	assert_int_equal(count_skips(&r, NULL), nbad);

	join(p, sizeof p, in, "random.md");
	expect_skip(&r, p, "binary file (contains NUL bytes)");
	join(p, sizeof p, in, "elf.md");
	expect_skip(&r, p, "binary file (contains NUL bytes)");
	join(p, sizeof p, in, "zeros.md");
	expect_skip(&r, p, "binary file (contains NUL bytes)");
	join(p, sizeof p, in, "random-nonul.md");
	expect_skip(&r, p, "invalid UTF-8");
	join(p, sizeof p, in, "empty.md");
	expect_skip(&r, p, "empty file");
	join(p, sizeof p, in, "bom-only.md");
	expect_skip(&r, p, "empty file");
	for (size_t i = 0; i < nbadseq; i++)
		for (size_t k = 0; k < nwhere; k++) {
			char name[64];
			snprintf(name, sizeof name, "u%02zu-%zu.md", i, k);
			join(p, sizeof p, in, name);
			expect_skip(&r, p, "invalid UTF-8");
		}
	join(p, sizeof p, in, "name\xFF.md");
	expect_skip(&r, p, "file name is not valid UTF-8");
	join(p, sizeof p, in, "dir\xFE/a.md");
	expect_skip(&r, p, "file name is not valid UTF-8");

	sousuo_index *ix = open_ix(idx);
	assert_int_equal(index_ndocs(ix), nok);
	assert_int_equal(count_q(ix, "keepme"), nok - 1);
	assert_int_equal(count_q(ix, "mustnotindex"), 0);
	assert_int_equal(count_q(ix, "外商投资"), 2);
	assert_int_equal(count_q(ix, "𠀀"), 1);
	index_close(ix);
	run_free(&r);

	/* --strict: the first bad file in walk order fails the build */
	const char *inputs[] = { in };
	char want[4200];
	snprintf(want, sizeof want, "sousuo-index: %s/bom-only.md: empty file", in);
	check_strict(idx, inputs, 1, want, 0);
	rm_tree(root);
}

/* ---------------------------------------------------------------- 100,000 tiny files */

static void test_tiny_files(void **state)
{
	(void)state;
	long n = env_long("HOSTILE_TINY_FILES", 100000);
	n -= n % 1000;
	if (n < 1000)
		n = 1000;
	char root[256], in[300], out[300], idx[400];
	make_root(root, sizeof root, "tiny");
	join(in, sizeof in, root, "in");
	join(out, sizeof out, root, "out");
	make_dir(root, "in");
	make_dir(root, "out");
	join(idx, sizeof idx, out, "x.idx");

	/* 10 x 10 x 10 folders, n / 1000 files in each */
	double t0 = now_s();
	long per = n / 1000, made = 0;
	double bytes = 0;
	for (int a = 0; a < 10; a++)
		for (int b = 0; b < 10; b++)
			for (int c = 0; c < 10; c++) {
				char rel[64], p[400];
				snprintf(rel, sizeof rel, "%d", a);
				if (b == 0 && c == 0)
					make_dir(in, rel);
				snprintf(rel, sizeof rel, "%d/%d", a, b);
				if (c == 0)
					make_dir(in, rel);
				snprintf(rel, sizeof rel, "%d/%d/%d", a, b, c);
				make_dir(in, rel);
				join(p, sizeof p, in, rel);
				int dfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				assert_true(dfd >= 0);
				for (long i = 0; i < per; i++, made++) {
					char name[32], text[128];
					snprintf(name, sizeof name, "f%05ld.md", i);
					int len = snprintf(text, sizeof text, "# 文件%ld\n外商投资 第%ld条 w%ld\n",
					                   made, made, made % 1000);
					int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
					assert_true(fd >= 0);
					assert_int_equal(write(fd, text, (size_t)len), len);
					close(fd);
					bytes += len;
				}
				close(dfd);
			}
	double gen = now_s() - t0;

	const char *args[] = { "-o", idx, in, NULL };
	run_t r;
	run_index(args, 0, 300, &r);
	expect_exit(&r, 0);
	long docs, skipped;
	summary(&r, &docs, &skipped);
	assert_int_equal(docs, n);
	assert_int_equal(skipped, 0);
	char what[96];
	snprintf(what, sizeof what, "%ld tiny files (made in %.1f s)", n, gen);
	report(what, &r, bytes);

	sousuo_index *ix = open_ix(idx);
	assert_int_equal(index_ndocs(ix), n);
	assert_int_equal(count_q(ix, "外商投资"), n);
	assert_int_equal(count_q(ix, "w7"), n / 1000);
	/* the title field is the file's name: f00007 in each of the 1000 folders */
	assert_int_equal(count_q(ix, "title:f00007"), per > 7 ? 1000 : 0);
	index_close(ix);
	/* The bound: what each document costs the writer until the end (its
	 * texts and a few hundred bytes of bookkeeping), not the text's size. */
	double bound = 256 * MB + 4096.0 * (double)n + (UNDER_ASAN ? 1024 * MB : 0);
	if (r.rss_kb * 1024.0 >= bound)
		fail_msg("peak RSS %.1f MB for %ld files: over the bound of %.1f MB",
		         r.rss_kb / 1024.0, n, bound / MB);
	/* the issue asks for under ~30 s; it takes about 2 s (the sanitized
	 * build some 10 s), so this is a regression alarm, not a benchmark */
	assert_true(r.secs < (UNDER_ASAN ? 120 : 30));
	run_free(&r);
	t0 = now_s();
	rm_tree(root);
	print_message("hostile: removing them took %.1f s\n", now_s() - t0);
}

/* ---------------------------------------------------------------- JSON Lines */

static void test_jsonl(void **state)
{
	(void)state;
	char root[256], in[300], out[300], idx[400], p[4096];
	make_root(root, sizeof root, "jsonl");
	join(in, sizeof in, root, "in");
	join(out, sizeof out, root, "out");
	make_dir(root, "in");
	make_dir(root, "out");
	join(idx, sizeof idx, out, "x.idx");

	size_t big = 1u << 20, cap = 4 * big + 4096;
	char *text = malloc(cap);
	assert_non_null(text);
	size_t n = 0;
#define LINE(s) do { size_t l_ = strlen(s); memcpy(text + n, s, l_); n += l_; } while (0)
	LINE("{\"id\":\"g1\",\"title\":\"好一\",\"body\":\"外商投资 第一 keepme\",\"date\":\"2020-01-02\",\"category\":\"甲\"}\n"); /* 1 */
	LINE("{\"title\": \"坏\", \"body\": \n");                             /* 2 bad JSON */
	LINE("{\"title\":\"缺正文\"}\n");                                    /* 3 no body */
	LINE("{\"title\":5,\"body\":\"x\"}\n");                              /* 4 title a number */
	LINE("{\"title\":\"t\",\"body\":[\"数组\"]}\n");                     /* 5 body an array */
	LINE("\n");                                                          /* 6 empty: ignored */
	LINE("  \t \n");                                                     /* 7 blank: ignored */
	LINE("{\"title\":\"大\",\"body\":\"");                               /* 8 a 1 MB line */
	for (size_t k = 0; k < big / 3; k++)
		LINE("中");
	LINE(" bigmarker\"}\n");
	LINE("{\"title\":\"大坏\",\"body\":\"");                             /* 9 a 1 MB unterminated line */
	memset(text + n, 'x', big);
	n += big;
	LINE("\n");
	LINE("{\"title\":\"t\",\"body\":\"\xFF\xFE mustnotindex\"}\n");      /* 10 invalid UTF-8 */
	LINE("{\"title\":\"t\",\"body\":\"a");                               /* 11 a raw NUL */
	text[n++] = '\0';
	LINE("b mustnotindex\"}\n");
	LINE("{\"title\":\"t\",\"body\":\"a\\u0000b mustnotindex\"}\n");     /* 12 an escaped NUL */
	LINE("{\"title\":\"t\",\"body\":\"\\ud800 mustnotindex\"}\n");       /* 13 a lone surrogate */
	LINE("[1,2]\n");                                                     /* 14 not an object */
	LINE("null\n");                                                      /* 15 not an object */
	LINE("{\"title\":\"t\",\"body\":\"mustnotindex\"} trailing\n");      /* 16 trailing text */
	for (int k = 0; k < 100000; k++)                                     /* 17 nested 100,000 deep */
		text[n++] = '[';
	for (int k = 0; k < 100000; k++)
		text[n++] = ']';
	LINE("\n");
	LINE("{\"title\":\"好二\",\"body\":\"keepme 第二\"}\r\n");           /* 18 CRLF */
	LINE("{\"title\":\"好三\",\"body\":\"keepme \\\\u0000 字面\"}\n");   /* 19 "\\u0000": no NUL */
	LINE("{\"title\":\"好四\",\"body\":\"keepme 最后\"}");               /* 20 no final newline */
#undef LINE
	assert_true(n < cap);
	put(in, "x.jsonl", text, n);
	free(text);
	static const struct {
		int line;
		const char *why;
	} skips[] = {
		{ 2, "malformed JSON" }, { 3, "\"body\" missing" }, { 4, "\"title\" missing or not a string" },
		{ 5, "\"body\" missing or not a string" }, { 9, "malformed JSON" }, { 10, "invalid UTF-8" },
		{ 11, "contains NUL bytes" }, { 12, "contains NUL bytes (\\u0000)" }, { 13, "malformed JSON" },
		{ 14, "not a JSON object" }, { 15, "not a JSON object" }, { 16, "malformed JSON" },
		{ 17, "malformed JSON" },
	};
	static const char *const kept[] = { "x.jsonl:1", "x.jsonl:8", "x.jsonl:18", "x.jsonl:19",
	                                    "x.jsonl:20" };

	/* 1 GB without a newline (sparse: NULs, no disk): the reader must not
	 * hold it, let alone parse it */
	join(p, sizeof p, in, "nonl.jsonl");
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)1 << 30), 0);
	close(fd);
	put_s(in, "empty.jsonl", "");
	put_s(in, "blank.jsonl", "\n\n \n");

	const char *args[] = { "-o", idx, in, NULL };
	run_t r;
	run_index(args, 0, 120, &r);
	expect_exit(&r, 0);
	report("JSON Lines, bad lines, 1 GB without newline", &r, 0);
	long docs, skipped;
	summary(&r, &docs, &skipped);
	int nskips = (int)(sizeof skips / sizeof *skips);
	assert_int_equal(docs, (long)(sizeof kept / sizeof *kept));
	assert_int_equal(skipped, nskips + 2);
	assert_int_equal(count_skips(&r, NULL), nskips + 2);
	for (int i = 0; i < nskips; i++) {
		char what[4200];
		snprintf(what, sizeof what, "%s/x.jsonl:%d", in, skips[i].line);
		expect_skip(&r, what, skips[i].why);
	}
	snprintf(p, sizeof p, "%s/nonl.jsonl:1", in);
	expect_skip(&r, p, "contains NUL bytes");
	join(p, sizeof p, in, "empty.jsonl");
	expect_skip(&r, p, "empty file");
	/* the bound: the 1 GB line is read and dropped, not kept */
	double bound = (UNDER_ASAN ? 1024 : 128) * MB;
	if (r.rss_kb * 1024.0 >= bound)
		fail_msg("peak RSS %.1f MB: the line without newline was held", r.rss_kb / 1024.0);

	sousuo_index *ix = open_ix(idx);
	assert_int_equal(index_ndocs(ix), (uint32_t)(sizeof kept / sizeof *kept));
	for (uint32_t i = 0; i < sizeof kept / sizeof *kept; i++) {
		char path[256], title[256];
		doc_meta(ix, i, path, sizeof path, title, sizeof title);
		assert_string_equal(path, kept[i]);
	}
	assert_int_equal(count_q(ix, "keepme"), 4);
	assert_int_equal(count_q(ix, "bigmarker"), 1);
	assert_int_equal(count_q(ix, "mustnotindex"), 0);
	assert_int_equal(count_q(ix, "字面"), 1);
	index_close(ix);
	run_free(&r);

	join(p, sizeof p, in, "x.jsonl");
	const char *inputs[] = { p };
	char want[4200];
	snprintf(want, sizeof want, "sousuo-index: %s:2: malformed JSON", p);
	check_strict(idx, inputs, 1, want, 0);
	rm_tree(root);
}

/* A JSON line over the document limit (256 MB) is dropped as it is read:
 * the reader holds at most the limit, where getline held the whole line and
 * cJSON a copy.  300 MB go through the page cache, so the sanitized build,
 * whose allocator keeps its own copies, leaves it out. */
static void test_jsonl_long_line(void **state)
{
	(void)state;
	long mb = env_long("HOSTILE_LONG_LINE_MB", UNDER_ASAN ? 0 : 300);
	if (mb * 1024 * 1024 <= (long)SOUSUO_MAX_DOC_BYTES) {
		print_message("hostile: the JSON line over the limit is not tried (HOSTILE_LONG_LINE_MB=%ld)\n",
		              mb);
		return;
	}
	char root[256], in[300], out[300], idx[400], p[4096];
	make_root(root, sizeof root, "longline");
	join(in, sizeof in, root, "in");
	join(out, sizeof out, root, "out");
	make_dir(root, "in");
	make_dir(root, "out");
	join(idx, sizeof idx, out, "x.idx");
	join(p, sizeof p, in, "long.jsonl");
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	const char *head = "{\"title\":\"长\",\"body\":\"";
	assert_int_equal(write(fd, head, strlen(head)), (ssize_t)strlen(head));
	size_t chunk = 1u << 20;
	char *b = malloc(chunk);
	assert_non_null(b);
	memset(b, 'x', chunk);
	for (long i = 0; i < mb; i++)
		assert_int_equal(write(fd, b, chunk), (ssize_t)chunk);
	free(b);
	const char *tail = "\"}\n{\"title\":\"短\",\"body\":\"keepme\"}\n";
	assert_int_equal(write(fd, tail, strlen(tail)), (ssize_t)strlen(tail));
	assert_int_equal(close(fd), 0);

	const char *args[] = { "-o", idx, in, NULL };
	run_t r;
	run_index(args, 0, 300, &r);
	unlink(p);
	expect_exit(&r, 0);
	char what[64];
	snprintf(what, sizeof what, "JSON line of %ld MB", mb);
	report(what, &r, (double)mb * MB);
	snprintf(p, sizeof p, "%s/long.jsonl:1", in);
	expect_skip(&r, p, "line longer than 268435456 bytes");
	long docs, skipped;
	summary(&r, &docs, &skipped);
	assert_int_equal(docs, 1);
	assert_int_equal(skipped, 1);
	double bound = SOUSUO_MAX_DOC_BYTES + 64 * MB;
	if (r.rss_kb * 1024.0 >= bound)
		fail_msg("peak RSS %.1f MB for a %ld MB line: over the bound of %.1f MB",
		         r.rss_kb / 1024.0, mb, bound / MB);
	sousuo_index *ix = open_ix(idx);
	assert_int_equal(count_q(ix, "keepme"), 1);
	index_close(ix);
	run_free(&r);
	rm_tree(root);
}

/* ---------------------------------------------------------------- unreadable inputs */

/* 1 if a child can switch to uid nobody (root, with CAP_SETUID). */
static int can_drop_root(void)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY) ? 1 : 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void test_unreadable(void **state)
{
	(void)state;
	char root[256], in[300], out[300], idx[400], p[4096];
	make_root(root, sizeof root, "unreadable");
	join(in, sizeof in, root, "in");
	join(out, sizeof out, root, "out");
	make_dir(root, "in");
	make_dir(root, "out");
	assert_int_equal(chmod(out, 0777), 0);
	join(idx, sizeof idx, out, "x.idx");

	put_s(in, "ok.md", "keepme 可读");
	put_s(in, "locked.md", "keepme 锁住");
	put_s(in, "writeonly.md", "keepme 只写");
	make_dir(in, "lockdir");
	put_s(in, "lockdir/inner.md", "keepme 里面");
	join(p, sizeof p, in, "locked.md");
	assert_int_equal(chmod(p, 0), 0);
	join(p, sizeof p, in, "writeonly.md");
	assert_int_equal(chmod(p, 0200), 0);
	join(p, sizeof p, in, "lockdir");
	assert_int_equal(chmod(p, 0), 0);
	/* not regular files: a FIFO named .md (opening it for reading would
	 * block forever) is passed over; a folder named .md is walked */
	join(p, sizeof p, in, "fifo.md");
	assert_int_equal(mkfifo(p, 0644), 0);
	make_dir(in, "dir.md");
	put_s(in, "dir.md/inside.md", "keepme 目录");

	/* root reads a chmod 000 file: the permission cases need another user */
	int root_user = geteuid() == 0, drop = root_user && can_drop_root();
	if (root_user && !drop)
		print_message("hostile: running as root and unable to switch to uid %d: the "
		              "chmod 000 cases are not tested (root reads them)\n", NOBODY);
	int perms = !root_user || drop;

	const char *args[] = { "-o", idx, in, NULL };
	run_t r;
	run_index(args, drop, 60, &r);
	expect_exit(&r, 0);
	report(drop ? "unreadable files (as nobody)" : "unreadable files", &r, 0);
	long docs, skipped;
	summary(&r, &docs, &skipped);
	assert_int_equal(docs, perms ? 2 : 5);
	assert_int_equal(skipped, perms ? 3 : 0);
	if (perms) {
		join(p, sizeof p, in, "locked.md");
		expect_skip(&r, p, "cannot open: Permission denied");
		join(p, sizeof p, in, "writeonly.md");
		expect_skip(&r, p, "cannot open: Permission denied");
		join(p, sizeof p, in, "lockdir");
		expect_skip(&r, p, "cannot open folder: Permission denied");
	}
	assert_int_equal(count_skips(&r, "fifo"), 0);
	sousuo_index *ix = open_ix(idx);
	assert_int_equal(count_q(ix, "keepme"), perms ? 2 : 5);
	assert_int_equal(count_q(ix, "目录"), 1);
	index_close(ix);
	run_free(&r);
	if (perms) {
		/* "lockdir" sorts before "locked.md": the first to fail */
		const char *inputs[] = { in };
		char want[4200];
		snprintf(want, sizeof want, "sousuo-index: %s/lockdir: cannot open folder", in);
		check_strict(idx, inputs, 1, want, drop);
	}

	/* a FIFO or a missing path given as an input is refused at once, and
	 * the index is left alone */
	size_t old_len;
	char *old = slurp(idx, &old_len);
	join(p, sizeof p, in, "fifo.md");
	const char *fifo_args[] = { "-o", idx, p, NULL };
	run_index(fifo_args, 0, 30, &r);
	expect_exit(&r, 1);
	assert_non_null(strstr(r.err, "not a regular file or folder"));
	run_free(&r);
	join(p, sizeof p, in, "nowhere");
	const char *missing_args[] = { "-o", idx, p, NULL };
	run_index(missing_args, 0, 30, &r);
	expect_exit(&r, 1);
	assert_non_null(strstr(r.err, "No such file or directory"));
	run_free(&r);
	size_t len;
	char *now = slurp(idx, &len);
	assert_int_equal(len, old_len);
	assert_memory_equal(now, old, len);
	free(now);
	free(old);
	rm_tree(root);
}

/* ---------------------------------------------------------------- links and depth */

static void test_links_and_depth(void **state)
{
	(void)state;
	char root[256], in[300], out[300], idx[400], p[4096];
	make_root(root, sizeof root, "links");
	join(in, sizeof in, root, "in");
	join(out, sizeof out, root, "out");
	make_dir(root, "in");
	make_dir(root, "out");
	join(idx, sizeof idx, out, "x.idx");

	put_s(in, "real.md", "keepme 真的");
	make_link(in, "alias.md", "real.md");          /* read, under its own name */
	make_link(in, "a.md", "b.md");                 /* a loop of two */
	make_link(in, "b.md", "a.md");
	make_link(in, "self.md", "self.md");           /* a loop of one */
	make_link(in, "dangling.md", "nowhere.md");
	/* 60 links in a row, more than the kernel follows (40); only the first
	 * has an extension the walk looks at */
	make_link(in, "chain.md", "l01");
	for (int i = 1; i < 60; i++) {
		char name[16], target[16];
		snprintf(name, sizeof name, "l%02d", i);
		snprintf(target, sizeof target, "l%02d", i + 1);
		make_link(in, name, target);
	}
	make_link(in, "l60", "real.md");
	/* folder links, to the parent and to an ancestor: never followed */
	make_link(in, "up", "..");
	make_dir(in, "sub");
	put_s(in, "sub/deeper.md", "keepme 子目录");
	make_link(in, "sub/back", "..");
	make_link(in, "sub/loop.md", "../sub");
	/* folders nested past PATH_MAX: the file at depth 500 is read, the
	 * folder whose path no longer fits is skipped with a reason */
	int dfd = open(in, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	for (int depth = 1; depth <= 1100; depth++) {
		assert_int_equal(mkdirat(dfd, "dddd", 0755), 0);
		int sub = openat(dfd, "dddd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(sub >= 0);
		close(dfd);
		dfd = sub;
		if (depth == 500 || depth == 1100) {
			int fd = openat(dfd, "deep.md", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			assert_true(fd >= 0);
			const char *t = depth == 500 ? "keepme 深处" : "mustnotindex";
			assert_int_equal(write(fd, t, strlen(t)), (ssize_t)strlen(t));
			close(fd);
		}
	}
	close(dfd);

	const char *args[] = { "-o", idx, in, NULL };
	run_t r;
	run_index(args, 0, 60, &r);
	expect_exit(&r, 0);
	report("symbolic link loops, 1100 nested folders", &r, 0);
	long docs, skipped;
	summary(&r, &docs, &skipped);
	assert_int_equal(docs, 4);  /* alias, real, sub/deeper, the one at depth 500 */
	assert_int_equal(skipped, 6);
	join(p, sizeof p, in, "a.md");
	expect_skip(&r, p, "broken symbolic link: Too many levels of symbolic links");
	join(p, sizeof p, in, "b.md");
	expect_skip(&r, p, "broken symbolic link: Too many levels of symbolic links");
	join(p, sizeof p, in, "self.md");
	expect_skip(&r, p, "broken symbolic link: Too many levels of symbolic links");
	join(p, sizeof p, in, "chain.md");
	expect_skip(&r, p, "broken symbolic link: Too many levels of symbolic links");
	join(p, sizeof p, in, "dangling.md");
	expect_skip(&r, p, "broken symbolic link: No such file or directory");
	assert_int_equal(count_skips(&r, "cannot open folder: File name too long"), 1);
	sousuo_index *ix = open_ix(idx);
	assert_int_equal(count_q(ix, "keepme"), 4);
	assert_int_equal(count_q(ix, "真的"), 2);
	assert_int_equal(count_q(ix, "深处"), 1);
	assert_int_equal(count_q(ix, "mustnotindex"), 0);
	index_close(ix);
	run_free(&r);

	/* inputs that are links: a loop is refused, a link to a folder is
	 * followed (once: the links inside it still are not) */
	make_link(root, "loopin", "loopin");
	join(p, sizeof p, root, "loopin");
	const char *loop_args[] = { "-o", idx, p, NULL };
	run_index(loop_args, 0, 30, &r);
	expect_exit(&r, 1);
	assert_non_null(strstr(r.err, "Too many levels of symbolic links"));
	run_free(&r);
	make_link(root, "inlink", "in");
	join(p, sizeof p, root, "inlink");
	const char *link_args[] = { "-o", idx, p, NULL };
	run_index(link_args, 0, 60, &r);
	expect_exit(&r, 0);
	summary(&r, &docs, &skipped);
	assert_int_equal(docs, 4);
	run_free(&r);
	rm_tree(root);
}

/* ---------------------------------------------------------------- interrupted builds */

/* 1 if name is base ".tmp." digits: a temporary of writer_file.c's. */
static int is_temp_of(const char *name, const char *base)
{
	size_t bl = strlen(base);
	if (strncmp(name, base, bl) || strncmp(name + bl, ".tmp.", 5) || !name[bl + 5])
		return 0;
	for (const char *d = name + bl + 5; *d; d++)
		if (*d < '0' || *d > '9')
			return 0;
	return 1;
}

/* Counts the temporaries of x.idx in dir; fails on any other file but
 * x.idx and keep (may be NULL). */
static int temps_in(const char *dir, const char *keep)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "x.idx") ||
		    (keep && !strcmp(e->d_name, keep)))
			continue;
		if (!is_temp_of(e->d_name, "x.idx"))
			fail_msg("unexpected file %s/%s", dir, e->d_name);
		n++;
	}
	closedir(d);
	return n;
}

/* A corpus of about 40 MB when the shared one is missing. */
static void generate_corpus(const char *dir)
{
	size_t len = 20000;
	char *b = malloc(len);
	assert_non_null(b);
	for (int i = 0; i < 2000; i++) {
		char name[32];
		if (i % 100 == 0) {
			snprintf(name, sizeof name, "%02d", i / 100);
			make_dir(dir, name);
		}
		free(b);
		b = line_block(len);
		for (size_t k = 997; k < len; k += 997)
			b[k] = '\n';
		snprintf(name, sizeof name, "%02d/%04d.md", i / 100, i);
		put(dir, name, b, len);
	}
	free(b);
}

enum { AT_TIME, AT_FRACTION, AT_WRITE_START, AT_WRITE_MIDDLE };

static void test_interrupted(void **state)
{
	(void)state;
	char root[256], out[300], idx[400], small[300], gen[300], tmpname[500];
	make_root(root, sizeof root, "kill");
	join(out, sizeof out, root, "out");
	join(small, sizeof small, root, "small");
	make_dir(root, "out");
	make_dir(root, "small");
	join(idx, sizeof idx, out, "x.idx");

	char corpus[1024];
	const char *env = getenv("HOSTILE_KILL_CORPUS");
	if (env && *env)
		snprintf(corpus, sizeof corpus, "%s", env);
	else
		snprintf(corpus, sizeof corpus, "%s/corpus/laws%s", test_shared_dir(),
		         UNDER_ASAN ? "/行政法规" : "");
	struct stat st;
	if (stat(corpus, &st) != 0) {
		join(gen, sizeof gen, root, "gen");
		make_dir(root, "gen");
		generate_corpus(gen);
		print_message("hostile: %s is missing: the interrupted builds index a generated corpus\n",
		              corpus);
		snprintf(corpus, sizeof corpus, "%s", gen);
	}

	/* the older index, a small one */
	put_s(small, "a.md", "# 旧的\n旧索引 olddoc\n");
	put_s(small, "b.md", "# 旧的二\n旧索引 olddoc\n");
	put_s(small, "c.md", "# 旧的三\n旧索引 olddoc\n");
	const char *old_args[] = { "-o", idx, small, NULL };
	run_t r;
	run_index(old_args, 0, 60, &r);
	expect_exit(&r, 0);
	run_free(&r);
	size_t old_len;
	char *old = slurp(idx, &old_len);

	/* Kill moments.  The first two while the file is written: as soon as
	 * the temporary appears, and once it holds 4 MB; they also time the
	 * build up to its write (whatever the machine and the build flavour;
	 * the faster of the two, the first one reads a cold corpus).  Then
	 * while walking, and at fractions of that time: reading and
	 * tokenizing, n-grams, encoding. */
	static const struct {
		int kind;
		double at;
		const char *label;
	} moments[] = {
		{ AT_WRITE_START, 0, "temporary created" }, { AT_WRITE_MIDDLE, 4 * MB, "temporary at 4 MB" },
		{ AT_TIME, 0.05, "50 ms" }, { AT_FRACTION, 0.1, "10% of the way" },
		{ AT_FRACTION, 0.3, "30% of the way" }, { AT_FRACTION, 0.6, "60% of the way" },
		{ AT_FRACTION, 0.75, "75% of the way" },
	};
	const char *args[] = { "-o", idx, corpus, NULL };
	int killed = 0, in_write = 0;
	double to_write = 0;  /* seconds from the start to the temporary */
	for (size_t m = 0; m < sizeof moments / sizeof *moments; m++) {
		double at = moments[m].kind == AT_FRACTION ? moments[m].at * to_write : moments[m].at;
		int of, ef;
		double t0 = now_s();
		pid_t pid = spawn_index(args, 0, &of, &ef);
		snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", idx, (long)pid);
		int status = 0, finished = 0;
		struct rusage ru;
		off_t tmp_size = -1;
		long rss_kb = 0;
		double tmp_at = 0;  /* when the temporary appeared */
		for (;;) {
			if (wait4(pid, &status, WNOHANG, &ru) == pid) {
				finished = 1;
				break;
			}
			double el = now_s() - t0;
			struct stat ts;
			int has_tmp = stat(tmpname, &ts) == 0;
			tmp_size = has_tmp ? ts.st_size : -1;
			if (has_tmp && !tmp_at)
				tmp_at = el;
			if (((moments[m].kind == AT_TIME || moments[m].kind == AT_FRACTION) && el >= at) ||
			    (moments[m].kind == AT_WRITE_START && has_tmp) ||
			    (moments[m].kind == AT_WRITE_MIDDLE && has_tmp && ts.st_size >= at))
				break;
			if (el > 600) {
				kill(pid, SIGKILL);
				wait4(pid, &status, 0, &ru);
				fail_msg("the build did not reach the moment \"%s\" in 600 s", moments[m].label);
			}
			sleep_us(200);
		}
		double el = now_s() - t0;
		if (tmp_at && (!to_write || tmp_at < to_write))
			to_write = tmp_at;
		else if (!to_write && finished)
			to_write = el;  /* the temporary came and went between two looks */
		if (!finished) {
			/* how far it got: its resident memory at the kill */
			char sp[64], line[256];
			snprintf(sp, sizeof sp, "/proc/%ld/status", (long)pid);
			FILE *f = fopen(sp, "r");
			while (f && fgets(line, sizeof line, f))
				if (!strncmp(line, "VmRSS:", 6))
					rss_kb = strtol(line + 6, NULL, 10);
			if (f)
				fclose(f);
			assert_int_equal(kill(pid, SIGKILL), 0);
			assert_int_equal(wait4(pid, &status, 0, &ru), pid);
			/* it may have ended between the last look and the kill */
			finished = !WIFSIGNALED(status);
			if (!finished)
				assert_int_equal(WTERMSIG(status), SIGKILL);
		}
		char *errtext = read_capture(ef);
		close(of);
		if (finished && (!WIFEXITED(status) || WEXITSTATUS(status)))
			fail_msg("the build failed (status 0x%x):\n%.4000s", (unsigned)status, errtext);
		free(errtext);
		if (finished) {
			/* the machine outran this moment: the new index is in place;
			 * put the old one back for the next kill */
			print_message("hostile: kill at %-18s: the build had already finished (%.2f s)\n",
			              moments[m].label, el);
			char back[500];
			snprintf(back, sizeof back, "%s.restore", idx);
			put(out, "x.idx.restore", old, old_len);
			assert_int_equal(rename(back, idx), 0);
			continue;
		}
		killed++;
		in_write += tmp_size >= 0;
		print_message("hostile: killed at %-18s (%.2f s, RSS %.0f MB, temporary %s%.1f MB)\n",
		              moments[m].label, el, rss_kb / 1024.0, tmp_size >= 0 ? "" : "none, ",
		              tmp_size >= 0 ? tmp_size / MB : 0.0);
		/* the older index is still there, byte for byte, and opens */
		size_t len;
		char *now = slurp(idx, &len);
		assert_int_equal(len, old_len);
		assert_memory_equal(now, old, len);
		free(now);
		sousuo_index *ix = open_ix(idx);
		assert_int_equal(index_ndocs(ix), 3);
		assert_int_equal(count_q(ix, "olddoc"), 3);
		index_close(ix);
		/* beside it, only temporaries of its own pattern (a server opens the
		 * path it is given, never these), and at most one: a build removes
		 * the dead ones before it writes its own */
		int nt = temps_in(out, NULL);
		assert_true(nt <= 1);
		if (access(tmpname, F_OK) == 0)
			assert_int_equal(nt, 1);  /* its own */
		sousuo_index *part;
		char err[256];
		if (tmp_size >= 0 && index_open(tmpname, &part, err, sizeof err) == 0) {
			print_message("hostile: (the temporary was complete: killed between fsync and rename)\n");
			index_close(part);
		}
	}
	assert_true(killed >= 4);
	int left = temps_in(out, NULL);
	assert_true(left <= 1);
	print_message("hostile: %d kills, %d while writing; %d temporaries left behind\n", killed,
	              in_write, left);

	/* the next build completes, replaces the index and removes the dead
	 * builds' temporaries, but not one a live build holds locked */
	const char *live = "x.idx.tmp.99999999";
	char livep[500];
	join(livep, sizeof livep, out, live);
	int lfd = open(livep, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(lfd >= 0);
	assert_int_equal(flock(lfd, LOCK_EX), 0);
	run_index(args, 0, 600, &r);
	expect_exit(&r, 0);
	report("the build after the kills", &r, 0);
	long docs, skipped;
	summary(&r, &docs, &skipped);
	assert_true(docs > 3);
	sousuo_index *ix = open_ix(idx);
	assert_int_equal(index_ndocs(ix), (uint32_t)docs);
	assert_int_equal(count_q(ix, "olddoc"), 0);
	assert_true(count_q(ix, "中") > 0);
	index_close(ix);
	assert_int_equal(temps_in(out, live), 0);
	assert_int_equal(access(livep, F_OK), 0);
	close(lfd);
	run_free(&r);
	free(old);
	rm_tree(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_big_line, remove_root),
		cmocka_unit_test_teardown(test_random_cjk, remove_root),
		cmocka_unit_test_teardown(test_binary_and_utf8, remove_root),
		cmocka_unit_test_teardown(test_tiny_files, remove_root),
		cmocka_unit_test_teardown(test_jsonl, remove_root),
		cmocka_unit_test_teardown(test_jsonl_long_line, remove_root),
		cmocka_unit_test_teardown(test_unreadable, remove_root),
		cmocka_unit_test_teardown(test_links_and_depth, remove_root),
		cmocka_unit_test_teardown(test_interrupted, remove_root),
	};
	/* HOSTILE_ONLY=test_jsonl (a glob) runs only the matching cases */
	const char *only = getenv("HOSTILE_ONLY");
	if (only && *only)
		cmocka_set_test_filter(only);
	return cmocka_run_group_tests_name("hostile corpora and interrupted builds", tests, NULL, NULL)
	       ? 1 : 0;
}
