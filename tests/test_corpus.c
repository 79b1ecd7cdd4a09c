/* test_corpus.c — the corpus reader (indexer/corpus.h): Markdown cleanup,
 * dates, a temporary corpus tree with every kind of bad input, JSON Lines,
 * strict mode, and the real corpus under $SHARED/corpus. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "indexer/corpus.h"
#include "indexer/limits.h"
#include "indexer/text.h"
#include "tests/testutil.h"

/* ---------------------------------------------------------------- helpers */

static char tmp_root[256];

static void write_file(const char *rel, const char *data, size_t len)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", tmp_root, rel);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	if (len)
		assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_str(const char *rel, const char *s)
{
	write_file(rel, s, strlen(s));
}

static void make_dir(const char *rel)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", tmp_root, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

static void rm_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		chmod(path, 0755);
		DIR *d = opendir(path);
		if (d) {
			struct dirent *e;
			while ((e = readdir(d)) != NULL) {
				if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
					continue;
				char sub[2048];
				snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
				rm_tree(sub);
			}
			closedir(d);
		}
		rmdir(path);
	} else {
		unlink(path);
	}
}

typedef struct {
	int n;
	char what[32][512];
	char why[32][256];
} skips;

static void on_skip(void *ctx, const char *what, const char *why)
{
	skips *s = ctx;
	if (s->n < 32) {
		snprintf(s->what[s->n], sizeof s->what[0], "%s", what);
		snprintf(s->why[s->n], sizeof s->why[0], "%s", why);
	}
	s->n++;
}

/* Index of the skip whose "what" ends with suffix, or -1. */
static int find_skip(const skips *s, const char *suffix)
{
	size_t ls = strlen(suffix);
	for (int i = 0; i < s->n && i < 32; i++) {
		size_t lw = strlen(s->what[i]);
		if (lw >= ls && strcmp(s->what[i] + lw - ls, suffix) == 0)
			return i;
	}
	return -1;
}

/* A copy of one document, kept after the reader moves on. */
typedef struct {
	char *path, *title, *category, *ext_id, *body;
	size_t body_len;
	uint32_t date;
} kept;

typedef struct {
	kept d[64];
	int n;
} doclist;

static void keep(doclist *l, const corpus_doc *d)
{
	assert_true(l->n < 64);
	kept *k = &l->d[l->n++];
	k->path = strdup(d->path);
	k->title = strdup(d->title);
	k->category = strdup(d->category);
	k->ext_id = d->ext_id ? strdup(d->ext_id) : NULL;
	k->body = malloc(d->body_len + 1);
	memcpy(k->body, d->body, d->body_len + 1);
	k->body_len = d->body_len;
	k->date = d->date;
}

static void free_list(doclist *l)
{
	for (int i = 0; i < l->n; i++) {
		free(l->d[i].path);
		free(l->d[i].title);
		free(l->d[i].category);
		free(l->d[i].ext_id);
		free(l->d[i].body);
	}
	l->n = 0;
}

static const kept *by_path(const doclist *l, const char *path)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->d[i].path, path) == 0)
			return &l->d[i];
	return NULL;
}

static void check_doc_invariants(const corpus_doc *d)
{
	assert_non_null(d->path);
	assert_non_null(d->title);
	assert_non_null(d->category);
	assert_non_null(d->body);
	assert_int_equal(strlen(d->body), d->body_len);
	assert_true(text_utf8_valid(d->body, d->body_len));
	assert_true(text_utf8_valid(d->title, strlen(d->title)));
	assert_true(text_utf8_valid(d->path, strlen(d->path)));
	assert_true(text_utf8_valid(d->category, strlen(d->category)));
	assert_null(strchr(d->title, '\n'));
	assert_null(strchr(d->title, '\r'));
	assert_true(d->date == 0 || (d->date >= 19000101 && d->date <= 21001231));
}

/* Reads every document of inputs into l; returns corpus_next's last result. */
static int read_all(const char *const *inputs, int n, int strict, skips *s, doclist *l,
                    uint64_t *skipped, char *errbuf, size_t errlen)
{
	char err[512];
	corpus_reader *r = corpus_open(inputs, n, strict, on_skip, s, err, sizeof err);
	assert_non_null(r);
	assert_string_equal(corpus_error(r), "");
	corpus_doc d;
	int rc;
	while ((rc = corpus_next(r, &d)) == 1) {
		check_doc_invariants(&d);
		keep(l, &d);
	}
	if (skipped)
		*skipped = corpus_skipped(r);
	if (errbuf)
		snprintf(errbuf, errlen, "%s", corpus_error(r));
	corpus_close(r);
	return rc;
}

/* ---------------------------------------------------------------- Markdown */

static char *clean(const char *md, char **title)
{
	size_t n = 12345;
	char *out = corpus_clean_markdown(md, strlen(md), &n, title);
	assert_non_null(out);
	assert_int_equal(strlen(out), n);
	return out;
}

static void test_clean_headings(void **state)
{
	(void)state;
	char *t;
	char *o = clean("# 中华人民共和国刑法\n\n## 第一章 总则\n正文 #hashtag\n#不是标题\n", &t);
	assert_string_equal(o, "\x1f中华人民共和国刑法\n\n\x1f第一章 总则\n正文 #hashtag\n#不是标题\n");
	assert_string_equal(t, "中华人民共和国刑法");
	free(o);
	free(t);

	/* levels 1..6 are headings, 7 is not; the mark needs a space or tab */
	o = clean("###### 六\n####### 七\n#\tTab\n#\n", &t);
	assert_string_equal(o, "\x1f六\n####### 七\n\x1fTab\n#\n");
	assert_string_equal(t, "Tab");
	free(o);
	free(t);

	/* only a level-2 heading: no title; "#" in mid-line is not a heading */
	o = clean("## 小标题\n文字 # 不是\n", &t);
	assert_string_equal(o, "\x1f小标题\n文字 # 不是\n");
	assert_null(t);
	free(o);

	/* the title is trimmed, whitespace collapsed, closing #s dropped; the
	 * first non-empty level-1 heading wins */
	o = clean("#   \n#  标题  A \t B  ##  \r\n# 第二\n", &t);
	assert_string_equal(t, "标题 A B");
	free(o);
	free(t);

	/* "C#" keeps its # */
	o = clean("# C#\n", &t);
	assert_string_equal(t, "C#");
	free(o);
	free(t);

	/* heading at the very end without a newline */
	o = clean("文字\n# 结尾", &t);
	assert_string_equal(o, "文字\n\x1f结尾");
	assert_string_equal(t, "结尾");
	free(o);
	free(t);

	/* NULL title pointer is allowed */
	size_t n;
	o = corpus_clean_markdown("# x\n", 4, &n, NULL);
	assert_string_equal(o, "\x1fx\n");
	free(o);
}

static void test_clean_comments(void **state)
{
	(void)state;
	char *t;
	/* CJK on both sides of a comment stays separated */
	char *o = clean("外商<!-- 注释 -->投资", &t);
	assert_string_equal(o, "外商\x1f投资");
	assert_null(t);
	free(o);

	/* several comments, multi-line ones, and the INFO END marker */
	o = clean("# 标题\n\n2009年2月28日 通过\n\n<!-- INFO END -->\n\n正文<!--\na\nb\n-->尾<!---->", &t);
	assert_string_equal(o, "\x1f标题\n\n2009年2月28日 通过\n\n\x1f\n\n正文\x1f尾\x1f");
	assert_string_equal(t, "标题");
	free(o);
	free(t);

	/* an unterminated comment runs to the end */
	o = clean("前<!-- 没有结束\n# 不是标题\n", &t);
	assert_string_equal(o, "前\x1f");
	assert_null(t);
	free(o);

	/* a comment inside the heading line: the title has a space there */
	o = clean("# 标题<!-- x -->后\n", &t);
	assert_string_equal(o, "\x1f标题\x1f后\n");
	assert_string_equal(t, "标题 后");
	free(o);
	free(t);

	/* a heading hidden inside a comment is not the title */
	o = clean("<!--\n# 隐藏\n-->\n# 真的\n", &t);
	assert_string_equal(t, "真的");
	free(o);
	free(t);

	/* "<!-" alone is text */
	o = clean("a<!-b", &t);
	assert_string_equal(o, "a<!-b");
	free(o);
}

static void test_clean_front_matter(void **state)
{
	(void)state;
	char *t;
	char *o = clean("---\ntitle: x\ndate: 2019-06-05\n---\n# 标题\n正文\n", &t);
	assert_string_equal(o, "\x1f\n\x1f标题\n正文\n");
	assert_string_equal(t, "标题");
	free(o);
	free(t);

	/* CRLF and trailing spaces on the fences; empty front matter */
	o = clean("--- \r\na: b\r\n---\r\nx", &t);
	assert_string_equal(o, "\x1f\nx");  /* the fence's "\r" goes with it */
	free(o);
	o = clean("---\n---\n", &t);
	assert_string_equal(o, "\x1f\n");
	free(o);

	/* unterminated: not front matter */
	o = clean("---\na: b\n", &t);
	assert_string_equal(o, "---\na: b\n");
	free(o);

	/* only at the very start */
	o = clean("x\n---\na\n---\n", &t);
	assert_string_equal(o, "x\n---\na\n---\n");
	free(o);

	/* "----" is not a fence */
	o = clean("----\na\n---\n", &t);
	assert_string_equal(o, "----\na\n---\n");
	free(o);

	/* a BOM before the front matter is dropped */
	o = clean("\xEF\xBB\xBF---\na\n---\n# T\n", &t);
	assert_string_equal(o, "\x1f\n\x1fT\n");
	assert_string_equal(t, "T");
	free(o);
	free(t);

	/* empty input */
	size_t n = 9;
	o = corpus_clean_markdown("", 0, &n, &t);
	assert_non_null(o);
	assert_int_equal(n, 0);
	assert_null(t);
	free(o);
}

/* Arbitrary bytes never crash and never grow the text. */
static void test_clean_fuzz(void **state)
{
	(void)state;
	static const char *const parts[] = { "#", "# ", "\n", "<!--", "-->", "---", "---\n",
	                                     "中", "\xff", "\x1f", " ", "\t", "a", "\r" };
	unsigned seed = 12345;
	char buf[256];
	for (int iter = 0; iter < 20000; iter++) {
		size_t len = 0;
		int k = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 30;
		for (int j = 0; j < k; j++) {
			const char *p = parts[((seed = seed * 1103515245u + 12345u) >> 16) % 14];
			size_t pl = strlen(p);
			if (len + pl >= sizeof buf)
				break;
			memcpy(buf + len, p, pl);
			len += pl;
		}
		buf[len] = '\0';
		size_t n;
		char *t;
		char *o = corpus_clean_markdown(buf, len, &n, &t);
		assert_non_null(o);
		assert_true(n <= len);
		if (t) {
			assert_true(*t);
			assert_null(strchr(t, '\n'));
			assert_true(text_utf8_valid(t, strlen(t)));
		}
		free(t);
		free(o);
		(void)corpus_date_from_text(buf, len);
	}
}

/* ---------------------------------------------------------------- dates */

static void test_date_from_name(void **state)
{
	(void)state;
	assert_int_equal(corpus_date_from_name("专利代理条例(2018-11-06).md"), 20181106);
	assert_int_equal(corpus_date_from_name("行政法规/专利代理条例(2018-11-06).md"), 20181106);
	assert_int_equal(corpus_date_from_name("a(1999-01-31)"), 19990131);
	assert_int_equal(corpus_date_from_name("刑法修正案（七）.md"), 0);
	assert_int_equal(corpus_date_from_name("宪法修正案（2004年）.md"), 0);
	assert_int_equal(corpus_date_from_name("x(2018-13-06).md"), 0);
	assert_int_equal(corpus_date_from_name("x(2018-11-32).md"), 0);
	assert_int_equal(corpus_date_from_name("x(2018-00-06).md"), 0);
	assert_int_equal(corpus_date_from_name("x(1899-11-06).md"), 0);
	assert_int_equal(corpus_date_from_name("x(2101-11-06).md"), 0);
	assert_int_equal(corpus_date_from_name("x(2018-1-06).md"), 0);
	assert_int_equal(corpus_date_from_name("x(2018-11-06.md"), 0);
	assert_int_equal(corpus_date_from_name("x 2018-11-06.md"), 0);
	assert_int_equal(corpus_date_from_name("x(20a8-11-06).md"), 0);
	assert_int_equal(corpus_date_from_name(""), 0);
	assert_int_equal(corpus_date_from_name("(2018-11-06)"), 20181106);
	/* the last one wins */
	assert_int_equal(corpus_date_from_name("a(2001-01-01)b(2002-02-02).md"), 20020202);
	assert_int_equal(corpus_date_from_name(NULL), 0);
}

static uint32_t dt(const char *s)
{
	return corpus_date_from_text(s, strlen(s));
}

static void test_date_from_text(void **state)
{
	(void)state;
	assert_int_equal(dt("# 中华人民共和国刑法修正案（七）\n\n2009年2月28日 第十一届全国人民代表大会常务委员会第七次会议通过\n\n<!-- INFO END -->\n"),
	                 20090228);
	assert_int_equal(dt("北京市商务局\n\n2021年 12月 9日 \n"), 20211209);
	assert_int_equal(dt("2021 年 12 月 9 日"), 20211209);
	assert_int_equal(dt("2021年\xE3\x80\x80" "1月\xE3\x80\x80" "9日"), 20210109);
	assert_int_equal(dt("发布日期：2019-06-05"), 20190605);
	assert_int_equal(dt("2019-6-5"), 20190605);
	assert_int_equal(dt("2019.6.5"), 20190605);
	assert_int_equal(dt("2019/06/05"), 20190605);
	assert_int_equal(dt("\xEF\xBC\x92\xEF\xBC\x90\xEF\xBC\x91\xEF\xBC\x99年６月５日"), 20190605); /* full-width */
	assert_int_equal(dt("二〇一九年六月五日"), 20190605);
	assert_int_equal(dt("一九九九年十二月三十一日"), 19991231);
	assert_int_equal(dt("二○二○年十月二十日"), 20201020);
	/* the first valid date wins; invalid ones are passed over */
	assert_int_equal(dt("2019年13月1日 2018年2月30日 2017年3月4日"), 20180230);
	assert_int_equal(dt("1899年1月1日，2001年1月1日"), 20010101);
	assert_int_equal(dt("2009年2月 通过；2010年3月4日"), 20100304);
	/* not dates */
	assert_int_equal(dt("宪法修正案（2004年）"), 0);
	assert_int_equal(dt("12009年2月28日"), 0);
	assert_int_equal(dt("2009年123月28日"), 0);
	assert_int_equal(dt("2019-06-05-1"), 0);
	assert_int_equal(dt("2019.6.5.1"), 0);
	assert_int_equal(dt("2019-06.05"), 0);
	assert_int_equal(dt("第1823次会议"), 0);
	assert_int_equal(dt(""), 0);
	assert_int_equal(corpus_date_from_text(NULL, 0), 0);
	/* header lines: before the marker ... */
	assert_int_equal(dt("# 案例\n\n<!-- INFO END -->\n\n2019年6月5日"), 0);
	assert_int_equal(dt("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n2019年6月5日\n<!-- INFO END -->"), 20190605);
	/* ... or the first 10 lines */
	assert_int_equal(dt("1\n2\n3\n4\n5\n6\n7\n8\n9\n2019年6月5日\n"), 20190605);
	assert_int_equal(dt("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n2019年6月5日\n"), 0);
	/* a date cut by the end of the header is not a date */
	assert_int_equal(corpus_date_from_text("2019年6月5日", strlen("2019年6月5")), 0);
	/* invalid UTF-8 around */
	assert_int_equal(dt("\xff\xfe 2019年6月5日 \xc3"), 20190605);
}

/* ---------------------------------------------------------------- a tree */

static void build_tree(void)
{
	snprintf(tmp_root, sizeof tmp_root, "/tmp/test_corpus.XXXXXX");
	assert_non_null(mkdtemp(tmp_root));

	make_dir("laws");
	make_dir("laws/行政法规");
	make_dir("laws/地方性法规");
	make_dir("laws/地方性法规/山东");
	make_dir("laws/.hidden");
	make_dir("laws/empty");
	make_dir("seed");

	write_str("laws/行政法规/专利代理条例(2018-11-06).md",
	          "# 专利代理条例\n\n1991年3月4日 中华人民共和国国务院令第76号发布\n\n"
	          "2018年11月6日 公布\n\n<!-- INFO END -->\n\n## 第一章 总则\n\n第一条 为了规范专利代理行为。\n");
	write_str("laws/行政法规/无标题(2001-02-03).md", "没有标题的正文。\n");
	write_str("laws/地方性法规/山东/山东省条例.md",
	          "# 山东省  某某\t条例\n\n2019年11月29日 山东省人大常委会通过\n\n<!-- INFO END -->\n\n正文\n");
	write_str("laws/地方性法规/b.md", "---\ntitle: front\n---\n# 前置\n<!-- 注释 -->正文\n");
	write_str("laws/刑法修正案（七）.md",
	          "# 中华人民共和国刑法修正案（七）\n\n2009年2月28日 第十一届全国人民代表大会常务委员会第七次会议通过\n\n"
	          "<!-- INFO END -->\n\n一、将刑法第一百五十一条第三款修改为：\n");
	write_str("laws/.hidden/secret.md", "# 秘密\n");
	write_str("laws/.secret.md", "# 秘密\n");
	write_str("laws/notes.pdf", "%PDF");
	write_str("laws/README", "# 不读\n");
	write_file("laws/空.md", "", 0);
	write_file("laws/binary.md", "# a\0b\n", 6);
	write_str("laws/bad-utf8.md", "# 坏\n\xc3\x28 \xed\xa0\x80\n");
	write_str("laws/bom.md", "\xEF\xBB\xBF# 带BOM\n正文\n");
	write_str("laws/bom-only.md", "\xEF\xBB\xBF");
	write_str("laws/unreadable.md", "# 不可读\n");
	write_str("laws/upper.MD", "# 大写扩展名\n");
	write_str("laws/a.txt", "# 不是 Markdown 标题\n2020年1月2日\n<!-- 保留 -->\n");

	char p[1024];
	snprintf(p, sizeof p, "%s/laws/unreadable.md", tmp_root);
	assert_int_equal(chmod(p, 0), 0);
	/* a link loop to the parent folder, a link to a folder, a link to a
	 * file, and a broken link */
	snprintf(p, sizeof p, "%s/laws/行政法规/loop", tmp_root);
	assert_int_equal(symlink("..", p), 0);
	snprintf(p, sizeof p, "%s/laws/dirlink.md", tmp_root);
	assert_int_equal(symlink("行政法规", p), 0);
	snprintf(p, sizeof p, "%s/laws/link.md", tmp_root);
	assert_int_equal(symlink("bom.md", p), 0);
	snprintf(p, sizeof p, "%s/laws/broken.md", tmp_root);
	assert_int_equal(symlink("nowhere.md", p), 0);
	/* a FIFO is ignored (and must not block) */
	snprintf(p, sizeof p, "%s/laws/fifo.md", tmp_root);
	assert_int_equal(mkfifo(p, 0644), 0);

	write_str("seed/北京市关于进一步加强稳外资工作的若干措施(2021-12-09).txt",
	          "\xEF\xBB\xBF 各区人民政府：\n\n北京市商务局\n\n2021年 12月 9日 \n");
	write_str("seed/x.jsonl",
	          "{\"id\": \"a-1\", \"title\": \"第一\\n条\", \"body\": \"正文一\", \"date\": \"2019-06-05\", \"category\": \"法规/地方\"}\n"
	          "{\"id\": 42, \"title\": \"第二\", \"body\": \"正文二\", \"date\": \"2020\"}\r\n"
	          "\n"
	          "{\"title\": \"坏\", \"body\": \n"
	          "{\"title\": 5, \"body\": \"x\"}\n"
	          "{\"body\": \"x\"}\n"
	          "[1, 2]\n"
	          "{\"title\": \"t\", \"body\": \"b\xc3\x28\"}\n"
	          "{\"title\": \"t\", \"body\": \"b\"} trailing\n"
	          "{\"id\": 1.5, \"title\": \"第三\", \"body\": \"\", \"date\": \"2019-13-01\", \"category\": 7}\n"
	          "{\"id\": null, \"title\": \"第四\", \"body\": \"正文四\", \"date\": \"19\"}");
}

static void remove_tree(void)
{
	rm_tree(tmp_root);
}

static void test_tree(void **state)
{
	(void)state;
	build_tree();
	char laws[512], seed[512];
	snprintf(laws, sizeof laws, "%s/laws", tmp_root);
	snprintf(seed, sizeof seed, "%s/seed/", tmp_root);  /* trailing slash */
	const char *inputs[] = { laws, seed };
	skips s = { 0 };
	doclist l = { 0 };
	uint64_t skipped = 0;
	int root = geteuid() == 0;
	assert_int_equal(read_all(inputs, 2, 0, &s, &l, &skipped, NULL, 0), 0);

	/* document order: byte-wise sorted, depth first, inputs in order */
	static const char *const order[] = {
		"a.txt",
		"bom.md",
		"link.md",
		"unreadable.md",  /* only when root: left out below otherwise */
		"upper.MD",       /* extensions match in any case */
		"刑法修正案（七）.md",
		"地方性法规/b.md",
		"地方性法规/山东/山东省条例.md",
		"行政法规/专利代理条例(2018-11-06).md",
		"行政法规/无标题(2001-02-03).md",
		"x.jsonl:1",
		"x.jsonl:2",
		"x.jsonl:10",
		"x.jsonl:11",
		"北京市关于进一步加强稳外资工作的若干措施(2021-12-09).txt",
	};
	int want = 0;
	for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
		if (!root && strcmp(order[i], "unreadable.md") == 0)
			continue;
		assert_true(want < l.n);
		assert_string_equal(l.d[want].path, order[i]);
		want++;
	}
	assert_int_equal(l.n, want);

	const kept *d = by_path(&l, "行政法规/专利代理条例(2018-11-06).md");
	assert_non_null(d);
	assert_string_equal(d->category, "行政法规");
	assert_string_equal(d->title, "专利代理条例");
	assert_int_equal(d->date, 20181106);
	assert_null(d->ext_id);
	assert_non_null(strstr(d->body, "\x1f专利代理条例\n"));
	assert_non_null(strstr(d->body, "\x1f第一章 总则"));
	assert_null(strstr(d->body, "INFO END"));

	d = by_path(&l, "行政法规/无标题(2001-02-03).md");
	assert_string_equal(d->title, "无标题");
	assert_int_equal(d->date, 20010203);
	assert_string_equal(d->body, "没有标题的正文。\n");

	d = by_path(&l, "地方性法规/山东/山东省条例.md");
	assert_string_equal(d->category, "地方性法规/山东");
	assert_string_equal(d->title, "山东省 某某 条例");
	assert_int_equal(d->date, 20191129);

	d = by_path(&l, "地方性法规/b.md");
	assert_string_equal(d->category, "地方性法规");
	assert_string_equal(d->title, "前置");
	assert_string_equal(d->body, "\x1f\n\x1f前置\n\x1f正文\n");
	assert_int_equal(d->body_len, strlen("\x1f\n\x1f前置\n\x1f正文\n"));
	assert_int_equal(d->date, 0);

	d = by_path(&l, "刑法修正案（七）.md");
	assert_string_equal(d->category, "");
	assert_string_equal(d->title, "中华人民共和国刑法修正案（七）");
	assert_int_equal(d->date, 20090228);

	d = by_path(&l, "bom.md");
	assert_string_equal(d->body, "\x1f带BOM\n正文\n");
	assert_string_equal(d->title, "带BOM");
	d = by_path(&l, "link.md");
	assert_string_equal(d->title, "带BOM");

	/* .txt: unchanged body, title from the name, date from the text */
	d = by_path(&l, "a.txt");
	assert_string_equal(d->body, "# 不是 Markdown 标题\n2020年1月2日\n<!-- 保留 -->\n");
	assert_string_equal(d->title, "a");
	assert_int_equal(d->date, 20200102);
	d = by_path(&l, "北京市关于进一步加强稳外资工作的若干措施(2021-12-09).txt");
	assert_string_equal(d->category, "");
	assert_string_equal(d->title, "北京市关于进一步加强稳外资工作的若干措施");
	assert_int_equal(d->date, 20211209);
	assert_string_equal(d->body, " 各区人民政府：\n\n北京市商务局\n\n2021年 12月 9日 \n");  /* BOM dropped */

	/* JSON Lines */
	d = by_path(&l, "x.jsonl:1");
	assert_string_equal(d->ext_id, "a-1");
	assert_string_equal(d->title, "第一 条");
	assert_string_equal(d->body, "第一\n条\n正文一");
	assert_int_equal(d->body_len, strlen("第一\n条\n正文一"));
	assert_string_equal(d->category, "法规/地方");
	assert_int_equal(d->date, 20190605);
	d = by_path(&l, "x.jsonl:2");
	assert_string_equal(d->ext_id, "42");
	assert_string_equal(d->body, "第二\n正文二");
	assert_string_equal(d->category, "");
	assert_int_equal(d->date, 20200101);
	d = by_path(&l, "x.jsonl:10");
	assert_string_equal(d->ext_id, "1.5");
	assert_string_equal(d->body, "第三\n");
	assert_int_equal(d->date, 0);
	assert_string_equal(d->category, "");
	d = by_path(&l, "x.jsonl:11");
	assert_null(d->ext_id);
	assert_int_equal(d->date, 0);

	/* skips, with reasons */
	int i;
	assert_true((i = find_skip(&s, "/laws/空.md")) >= 0);
	assert_string_equal(s.why[i], "empty file");
	assert_true((i = find_skip(&s, "/laws/bom-only.md")) >= 0);
	assert_string_equal(s.why[i], "empty file");
	assert_true((i = find_skip(&s, "/laws/binary.md")) >= 0);
	assert_non_null(strstr(s.why[i], "NUL"));
	assert_true((i = find_skip(&s, "/laws/bad-utf8.md")) >= 0);
	assert_string_equal(s.why[i], "invalid UTF-8");
	assert_true((i = find_skip(&s, "/laws/broken.md")) >= 0);
	assert_non_null(strstr(s.why[i], "broken"));
	if (!root) {
		assert_true((i = find_skip(&s, "/laws/unreadable.md")) >= 0);
		assert_non_null(strstr(s.why[i], "cannot open"));
	} else {
		assert_int_equal(find_skip(&s, "/laws/unreadable.md"), -1);
	}
	assert_true((i = find_skip(&s, "x.jsonl:4")) >= 0);
	assert_string_equal(s.why[i], "malformed JSON");
	assert_true((i = find_skip(&s, "x.jsonl:5")) >= 0);
	assert_non_null(strstr(s.why[i], "title"));
	assert_true((i = find_skip(&s, "x.jsonl:6")) >= 0);
	assert_non_null(strstr(s.why[i], "title"));
	assert_true((i = find_skip(&s, "x.jsonl:7")) >= 0);
	assert_non_null(strstr(s.why[i], "object"));
	assert_true((i = find_skip(&s, "x.jsonl:8")) >= 0);
	assert_string_equal(s.why[i], "invalid UTF-8");
	assert_true((i = find_skip(&s, "x.jsonl:9")) >= 0);
	assert_string_equal(s.why[i], "malformed JSON");
	/* skip reports carry the path as opened */
	assert_int_equal(strncmp(s.what[find_skip(&s, "/laws/空.md")], tmp_root, strlen(tmp_root)), 0);
	for (int k = 0; k < s.n && k < 32; k++) {
		assert_null(strstr(s.what[k], "hidden"));
		assert_null(strstr(s.what[k], "secret"));
		assert_null(strstr(s.what[k], "fifo"));
		assert_null(strstr(s.what[k], "loop"));
		assert_null(strstr(s.what[k], "dirlink"));
		assert_null(strstr(s.what[k], "README"));
		assert_null(strchr(s.why[k], '\n'));
	}
	/* 5 files + 6 JSON lines (+ unreadable when not root) */
	int want_skips = 5 + 6 + (root ? 0 : 1);
	assert_int_equal(s.n, want_skips);
	assert_int_equal(skipped, (uint64_t)s.n);

	free_list(&l);
	remove_tree();
}

static void test_tree_strict(void **state)
{
	(void)state;
	build_tree();
	char laws[512];
	snprintf(laws, sizeof laws, "%s/laws", tmp_root);
	const char *inputs[] = { laws };
	skips s = { 0 };
	doclist l = { 0 };
	uint64_t skipped = 0;
	char err[512];
	/* a.txt comes first, then bad-utf8.md fails */
	assert_int_equal(read_all(inputs, 1, 1, &s, &l, &skipped, err, sizeof err), -1);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.d[0].path, "a.txt");
	assert_int_equal(s.n, 1);
	assert_int_equal(skipped, 1);
	assert_non_null(strstr(err, "bad-utf8.md"));
	assert_non_null(strstr(err, "invalid UTF-8"));
	free_list(&l);

	/* a clean tree reads fine in strict mode */
	char ok[512];
	snprintf(ok, sizeof ok, "%s/laws/行政法规", tmp_root);
	const char *in2[] = { ok };
	memset(&s, 0, sizeof s);
	assert_int_equal(read_all(in2, 1, 1, &s, &l, &skipped, err, sizeof err), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(s.n, 0);
	assert_string_equal(err, "");
	free_list(&l);

	/* strict: a bad JSON line is fatal, and stays fatal */
	char jl[512];
	snprintf(jl, sizeof jl, "%s/seed/x.jsonl", tmp_root);
	const char *in3[] = { jl };
	corpus_reader *r = corpus_open(in3, 1, 1, NULL, NULL, err, sizeof err);
	assert_non_null(r);
	corpus_doc d;
	assert_int_equal(corpus_next(r, &d), 1);
	assert_string_equal(d.path, "x.jsonl:1");
	assert_int_equal(corpus_next(r, &d), 1);
	assert_int_equal(corpus_next(r, &d), -1);
	assert_non_null(strstr(corpus_error(r), "x.jsonl:4"));
	assert_int_equal(corpus_next(r, &d), -1);
	assert_int_equal(corpus_skipped(r), 1);
	corpus_close(r);
	remove_tree();
}

static void test_direct_inputs(void **state)
{
	(void)state;
	build_tree();
	char md[512], txt[512], jl[512], missing[512], other[512];
	snprintf(md, sizeof md, "%s/laws/行政法规/专利代理条例(2018-11-06).md", tmp_root);
	snprintf(txt, sizeof txt, "%s/laws/a.txt", tmp_root);
	snprintf(jl, sizeof jl, "%s/seed/x.jsonl", tmp_root);
	snprintf(missing, sizeof missing, "%s/nope", tmp_root);
	snprintf(other, sizeof other, "%s/laws/notes.pdf", tmp_root);

	const char *inputs[] = { md, txt, jl };
	skips s = { 0 };
	doclist l = { 0 };
	assert_int_equal(read_all(inputs, 3, 0, &s, &l, NULL, NULL, 0), 0);
	assert_int_equal(l.n, 2 + 4);
	assert_string_equal(l.d[0].path, "专利代理条例(2018-11-06).md");
	assert_string_equal(l.d[0].category, "");
	assert_int_equal(l.d[0].date, 20181106);
	assert_string_equal(l.d[1].path, "a.txt");
	assert_string_equal(l.d[2].path, "x.jsonl:1");
	assert_int_equal(s.n, 6);
	free_list(&l);

	/* the same file twice is read twice; no inputs reads nothing */
	const char *twice[] = { md, md };
	memset(&s, 0, sizeof s);
	assert_int_equal(read_all(twice, 2, 0, &s, &l, NULL, NULL, 0), 0);
	assert_int_equal(l.n, 2);
	free_list(&l);
	assert_int_equal(read_all(NULL, 0, 0, &s, &l, NULL, NULL, 0), 0);
	assert_int_equal(l.n, 0);

	/* inputs that cannot be opened */
	char err[512];
	const char *bad1[] = { md, missing };
	assert_null(corpus_open(bad1, 2, 0, NULL, NULL, err, sizeof err));
	assert_non_null(strstr(err, "nope"));
	const char *bad2[] = { other };
	assert_null(corpus_open(bad2, 1, 0, NULL, NULL, err, sizeof err));
	assert_non_null(strstr(err, "notes.pdf"));
	const char *bad3[] = { "" };
	assert_null(corpus_open(bad3, 1, 0, NULL, NULL, err, sizeof err));
	assert_true(err[0]);
	assert_null(corpus_open(bad1, 2, 0, NULL, NULL, NULL, 0));

	/* closing early, mid-folder and mid-JSON-Lines, does not leak */
	char laws[512];
	snprintf(laws, sizeof laws, "%s/laws", tmp_root);
	const char *in4[] = { laws, jl };
	corpus_reader *r = corpus_open(in4, 2, 0, NULL, NULL, err, sizeof err);
	corpus_doc d;
	assert_int_equal(corpus_next(r, &d), 1);
	corpus_close(r);
	const char *in5[] = { jl };
	r = corpus_open(in5, 1, 0, NULL, NULL, err, sizeof err);
	assert_int_equal(corpus_next(r, &d), 1);
	corpus_close(r);
	corpus_close(NULL);
	remove_tree();
}

/* A JSON line far longer than stdio's buffers, and a file too large. */
static void test_large(void **state)
{
	(void)state;
	snprintf(tmp_root, sizeof tmp_root, "/tmp/test_corpus.XXXXXX");
	assert_non_null(mkdtemp(tmp_root));
	size_t big = 8u << 20;
	char *line = malloc(big + 64);
	size_t n = (size_t)sprintf(line, "{\"title\":\"大\",\"body\":\"");
	memset(line + n, 'x', big);
	n += big;
	n += (size_t)sprintf(line + n, "\"}\n{\"title\":\"小\",\"body\":\"y\"}\n");
	write_file("big.jsonl", line, n);
	free(line);

	/* a sparse file just over the limit */
	char p[512];
	snprintf(p, sizeof p, "%s/huge.md", tmp_root);
	int fd = open(p, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)SOUSUO_MAX_DOC_BYTES + 1), 0);
	close(fd);

	const char *inputs[] = { tmp_root };
	skips s = { 0 };
	doclist l = { 0 };
	assert_int_equal(read_all(inputs, 1, 0, &s, &l, NULL, NULL, 0), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.d[0].path, "big.jsonl:1");
	assert_int_equal(l.d[0].body_len, strlen("大\n") + big);
	assert_string_equal(l.d[1].path, "big.jsonl:2");
	assert_string_equal(l.d[1].body, "小\ny");
	assert_int_equal(s.n, 1);
	assert_non_null(strstr(s.what[0], "huge.md"));
	assert_non_null(strstr(s.why[0], "larger"));
	free_list(&l);
	rm_tree(tmp_root);
}

/* The reader accepts a file exactly when text_utf8_valid does. */
static void test_utf8_edges(void **state)
{
	(void)state;
	static const char *const cases[] = {
		"\xE0\x80\x80", "\xE0\xA0\x80", "\xED\xA0\x80", "\xED\x9F\xBF", "\xEF\xBF\xBF",
		"\xE4\xB8", "\xE4\xB8\x41", "\xE4\x41\xB8", "\xC0\x80", "\xC2\x80", "\xF0\x9F\x98\x80",
		"\xF4\x8F\xBF\xBF", "\xF4\x90\x80\x80", "\xF0\x80\x80\x80", "\xF5\x80\x80\x80",
		"\x80", "\xBF", "\xFE", "\xFF", "\xE1\x80\x80", "\xEC\xBF\xBF", "\xEE\x80\x80",
	};
	snprintf(tmp_root, sizeof tmp_root, "/tmp/test_corpus.XXXXXX");
	assert_non_null(mkdtemp(tmp_root));
	char name[64], text[64];
	int valid = 0;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		for (int where = 0; where < 3; where++) {
			/* at the start, in the middle, at the very end */
			static const char *const pre[] = { "", "中文", "中文" }, *const post[] = { "文字", "文字", "" };
			snprintf(text, sizeof text, "%s%s%s", pre[where], cases[i], post[where]);
			snprintf(name, sizeof name, "%02zu-%d.md", i, where);
			write_str(name, text);
			valid += text_utf8_valid(text, strlen(text));
		}
	const char *inputs[] = { tmp_root };
	skips s = { 0 };
	doclist l = { 0 };
	assert_int_equal(read_all(inputs, 1, 0, &s, &l, NULL, NULL, 0), 0);
	assert_int_equal(l.n, valid);
	for (int i = 0; i < l.n; i++)
		assert_true(text_utf8_valid(l.d[i].body, l.d[i].body_len));
	assert_int_equal(s.n, (int)(3 * (sizeof cases / sizeof *cases)) - valid);
	assert_true(valid >= 3 * 9);
	free_list(&l);
	rm_tree(tmp_root);
}

/* ---------------------------------------------------------------- real corpus */

static void test_real_corpus(void **state)
{
	(void)state;
	char laws[1024], seed[1024];
	snprintf(laws, sizeof laws, "%s/corpus/laws", test_shared_dir());
	snprintf(seed, sizeof seed, "%s/corpus/seed", test_shared_dir());
	struct stat st;
	if (stat(laws, &st) != 0) {
		print_message("no corpus at %s; set SHARED\n", laws);
		fail();
	}
	const char *inputs[] = { laws, seed };
	skips s = { 0 };
	char err[512];
	corpus_reader *r = corpus_open(inputs, 2, 0, on_skip, &s, err, sizeof err);
	assert_non_null(r);
	corpus_doc d;
	int rc, n = 0, found = 0, seed_found = 0, dated = 0;
	size_t bytes = 0;
	char prev_path[1024] = "";
	while ((rc = corpus_next(r, &d)) == 1) {
		check_doc_invariants(&d);
		assert_true(d.title[0] != '\0');
		assert_true(d.body_len > 0);
		bytes += d.body_len;
		dated += d.date != 0;
		/* within the laws tree, files of one folder come in byte order */
		if (n > 0 && n < 3475 && strchr(d.path, '/') && strchr(prev_path, '/')) {
			const char *a = strrchr(prev_path, '/'), *b = strrchr(d.path, '/');
			if ((size_t)(a - prev_path) == (size_t)(b - d.path) &&
			    memcmp(prev_path, d.path, (size_t)(a - prev_path)) == 0)
				assert_true(strcmp(a, b) < 0);
		}
		snprintf(prev_path, sizeof prev_path, "%s", d.path);
		if (strcmp(d.path, "行政法规/专利代理条例(2018-11-06).md") == 0) {
			found++;
			assert_string_equal(d.category, "行政法规");
			assert_string_equal(d.title, "专利代理条例");
			assert_int_equal(d.date, 20181106);
			assert_null(d.ext_id);
			assert_non_null(strstr(d.body, "第一条 为了规范专利代理行为"));
		}
		if (strcmp(d.path, "刑法/刑法修正案（七）.md") == 0) {
			found++;
			assert_string_equal(d.category, "刑法");
			assert_string_equal(d.title, "中华人民共和国刑法修正案（七）");
			assert_int_equal(d.date, 20090228);
		}
		if (strcmp(d.path, "北京市关于进一步加强稳外资工作的若干措施(2021-12-09).txt") == 0) {
			seed_found++;
			assert_int_equal(n, 3475);
			assert_string_equal(d.category, "");
			assert_int_equal(d.date, 20211209);
		}
		n++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(n, 3475 + 1);
	assert_int_equal(corpus_skipped(r), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(found, 2);
	assert_int_equal(seed_found, 1);
	print_message("real corpus: %d documents, %zu body bytes, %d dated\n", n, bytes, dated);
	corpus_close(r);
}

/* Removes the temporary tree even when a test failed half way. */
static int teardown_tmp(void **state)
{
	(void)state;
	if (tmp_root[0])
		rm_tree(tmp_root);
	tmp_root[0] = '\0';
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_headings),
		cmocka_unit_test(test_clean_comments),
		cmocka_unit_test(test_clean_front_matter),
		cmocka_unit_test(test_clean_fuzz),
		cmocka_unit_test(test_date_from_name),
		cmocka_unit_test(test_date_from_text),
		cmocka_unit_test_teardown(test_tree, teardown_tmp),
		cmocka_unit_test_teardown(test_tree_strict, teardown_tmp),
		cmocka_unit_test_teardown(test_direct_inputs, teardown_tmp),
		cmocka_unit_test_teardown(test_large, teardown_tmp),
		cmocka_unit_test_teardown(test_utf8_edges, teardown_tmp),
		cmocka_unit_test(test_real_corpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
