#!/usr/bin/env python3
"""sphinxprep.py: the Python side of the Sphinx peer (bench/peers/sphinx/run.sh).

  sphinxprep.py docs OUT.xml [--limit N] DIR...
      the xmlpipe2 stream for Sphinx's indexer: every .md/.txt file under the
      DIRs (hidden entries left out; sorted recursive walk by bytes, folders
      and files interleaved, as sousuo-index walks), document id = 1-based
      index, the path as the string attribute `path`, the whole file text as
      the full-text field `body`, and the sentinel word in the field `alldocs`
      (see translate).  Prints the number of documents.
  sphinxprep.py queries QUERIES OUT.tsv [--limit N]
      per query line: query TAB its translation to Sphinx's extended syntax
      (empty if it cannot be translated).
  sphinxprep.py report SEQ.tsv EXPECTED.tsv HITS.tsv
      joins sqlload's per-query totals with expected-hits.tsv: writes
      query TAB expected TAB sphinx to HITS.tsv, prints "agree=N nqueries=M".
  sphinxprep.py translate QUERY...
      prints each translation (for trying the rule by hand).

The translation rule is in README.md beside this file.
"""
import os
import re
import sys
import unicodedata

# Written into the alldocs field of every document: a query branch that has
# only NOT terms (sousuo: "-x" is every document without x; Sphinx refuses a
# query without a positive term) becomes "(SENTINEL -x)".
SENTINEL = "sousuoalldocs"


# ---------------------------------------------------------------- documents

def walk(root):
    """Files under root in sousuo-index's order: scandir sorted by name bytes,
    hidden entries skipped, folders entered where they sort."""
    try:
        names = sorted(os.listdir(os.fsencode(root)))
    except OSError as e:
        print("sphinxprep: cannot open folder %s: %s" % (root, e), file=sys.stderr)
        return
    for n in names:
        if n.startswith(b"."):
            continue
        p = os.path.join(os.fsencode(root), n)
        if os.path.isdir(p):
            yield from walk(p)
        elif n.endswith(b".md") or n.endswith(b".txt"):
            yield p


# what XML 1.0 cannot hold: C0 controls other than tab/LF/CR, surrogates,
# U+FFFE and U+FFFF
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(s):
    """Escapes for XML character data; what XML cannot hold becomes a space."""
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _NOT_XML.sub(" ", s)


def cmd_docs(args):
    limit = None
    if len(args) >= 2 and args[1] == "--limit":
        limit = int(args[2])
        del args[1:3]
    out_path, dirs = args[0], args[1:]
    n = 0
    with open(out_path, "w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="utf-8"?>\n<sphinx:docset>\n')
        for d in dirs:
            base = os.path.abspath(d)
            for p in walk(d):
                if limit is not None and n >= limit:
                    break
                try:
                    with open(p, "rb") as f:
                        raw = f.read()
                    text = raw.decode("utf-8")
                except (OSError, UnicodeDecodeError) as e:
                    # sousuo-index skips unreadable and invalid-UTF-8 files too
                    print("sphinxprep: skipped %r: %s" % (p, e), file=sys.stderr)
                    continue
                if not text.strip() or "\0" in text:
                    print("sphinxprep: skipped %r: empty or binary" % p, file=sys.stderr)
                    continue
                n += 1
                rel = os.path.relpath(os.fsdecode(p), base)
                out.write('<sphinx:document id="%d">\n<path>%s</path>\n<alldocs>%s</alldocs>\n<body>%s</body>\n</sphinx:document>\n'
                          % (n, xml_text(rel), SENTINEL, xml_text(text)))
        out.write("</sphinx:docset>\n")
    print(n)


# ---------------------------------------------------------- query translation

def is_cjk(cp):
    # the CJK ranges of sousuo's indexer/text.h, which are also ngram_chars
    return (0x3400 <= cp <= 0x4DBF or 0x4E00 <= cp <= 0x9FFF or 0xF900 <= cp <= 0xFAFF
            or 0x20000 <= cp <= 0x2FFFF or cp == 0x3007)


def tokens(term):
    """sousuo's tokens of one query term (NFKC + case folding; a CJK character
    is a token, a run of letters/digits/marks is a word, anything else
    separates)."""
    text = unicodedata.normalize("NFKC", term).casefold()
    toks, word = [], []
    for ch in text:
        cp = ord(ch)
        if is_cjk(cp):
            if word:
                toks.append("".join(word))
                word = []
            toks.append(ch)
        elif unicodedata.category(ch)[0] in "LNM":
            word.append(ch)
        else:
            if word:
                toks.append("".join(word))
                word = []
    if word:
        toks.append("".join(word))
    return toks


class Untranslatable(Exception):
    pass


SPECIAL = set('()|-!@~"&/^$=<\\\'')


def sphinx_word(tok):
    # Words are letters/digits only, so nothing needs escaping in practice;
    # escape Sphinx's operator characters anyway should one slip through.
    return "".join("\\" + c if c in SPECIAL else c for c in tok)


def term_out(toks):
    if not toks:
        return None
    if len(toks) == 1:
        return sphinx_word(toks[0])
    return '"' + " ".join(sphinx_word(t) for t in toks) + '"'


class Parser:
    """sousuo's query language as far as the benchmark needs it: terms (AND),
    |, -, ( ), "phrases".  Field filters (title:, category:, date, sort:) have
    no Sphinx counterpart over this index and make a query untranslatable."""

    def __init__(self, q):
        self.q, self.i = q, 0

    def peek(self):
        while self.i < len(self.q) and self.q[self.i].isspace():
            self.i += 1
        return self.q[self.i] if self.i < len(self.q) else ""

    def parse(self):
        node = self.expr()
        if self.peek():
            raise Untranslatable("unexpected %r" % self.peek())
        return node

    def expr(self):
        branches = [self.andseq()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.andseq())
        return ("or", branches) if len(branches) > 1 else branches[0]

    def andseq(self):
        units = []
        while True:
            c = self.peek()
            if c in ("", "|", ")"):
                break
            units.append(self.unit())
        if not units:
            raise Untranslatable("empty operand")
        return ("and", units) if len(units) > 1 else units[0]

    def unit(self):
        c = self.peek()
        if c == "-":
            self.i += 1
            if self.i >= len(self.q) or self.q[self.i].isspace() or self.q[self.i] == "-":
                raise Untranslatable("'-' must stand directly before its operand")
            return ("not", self.unit())
        if c == "(":
            self.i += 1
            node = self.expr()
            if self.peek() != ")":
                raise Untranslatable("unbalanced parentheses")
            self.i += 1
            return node
        if c == '"':
            j = self.q.find('"', self.i + 1)
            if j < 0:
                raise Untranslatable("unbalanced quotes")
            toks = tokens(self.q[self.i + 1:j])
            self.i = j + 1
            if not toks:
                raise Untranslatable("empty phrase")
            return ("term", toks)
        j = self.i
        while j < len(self.q) and not self.q[j].isspace() and self.q[j] not in '()|"':
            j += 1
        chunk = self.q[self.i:j]
        self.i = j
        low = chunk.lower()
        if low.startswith(("title:", "category:", "sort:", "date")):
            raise Untranslatable("field filter %r" % chunk)
        toks = tokens(chunk)
        if not toks:
            raise Untranslatable("term without tokens %r" % chunk)
        return ("term", toks)


def positive(node):
    return node[0] != "not"


def emit(node, nested):
    """Sphinx extended syntax for node; nested: node is an operand of AND/NOT,
    so an OR must be parenthesized (in Sphinx, | binds tighter than AND)."""
    kind = node[0]
    if kind == "term":
        return term_out(node[1])
    if kind == "not":
        inner = node[1]
        s = emit(inner, True)
        if inner[0] == "and":
            s = "(" + s + ")"
        return "-" + s
    if kind == "and":
        parts = [emit(u, True) for u in node[1]]
        if not any(positive(u) for u in node[1]):
            parts.insert(0, SENTINEL)
        return " ".join(parts)
    if kind == "or":
        parts = []
        for b in node[1]:
            s = emit(b, True)
            if b[0] == "not":          # a branch that is only "-x"
                s = SENTINEL + " " + s
            if b[0] in ("and", "not"):
                s = "(" + s + ")"
            parts.append(s)
        s = " | ".join(parts)
        return "(" + s + ")" if nested else s
    raise AssertionError(kind)


def translate(q):
    node = Parser(q).parse()
    if node[0] == "not":
        return SENTINEL + " " + emit(node, False)
    return emit(node, False)


def cmd_queries(args):
    limit = None
    if len(args) >= 3 and args[2] == "--limit":
        limit = int(args[3])
    n = bad = 0
    with open(args[0], encoding="utf-8") as f, open(args[1], "w", encoding="utf-8") as out:
        for line in f:
            q = line.rstrip("\n")
            if limit is not None and n >= limit:
                break
            n += 1
            try:
                t = translate(q)
            except Untranslatable as e:
                print("sphinxprep: not translated: %s (%s)" % (q, e), file=sys.stderr)
                t, bad = "", bad + 1
            out.write("%s\t%s\n" % (q, t))
    print("%d %d" % (n, bad))


def cmd_translate(args):
    for q in args:
        try:
            print(translate(q))
        except Untranslatable as e:
            print("(not translated: %s)" % e)


# ------------------------------------------------------------------- report

def cmd_report(args):
    seq_path, exp_path, hits_path = args
    expected = []
    with open(exp_path, encoding="utf-8") as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            expected.append((p[0], int(p[1]), p[2] if len(p) > 2 else ""))
    agree = n = 0
    by_class = {}
    with open(seq_path, encoding="utf-8") as f, open(hits_path, "w", encoding="utf-8") as out:
        for line in f:
            # sqlload seq: index TAB median_us TAB total TAB total_found TAB query
            p = line.rstrip("\n").split("\t")
            i, found = int(p[0]), int(p[3])
            q, exp, cls = expected[i]
            out.write("%s\t%d\t%d\n" % (q, exp, found))
            n += 1
            ok = exp == found
            agree += ok
            a = by_class.setdefault(cls, [0, 0])
            a[0] += ok
            a[1] += 1
    print("agree=%d nqueries=%d %s" % (agree, n, " ".join(
        "%s=%d/%d" % (k, v[0], v[1]) for k, v in sorted(by_class.items()))))


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    cmd, args = sys.argv[1], sys.argv[2:]
    {"docs": cmd_docs, "queries": cmd_queries, "report": cmd_report,
     "translate": cmd_translate}[cmd](args)


if __name__ == "__main__":
    main()
