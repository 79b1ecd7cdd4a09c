/* LuceneBench.java — the Apache Lucene peer of `make bench-compare`: indexes the
 * shared corpus with Lucene 8 (two CJK analyzers), runs the benchmark queries
 * in-process, warm, and writes the figures that the aggregator reads.
 * Run by run.sh (which installs Lucene and a JDK, compiles this file, sets the
 * JVM flags and runs one JVM per variant); see README.md beside it.
 *
 * Variants (one on-disk index each, OUT/index-<variant>):
 *   cjk      org.apache.lucene.analysis.cjk.CJKAnalyzer as shipped: StandardTokenizer,
 *            CJKWidthFilter, LowerCaseFilter, CJKBigramFilter (bigrams only; a CJK
 *            character with no CJK neighbour is kept as a unigram), StopFilter with
 *            CJKAnalyzer's default (English) stop set.
 *   cjk-uni  the same chain with CJKBigramFilter(outputUnigrams = true): every CJK
 *            character is also indexed as a unigram (at its own position; the
 *            bigram starting there shares the position, position length 2), so
 *            one-character queries can be answered.
 * Documents: every .md and .txt file under the given roots (depth first, names
 * sorted byte-wise, names starting with '.' skipped, as sousuo's corpus walk);
 * fields path (StringField, stored; relative to the root) and body (TextField, not
 * stored; the file's whole text, UTF-8, a leading BOM dropped, no Markdown
 * stripping).
 *
 * Query translation (our query language -> Lucene Query; written here rather than
 * with Lucene's QueryParser so that the semantics are exactly ours):
 *   - Whitespace separates terms; juxtaposition is AND; '|' is OR and binds looser
 *     than AND, so "a b | c" is (a AND b) OR c; "-x" (a '-' at the start of a
 *     chunk, directly followed by the term) is NOT x.
 *   - A term is run through the variant's own analyzer (the one that built the
 *     index) and becomes a PhraseQuery of the resulting tokens, each at the position
 *     the analyzer gave it (bigrams are consecutive; with unigrams too, a unigram
 *     and the bigram starting at it share one position).  One token: a TermQuery.
 *     No token: MatchNoDocsQuery (matches nothing).  This is what QueryParser does
 *     for CJK with autoGeneratePhraseQueries, minus its synonym/graph handling.
 *   - cjk-uni, --uni-query bigrams (the default): the unigrams that a bigram of
 *     the same term covers are left out of the phrase ("中国人" -> 中国@0 国人@1,
 *     not 中@0 中国@0 国@1 国人@1 人@2).  The index holds a unigram wherever it
 *     holds a bigram starting or ending there, so no hit count changes (checked:
 *     the two modes give identical hits files), but the phrase no longer reads the
 *     huge position lists of single characters.  A one-character term stays a
 *     unigram TermQuery; "2019年" stays 2019@0 年@1.  --uni-query all: every token.
 *   - AND: BooleanQuery with MUST clauses; NOT: MUST_NOT; a group of NOT clauses
 *     only gets MatchAllDocsQuery as MUST; OR: BooleanQuery of SHOULD clauses,
 *     minimumNumberShouldMatch 1.  A group of one positive term is that term.
 *   - ( ) and "..." are not translated (the benchmark file has none): such a query
 *     is an error, counted as a disagreement with total -1.
 *
 * Measurement: per query, translate + IndexSearcher.search(q, collector) with
 * TopScoreDocCollector.create(10, Integer.MAX_VALUE), so totalHits is exact (Lucene 8
 * otherwise stops counting at 1,000).  Untimed warm-up passes for --warmup-s seconds
 * (default 10; at least one pass), then R timed passes; a
 * query's latency is its median over the R passes; p50/p99/max over the queries.
 * Whole-file time: median over the passes; qps1 = queries / that.  qps2: two threads
 * each run the whole file at once on one shared IndexSearcher, min(R, 3) times;
 * qps2 = 2 x queries / wall time, median.  The query cache is switched off (with 3,476
 * documents Lucene's default LRUQueryCache would not cache anything anyway: it
 * skips segments under 10,000 documents).
 *
 * Usage: java LuceneBench --out DIR --env FILE --queries F --expected F
 *          [--docs N] [--queries-max N] [--runs R] [--variants cjk,cjk-uni]
 *          [--uni-query all|bigrams] [--warmup-s S] [--reuse] ROOT...
 * (--reuse: search an index left by an earlier run, build time 0; for diagnosis.)
 */

import java.io.IOException;
import java.io.PrintWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.CountDownLatch;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.LowerCaseFilter;
import org.apache.lucene.analysis.StopFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.cjk.CJKAnalyzer;
import org.apache.lucene.analysis.cjk.CJKBigramFilter;
import org.apache.lucene.analysis.cjk.CJKWidthFilter;
import org.apache.lucene.analysis.standard.StandardTokenizer;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;
import org.apache.lucene.analysis.tokenattributes.PositionIncrementAttribute;
import org.apache.lucene.analysis.tokenattributes.TypeAttribute;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.Field;
import org.apache.lucene.document.StringField;
import org.apache.lucene.document.TextField;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.Term;
import org.apache.lucene.search.BooleanClause;
import org.apache.lucene.search.BooleanQuery;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.MatchAllDocsQuery;
import org.apache.lucene.search.MatchNoDocsQuery;
import org.apache.lucene.search.PhraseQuery;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.TermQuery;
import org.apache.lucene.search.TopScoreDocCollector;
import org.apache.lucene.search.TotalHits;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.util.Version;

public final class LuceneBench {

	/* ---------- analyzers ---------- */

	/** CJKAnalyzer's chain with unigrams output as well as bigrams. */
	static final class CJKUniBigramAnalyzer extends Analyzer {
		@Override
		protected TokenStreamComponents createComponents(String field) {
			Tokenizer source = new StandardTokenizer();
			TokenStream r = new CJKWidthFilter(source);
			r = new LowerCaseFilter(r);
			r = new CJKBigramFilter(r, CJKBigramFilter.HAN | CJKBigramFilter.HIRAGANA
			                           | CJKBigramFilter.KATAKANA | CJKBigramFilter.HANGUL, true);
			r = new StopFilter(r, CJKAnalyzer.getDefaultStopSet());
			return new TokenStreamComponents(source, r);
		}

		@Override
		protected TokenStream normalize(String field, TokenStream in) {
			return new LowerCaseFilter(new CJKWidthFilter(in));
		}
	}

	static Analyzer analyzerFor(String variant) {
		switch (variant) {
		case "cjk": return new CJKAnalyzer();
		case "cjk-uni": return new CJKUniBigramAnalyzer();
		default: throw new IllegalArgumentException("unknown variant " + variant);
		}
	}

	/* ---------- query translation ---------- */

	static final class QueryError extends Exception {
		QueryError(String m) { super(m); }
	}

	static boolean isSpace(int c) {
		return c <= 0x20 || c == 0x7f || Character.isWhitespace(c) || Character.isSpaceChar(c)
		       || c == 0x85;
	}

	static final class Translator {
		final Analyzer analyzer;
		final boolean bigramsOnly;   /* cjk-uni, --uni-query bigrams: drop covered unigrams */

		Translator(Analyzer a, boolean bigramsOnly) {
			this.analyzer = a;
			this.bigramsOnly = bigramsOnly;
		}

		Query term(String text) throws IOException {
			List<String> terms = new ArrayList<>();
			List<Integer> poss = new ArrayList<>();
			List<String> types = new ArrayList<>();
			try (TokenStream ts = analyzer.tokenStream("body", text)) {
				CharTermAttribute ta = ts.addAttribute(CharTermAttribute.class);
				PositionIncrementAttribute pa = ts.addAttribute(PositionIncrementAttribute.class);
				TypeAttribute ty = ts.addAttribute(TypeAttribute.class);
				ts.reset();
				int pos = -1;
				while (ts.incrementToken()) {
					pos += pa.getPositionIncrement();
					terms.add(ta.toString());
					poss.add(pos);
					types.add(ty.type());
				}
				ts.end();
			}
			if (bigramsOnly) {
				/* A unigram at p is implied by a bigram at p or at p-1 (same analyzer
				 * on both sides), so dropping it changes no hit count.  CJKBigramFilter
				 * types its output <SINGLE> or <DOUBLE>. */
				Set<Integer> covered = new HashSet<>();
				for (int i = 0; i < terms.size(); i++)
					if ("<DOUBLE>".equals(types.get(i))) {
						covered.add(poss.get(i));
						covered.add(poss.get(i) + 1);
					}
				for (int i = terms.size() - 1; i >= 0; i--)
					if ("<SINGLE>".equals(types.get(i)) && covered.contains(poss.get(i))) {
						terms.remove(i);
						poss.remove(i);
						types.remove(i);
					}
			}
			if (terms.isEmpty())
				return new MatchNoDocsQuery("term without tokens");
			if (terms.size() == 1)
				return new TermQuery(new Term("body", terms.get(0)));
			PhraseQuery.Builder b = new PhraseQuery.Builder();
			for (int i = 0; i < terms.size(); i++)
				b.add(new Term("body", terms.get(i)), poss.get(i));
			return b.build();
		}

		private static Query group(List<Query> pos, List<Query> neg) {
			if (neg.isEmpty() && pos.size() == 1)
				return pos.get(0);
			BooleanQuery.Builder b = new BooleanQuery.Builder();
			for (Query q : pos)
				b.add(q, BooleanClause.Occur.MUST);
			for (Query q : neg)
				b.add(q, BooleanClause.Occur.MUST_NOT);
			if (pos.isEmpty())
				b.add(new MatchAllDocsQuery(), BooleanClause.Occur.MUST);
			return b.build();
		}

		Query translate(String q) throws IOException, QueryError {
			List<Query> groups = new ArrayList<>();
			List<Query> pos = new ArrayList<>(), neg = new ArrayList<>();
			int n = q.length(), i = 0;
			while (i < n) {
				int c = q.codePointAt(i);
				if (isSpace(c)) {
					i += Character.charCount(c);
					continue;
				}
				if (c == '|') {
					if (pos.isEmpty() && neg.isEmpty())
						throw new QueryError("'|' without a left side");
					groups.add(group(pos, neg));
					pos = new ArrayList<>();
					neg = new ArrayList<>();
					i++;
					continue;
				}
				if (c == '(' || c == ')' || c == '"')
					throw new QueryError("( ) and \"...\" are not translated");
				boolean not = false;
				if (c == '-') {
					not = true;
					i++;
					if (i >= n)
						throw new QueryError("'-' without an operand");
					int d = q.codePointAt(i);
					if (isSpace(d) || d == '|' || d == '-' || d == ')')
						throw new QueryError("'-' without an operand");
				}
				int start = i;
				while (i < n) {
					int d = q.codePointAt(i);
					if (isSpace(d) || d == '|' || d == '(' || d == ')' || d == '"')
						break;
					i += Character.charCount(d);
				}
				Query t = term(q.substring(start, i));
				(not ? neg : pos).add(t);
			}
			if (pos.isEmpty() && neg.isEmpty()) {
				if (groups.isEmpty())
					throw new QueryError("empty query");
				throw new QueryError("'|' without a right side");
			}
			groups.add(group(pos, neg));
			if (groups.size() == 1)
				return groups.get(0);
			BooleanQuery.Builder b = new BooleanQuery.Builder();
			for (Query g : groups)
				b.add(g, BooleanClause.Occur.SHOULD);
			b.setMinimumNumberShouldMatch(1);
			return b.build();
		}
	}

	/* ---------- corpus ---------- */

	static int compareBytes(String a, String b) {
		byte[] x = a.getBytes(StandardCharsets.UTF_8), y = b.getBytes(StandardCharsets.UTF_8);
		int n = Math.min(x.length, y.length);
		for (int i = 0; i < n; i++) {
			int d = (x[i] & 0xff) - (y[i] & 0xff);
			if (d != 0)
				return d;
		}
		return x.length - y.length;
	}

	static void walk(Path dir, String rel, List<Path> files, List<String> rels) throws IOException {
		List<Path> entries = new ArrayList<>();
		try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
			for (Path p : ds)
				entries.add(p);
		}
		entries.sort((a, b) -> compareBytes(a.getFileName().toString(), b.getFileName().toString()));
		for (Path p : entries) {
			String name = p.getFileName().toString();
			if (name.startsWith("."))
				continue;
			String r = rel.isEmpty() ? name : rel + "/" + name;
			if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
				walk(p, r, files, rels);
				continue;
			}
			String low = name.toLowerCase(Locale.ROOT);
			if ((low.endsWith(".md") || low.endsWith(".txt")) && Files.isRegularFile(p)) {
				files.add(p);
				rels.add(r);
			}
		}
	}

	/* ---------- statistics ---------- */

	static double pct(double[] sorted, double p) {
		if (sorted.length == 0)
			return 0;
		return sorted[(int) (p * (sorted.length - 1) + 0.5)];
	}

	static double median(double[] v) {
		double[] s = v.clone();
		Arrays.sort(s);
		int n = s.length;
		return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	}

	/* The classes of sousuo-hotpath (bench/hotpath_main.c), for side-by-side reading. */
	static final String[] CLASS_NAMES = {
		"1 char", "2 chars", "3-4 chars", "5+ chars", "AND", "OR", "NOT", "latin/digits"
	};

	static int classify(String q) {
		if (q.indexOf('|') >= 0)
			return 5;
		if (q.contains(" -") || q.startsWith("-"))
			return 6;
		for (int i = 0; i < q.length(); i++) {
			char c = q.charAt(i);
			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
				return 7;
		}
		if (q.indexOf(' ') >= 0)
			return 4;
		int chars = q.codePointCount(0, q.length());
		return chars == 1 ? 0 : chars == 2 ? 1 : chars <= 4 ? 2 : 3;
	}

	/* ---------- one variant ---------- */

	static final class Result {
		String variant;
		double buildS;
		long indexBytes;
		int ndocs, segments;
		double p50, p99, max;     /* microseconds */
		double fileMs, qps1, qps2;
		int agree, nq, errors, warmPasses;
		double warmS;
	}

	static String[] queries;
	static long[] expected;
	static String[] classes;

	static long search(IndexSearcher s, Translator tr, String q) throws IOException {
		Query lq;
		try {
			lq = tr.translate(q);
		} catch (QueryError e) {
			return -1;
		}
		TopScoreDocCollector c = TopScoreDocCollector.create(10, Integer.MAX_VALUE);
		s.search(lq, c);
		TotalHits th = c.topDocs().totalHits;
		if (th.relation != TotalHits.Relation.EQUAL_TO)
			throw new IllegalStateException("total hits not exact for " + q);
		return th.value;
	}

	static Result runVariant(String variant, Path outDir, List<Path> roots, int maxDocs, int runs,
	                         boolean uniBigramsOnly, boolean reuse, double warmupS) throws Exception {
		Result res = new Result();
		res.variant = variant;
		Analyzer analyzer = analyzerFor(variant);
		Path idx = outDir.resolve("index-" + variant);

		/* Build: walk + read + analyze + write + commit, wall time.  --reuse (for
		 * looking at queries only) opens the index a previous run left instead. */
		long t0 = System.nanoTime();
		if (reuse && Files.isDirectory(idx)) {
			try (Directory dir = FSDirectory.open(idx); DirectoryReader r = DirectoryReader.open(dir)) {
				res.ndocs = r.numDocs();
			}
			res.buildS = 0;
		} else {
		List<Path> files = new ArrayList<>();
		List<String> rels = new ArrayList<>();
		for (Path root : roots)
			walk(root, "", files, rels);
		int ndocs = Math.min(files.size(), maxDocs);
		IndexWriterConfig iwc = new IndexWriterConfig(analyzer);
		iwc.setOpenMode(IndexWriterConfig.OpenMode.CREATE);
		iwc.setRAMBufferSizeMB(256);
		try (Directory dir = FSDirectory.open(idx); IndexWriter w = new IndexWriter(dir, iwc)) {
			for (int i = 0; i < ndocs; i++) {
				String text = new String(Files.readAllBytes(files.get(i)), StandardCharsets.UTF_8);
				if (text.startsWith("\uFEFF"))
					text = text.substring(1);
				Document d = new Document();
				d.add(new StringField("path", rels.get(i), Field.Store.YES));
				d.add(new TextField("body", text, Field.Store.NO));
				w.addDocument(d);
			}
			w.commit();
		}
		res.buildS = (System.nanoTime() - t0) / 1e9;
		res.ndocs = ndocs;
		}
		long bytes = 0;
		try (DirectoryStream<Path> ds = Files.newDirectoryStream(idx)) {
			for (Path p : ds)
				bytes += Files.size(p);
		}
		res.indexBytes = bytes;

		/* Search. */
		int nq = queries.length;
		res.nq = nq;
		Translator tr = new Translator(analyzer, uniBigramsOnly && variant.equals("cjk-uni"));
		try (Directory dir = FSDirectory.open(idx); DirectoryReader reader = DirectoryReader.open(dir)) {
			res.segments = reader.leaves().size();
			IndexSearcher searcher = new IndexSearcher(reader);
			searcher.setQueryCache(null);
			/* Warm-up, untimed: passes over the file until warmupS seconds have gone
			 * (at least one; the first one's totals are kept).  HotSpot needs many
			 * passes to reach its steady state: the pass time of a cold JVM falls from
			 * ~1.9 s to ~0.4-0.7 s over the first 15 s or so. */
			long[] totals = new long[nq];
			long ws0 = System.nanoTime();
			int warm = 0;
			do {
				for (int i = 0; i < nq; i++) {
					long t = search(searcher, tr, queries[i]);
					if (warm == 0)
						totals[i] = t;
				}
				warm++;
			} while (warm < 200 && (System.nanoTime() - ws0) / 1e9 < warmupS);
			res.warmPasses = warm;
			res.warmS = (System.nanoTime() - ws0) / 1e9;
			double[][] lat = new double[nq][runs];
			double[] pass = new double[runs];
			long sink = 0;
			for (int r = 0; r < runs; r++) {
				long ps = System.nanoTime();
				for (int i = 0; i < nq; i++) {
					long a = System.nanoTime();
					sink += search(searcher, tr, queries[i]);
					lat[i][r] = (System.nanoTime() - a) / 1e3;
				}
				pass[r] = (System.nanoTime() - ps) / 1e6;
			}
			double[] med = new double[nq];
			for (int i = 0; i < nq; i++)
				med[i] = median(lat[i]);
			double[] sorted = med.clone();
			Arrays.sort(sorted);
			res.p50 = pct(sorted, 0.5);
			res.p99 = pct(sorted, 0.99);
			res.max = sorted.length > 0 ? sorted[sorted.length - 1] : 0;
			res.fileMs = median(pass);
			res.qps1 = nq / (res.fileMs / 1e3);

			/* Two threads, each the whole file, one shared searcher. */
			double[] q2 = new double[Math.min(runs, 3)];
			for (int r = 0; r < q2.length; r++) {
				CountDownLatch go = new CountDownLatch(1);
				Thread[] th = new Thread[2];
				long[] sinks = new long[2];
				Throwable[] fail = new Throwable[1];
				for (int k = 0; k < 2; k++) {
					final int kk = k;
					th[k] = new Thread(() -> {
						try {
							go.await();
							long s = 0;
							for (int i = 0; i < nq; i++)
								s += search(searcher, tr, queries[i]);
							sinks[kk] = s;
						} catch (Throwable e) {
							synchronized (fail) { fail[0] = e; }
						}
					});
					th[k].start();
				}
				long ws = System.nanoTime();
				go.countDown();
				for (Thread t : th)
					t.join();
				double wall = (System.nanoTime() - ws) / 1e9;
				if (fail[0] != null)
					throw new RuntimeException("search thread failed", fail[0]);
				q2[r] = 2.0 * nq / wall;
				sink += sinks[0] + sinks[1];
			}
			res.qps2 = median(q2);

			/* Agreement with the brute-force counts; per-query file. */
			Path hits = outDir.resolve(variant + "-hits.tsv");
			try (Writer hw = Files.newBufferedWriter(hits, StandardCharsets.UTF_8)) {
				for (int i = 0; i < nq; i++) {
					if (totals[i] == expected[i])
						res.agree++;
					if (totals[i] < 0)
						res.errors++;
					hw.write(queries[i] + "\t" + expected[i] + "\t" + totals[i] + "\n");
				}
			}

			/* Per-query latency, for looking at the slow ones. */
			try (Writer lw = Files.newBufferedWriter(outDir.resolve(variant + "-latency.tsv"),
			                                         StandardCharsets.UTF_8)) {
				lw.write("query\tclass\tmedian_us\ttotal\n");
				for (int i = 0; i < nq; i++)
					lw.write(String.format(Locale.ROOT, "%s\t%s\t%.1f\t%d%n", queries[i],
					                       CLASS_NAMES[classify(queries[i])], med[i], totals[i]));
			}

			/* Human summary. */
			System.out.printf(Locale.ROOT, "%s: %d documents, build %.2f s, index %.1f MB (%d segments)%n",
			                  variant, res.ndocs, res.buildS, res.indexBytes / 1e6, res.segments);
			System.out.printf(Locale.ROOT,
			                  "  %d queries x %d runs, warm, 1 thread, exact totals, top 10: whole file %.1f ms, "
			                  + "%.0f q/s; 2 threads %.0f q/s (median of %d)%n", nq, runs, res.fileMs, res.qps1,
			                  res.qps2, q2.length);
			StringBuilder pl = new StringBuilder();
			for (double x : pass)
				pl.append(String.format(Locale.ROOT, " %.0f", x));
			System.out.printf(Locale.ROOT, "  warm-up %d passes (%.1f s); timed passes (ms):%s%n", res.warmPasses,
			                  res.warmS, pl);
			System.out.printf(Locale.ROOT, "  per query (median of runs): p50 %.1f us  p99 %.1f us  max %.1f us%n",
			                  res.p50, res.p99, res.max);
			System.out.printf(Locale.ROOT, "  totals equal to expected-hits.tsv: %d / %d (%d not translated)%n",
			                  res.agree, nq, res.errors);
			System.out.printf(Locale.ROOT, "  %-14s %5s %9s %9s %9s %7s%n", "class", "n", "p50 us", "p99 us",
			                  "max us", "agree");
			for (int c = 0; c < CLASS_NAMES.length; c++) {
				List<Double> v = new ArrayList<>();
				int ag = 0;
				for (int i = 0; i < nq; i++)
					if (classify(queries[i]) == c) {
						v.add(med[i]);
						if (totals[i] == expected[i])
							ag++;
					}
				if (v.isEmpty())
					continue;
				double[] s = new double[v.size()];
				for (int i = 0; i < s.length; i++)
					s[i] = v.get(i);
				Arrays.sort(s);
				System.out.printf(Locale.ROOT, "  %-14s %5d %9.1f %9.1f %9.1f %7d%n", CLASS_NAMES[c], s.length,
				                  pct(s, 0.5), pct(s, 0.99), s[s.length - 1], ag);
			}
			if (sink == Long.MIN_VALUE)
				System.out.println();   /* keeps the searches observable */
		}
		return res;
	}

	/* ---------- main ---------- */

	static String envPrefix(String variant) {
		return "lucene_" + variant.replace("-", "") + "_";
	}

	public static void main(String[] args) throws Exception {
		Path out = null, env = null, qfile = null, efile = null;
		int maxDocs = Integer.MAX_VALUE, maxQ = Integer.MAX_VALUE, runs = 5;
		double warmupS = 10;
		String variants = "cjk,cjk-uni";
		boolean uniBigrams = true, reuse = false;
		List<Path> roots = new ArrayList<>();
		for (int i = 0; i < args.length; i++) {
			String a = args[i];
			switch (a) {
			case "--out": out = Paths.get(args[++i]); break;
			case "--env": env = Paths.get(args[++i]); break;
			case "--queries": qfile = Paths.get(args[++i]); break;
			case "--expected": efile = Paths.get(args[++i]); break;
			case "--docs": maxDocs = Integer.parseInt(args[++i]); break;
			case "--queries-max": maxQ = Integer.parseInt(args[++i]); break;
			case "--runs": runs = Integer.parseInt(args[++i]); break;
			case "--variants": variants = args[++i]; break;
			case "--reuse": reuse = true; break;
			case "--warmup-s": warmupS = Double.parseDouble(args[++i]); break;
			case "--uni-query":
				String m = args[++i];
				if (!m.equals("all") && !m.equals("bigrams"))
					throw new IllegalArgumentException("--uni-query all|bigrams");
				uniBigrams = m.equals("bigrams");
				break;
			default:
				if (a.startsWith("--"))
					throw new IllegalArgumentException("unknown option " + a);
				roots.add(Paths.get(a));
			}
		}
		if (out == null || env == null || qfile == null || efile == null || roots.isEmpty() || runs < 1) {
			System.err.println("usage: LuceneBench --out DIR --env FILE --queries F --expected F [--docs N] "
			                   + "[--queries-max N] [--runs R] [--variants cjk,cjk-uni] "
			                   + "[--uni-query all|bigrams] [--warmup-s S] [--reuse] ROOT...");
			System.exit(2);
		}
		Files.createDirectories(out);

		List<String> ql = Files.readAllLines(qfile, StandardCharsets.UTF_8);
		List<String> el = Files.readAllLines(efile, StandardCharsets.UTF_8);
		while (!ql.isEmpty() && ql.get(ql.size() - 1).isEmpty())
			ql.remove(ql.size() - 1);
		int nq = Math.min(ql.size(), maxQ);
		queries = new String[nq];
		expected = new long[nq];
		for (int i = 0; i < nq; i++) {
			queries[i] = ql.get(i);
			String[] f = i < el.size() ? el.get(i).split("\t") : new String[0];
			if (f.length < 2 || !f[0].equals(queries[i]))
				throw new IllegalStateException(efile + " line " + (i + 1) + " does not match " + qfile);
			expected[i] = Long.parseLong(f[1]);
		}

		List<Result> results = new ArrayList<>();
		for (String v : variants.split(","))
			results.add(runVariant(v, out, roots, maxDocs, runs, uniBigrams, reuse, warmupS));

		Path tmp = env.resolveSibling(env.getFileName() + ".tmp");
		try (PrintWriter pw = new PrintWriter(Files.newBufferedWriter(tmp, StandardCharsets.UTF_8))) {
			pw.println("lucene_version=" + Version.LATEST);
			pw.println("java_version=" + System.getProperty("java.version"));
			for (Result r : results) {
				String p = envPrefix(r.variant);
				pw.printf(Locale.ROOT, "%sbuild_s=%.2f%n", p, r.buildS);
				pw.printf(Locale.ROOT, "%sindex_bytes=%d%n", p, r.indexBytes);
				pw.printf(Locale.ROOT, "%sp50_us=%.1f%n", p, r.p50);
				pw.printf(Locale.ROOT, "%sp99_us=%.1f%n", p, r.p99);
				pw.printf(Locale.ROOT, "%smax_us=%.1f%n", p, r.max);
				pw.printf(Locale.ROOT, "%sfile_ms=%.1f%n", p, r.fileMs);
				pw.printf(Locale.ROOT, "%sqps1=%.0f%n", p, r.qps1);
				pw.printf(Locale.ROOT, "%sqps2=%.0f%n", p, r.qps2);
				pw.printf(Locale.ROOT, "%sagree=%d%n", p, r.agree);
				pw.printf(Locale.ROOT, "%snqueries=%d%n", p, r.nq);
				pw.printf(Locale.ROOT, "%sndocs=%d%n", p, r.ndocs);
			}
		}
		Files.move(tmp, env, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
	}
}
