"""What an analyst's read-only Cypher may contain, decided on tokens before the engine sees the text.

A regex over raw text cannot tell `LOAD /* c */ CSV` from a comment or a string, so the query is tokenized
(// and /* */ comments, '...' and "..." strings with backslash escapes, `backtick` names, numbers, words,
punctuation) and the checks run on the tokens. Where the tokenizer and FalkorDB's parser could disagree it
errs towards refusing: comments end at the first line break of any kind, unterminated strings, comments and
names are refused, and a keyword counts wherever it is not plainly a property key (`n.set`), a label
(`:Create`) or a map key (`{delete: 1}`).

Refused: write clauses (CREATE, MERGE, DELETE, DETACH, SET, REMOVE, DROP, FOREACH), `CALL {...} IN
TRANSACTIONS`, LOAD CSV in any spelling (FalkorDB's read-only mode allows it, and it reads files and URLs), CALL
of a procedure not on READ_PROCEDURES, text longer than max_chars, and nesting deeper than max_depth.

Why nesting is bounded so low: FalkorDB's parser is exponential in nesting. Measured (embedded FalkorDB, one
query): `RETURN [[...[1]...]]` 16 deep 0.2 s, 20 deep 4 s, 22 deep > 8 s, and the engine's query timeout does
not cover parsing; `NOT NOT ... true` and `- - ... 1` behave the same (200 NOTs ran > 10 s). Cost grows about
2x per level for every token inside, so besides the depth the sum over tokens of 2**level is capped
(MAX_PARSE_COST), where a level is a bracket ( [ {, a CASE ... END, or a prefix NOT / unary minus or plus.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import CypherRefusedError

# procedures FalkorDB lists as READ (CALL dbms.procedures()); the WRITE ones (db.idx.fulltext.createNodeIndex,
# db.idx.fulltext.drop) and anything unknown are refused
READ_PROCEDURES = (
    "db.labels", "db.relationshipTypes", "db.propertyKeys", "db.indexes", "db.constraints", "db.meta.stats",
    "dbms.procedures", "dbms.functions",
    "db.idx.fulltext.queryNodes", "db.idx.fulltext.queryRelationships",
    "db.idx.vector.queryNodes", "db.idx.vector.queryRelationships",
    "algo.pageRank", "algo.BFS", "algo.WCC", "algo.betweenness", "algo.labelPropagation", "algo.MSF",
    "algo.SPpaths", "algo.SSpaths",
)
_READ_PROCEDURES = frozenset(p.lower() for p in READ_PROCEDURES)
WRITE_WORDS = frozenset({"create", "merge", "delete", "detach", "set", "remove", "drop", "foreach"})
# sum over tokens of 2**level; measured worst shapes at this cost: under 1 s of FalkorDB parse time
MAX_PARSE_COST = 1 << 16

_LINE_BREAKS = "\n\r\x0b\x0c\x85\u2028\u2029"
_TOKEN = re.compile(
    r"(?P<ws>\s+)"
    rf"|(?P<comment>//[^{_LINE_BREAKS}]*|/\*[\s\S]*?\*/)"
    r"|(?P<string>'(?:[^'\\]|\\[\s\S])*'|\"(?:[^\"\\]|\\[\s\S])*\")"
    r"|(?P<name>`[^`]*`)"
    r"|(?P<param>\$(?:[A-Za-z0-9_]+|`[^`]*`))"
    r"|(?P<number>0[xX][0-9A-Fa-f]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op><>|<=|>=|=~|<-|->|\.\.|[-+*/%^=<>])"
    r"|(?P<punct>[()\[\]{},.:;|])"
    r"|(?P<other>[\s\S])"
)
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {v: k for k, v in _OPEN.items()}
# words after which a '-' or '+' starts an operand rather than continuing one
_KEYWORDS = frozenset("""match optional where return with unwind as and or xor not in is case when then else end
    order by skip limit distinct contains starts ends yield union all call asc desc ascending descending on
    exists any none single reduce""".split())
_SEPARATORS = frozenset({"and", "or", "xor", "when", "then", "else", "return", "with", "where", "match",
                         "optional", "unwind", "order", "skip", "limit", "yield", "union", "call"})
_BINARY_WORDS = frozenset({"in", "is", "contains", "starts", "ends"})


@dataclass(frozen=True)
class Token:
    kind: str  # comment, string, name (backticked), param, number, word, op, punct, other
    text: str
    start: int
    end: int


def tokens(cypher: str) -> list[Token]:
    """Every token but whitespace, comments included; refuses unterminated strings, comments and names."""
    out: list[Token] = []
    for m in _TOKEN.finditer(cypher):
        kind, text = m.lastgroup, m.group()
        assert kind is not None  # every alternative of _TOKEN is a named group (the last one takes any character)
        if kind == "ws":
            continue
        if kind == "other" and text in "'\"`" or text == "/" and cypher.startswith("/*", m.start()):
            what = {"'": "string", '"': "string", "`": "backticked name", "/": "/* comment"}[text]
            raise CypherRefusedError(f"unterminated {what} at offset {m.start()}", "bad_query")
        out.append(Token(kind, text, m.start(), m.end()))
    return out


def _exempt(code: list[Token], i: int) -> bool:
    """A keyword-looking word that is plainly a property key (n.set), a label (:Create) or a map key
    ({delete: 1}): the punctuation touches the word, and for a property the dot touches a name before it."""
    t = code[i]
    prev = code[i - 1] if i else None
    nxt = code[i + 1] if i + 1 < len(code) else None
    if nxt is not None and nxt.text == ":" and nxt.start == t.end:
        return True
    if prev is None or prev.end != t.start:
        return False
    if prev.text == ":":
        return True
    if prev.text == "." and i >= 2:
        owner = code[i - 2]
        return owner.end == prev.start and (owner.kind in ("word", "name", "param") or owner.text in ")]}")
    return False


def _procedure(code: list[Token], i: int) -> str | None:
    """The dotted name after CALL at code[i] (None when what follows is not a name)."""
    parts, j = [], i + 1
    while j < len(code) and code[j].kind in ("word", "name"):
        parts.append(code[j].text.strip("`"))
        if j + 1 < len(code) and code[j + 1].text == ".":
            j += 2
            continue
        break
    return ".".join(parts) if parts else None


def write_clause(cypher: str) -> str | None:
    """What makes this query not a plain read (e.g. 'SET', 'LOAD CSV', 'CALL db.idx.fulltext.drop'), or None."""
    code = [t for t in tokens(cypher) if t.kind != "comment"]
    for i, t in enumerate(code):
        if t.kind != "word":
            continue
        w = t.text.lower()
        if w not in WRITE_WORDS and w not in ("load", "call", "transactions") or _exempt(code, i):
            continue
        if w in WRITE_WORDS:
            return t.text.upper()
        if w == "load":
            return "LOAD CSV"
        if w == "transactions":
            return "CALL { ... } IN TRANSACTIONS"
        nxt = code[i + 1] if i + 1 < len(code) else None
        if nxt is not None and nxt.text == "{":
            continue  # a subquery: its clauses are checked as tokens like the rest
        name = _procedure(code, i)
        if name is None or name.lower() not in _READ_PROCEDURES:
            return f"CALL {name or '(no procedure name)'}"
    return None


def is_write(cypher: str) -> bool:
    """True when the query holds a write clause, LOAD CSV or a call of a procedure that is not a read.
    Unparseable text (an unterminated string or comment) counts as a write: it is refused."""
    try:
        return write_clause(cypher) is not None
    except CypherRefusedError:
        return True


def nesting(code: list[Token], max_depth: int) -> tuple[int, int]:
    """(deepest level, parse cost) over the non-comment tokens; stops at the first level past max_depth."""
    frames: list[list] = [[None, []]]  # [opener, open prefix operators ('not' / 'neg')]
    deepest = cost = 0
    prev: Token | None = None
    for t in code:
        low = t.text.lower() if t.kind == "word" else t.text
        level = len(frames) - 1 + sum(len(f[1]) for f in frames)
        cost += 1 << min(level, 62)
        top = frames[-1]
        if t.kind == "punct" and t.text in _OPEN or t.kind == "word" and low == "case":
            frames.append([t.text if t.kind == "punct" else "case", []])
        elif t.kind == "punct" and t.text in _CLOSE:
            while len(frames) > 1 and frames[-1][0] != _CLOSE[t.text]:
                frames.pop()
            if len(frames) > 1:
                frames.pop()
        elif t.kind == "word" and low == "end":
            while len(frames) > 1 and frames.pop()[0] != "case":
                pass
        elif t.kind == "word" and low == "not":
            top[1].append("not")
        elif t.kind == "op" and t.text in "-+" and not _operand(prev):
            top[1].append("neg")
        elif t.kind == "op" or t.kind == "word" and low in _BINARY_WORDS:
            while top[1] and top[1][-1] == "neg":
                top[1].pop()
        elif t.text in (",", ";", "|") or t.kind == "word" and low in _SEPARATORS:
            top[1].clear()
        level = len(frames) - 1 + sum(len(f[1]) for f in frames)
        deepest = max(deepest, level)
        if deepest > max_depth:
            break
        prev = t
    return deepest, cost


def _operand(t: Token | None) -> bool:
    if t is None:
        return False
    if t.kind == "word":
        return t.text.lower() not in _KEYWORDS
    return t.kind in ("string", "name", "param", "number") or t.text in (")", "]", "}")


def check(cypher: str, *, max_chars: int = 20000, max_depth: int = 12) -> None:
    """Refuse (CypherRefusedError, with the reason) what an analyst's read-only query may not be or do."""
    if len(cypher) > max_chars:
        raise CypherRefusedError(f"the query is {len(cypher)} characters long; the limit is {max_chars} "
                                 "(KGF_CYPHER_MAX_CHARS)", "query_too_large")
    what = write_clause(cypher)
    if what == "LOAD CSV":
        raise CypherRefusedError("LOAD CSV is not allowed: it would make the server read files and URLs, and "
                                 "analyst Cypher is read-only over the graph", "load_csv_refused")
    if what is not None and what.startswith("CALL ") and "TRANSACTIONS" not in what:
        raise CypherRefusedError(f"{what} is not allowed: analyst Cypher is read-only and may call only these "
                                 f"procedures: {', '.join(READ_PROCEDURES)}", "write_refused")
    if what is not None:
        raise CypherRefusedError(f"{what} is a write and analyst Cypher is read-only (refused: CREATE, MERGE, SET, "
                                 "DELETE, DETACH, REMOVE, DROP, FOREACH, CALL {...} IN TRANSACTIONS, LOAD CSV)",
                                 "write_refused")
    deepest, cost = nesting([t for t in tokens(cypher) if t.kind != "comment"], max_depth)
    if deepest > max_depth:
        raise CypherRefusedError(f"the query nests more than {max_depth} levels deep (brackets, CASE, NOT, unary "
                                 "minus); the limit is KGF_CYPHER_MAX_DEPTH: the graph engine's parser slows "
                                 "down exponentially with nesting", "query_too_deep")
    if cost > MAX_PARSE_COST:
        raise CypherRefusedError(f"the query is too complex to parse safely (nesting-weighted size {cost}, limit "
                                 f"{MAX_PARSE_COST}): flatten nested lists, maps or NOT chains, or pass values "
                                 "as parameters", "query_too_complex")
