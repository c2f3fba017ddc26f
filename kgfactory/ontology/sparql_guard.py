"""What a SPARQL query may contain, decided on tokens before pyoxigraph parses it.

Two things go wrong inside pyoxigraph and cannot be stopped once it has the text: its parser recurses per
nesting level and overflows the stack, killing the process (3,000 `{` segfault it), and `SERVICE <iri>` makes
the server itself send an HTTP request anywhere (SSRF; the remote body even comes back in the error). So the
text is scanned first: length and nesting depth of { ( [ are bounded, and federated queries are refused unless
every SERVICE names, as a full <IRI>, an endpoint the operator allow-listed (KGF_SPARQL_SERVICE_ALLOW).

The scanner follows SPARQL's lexical rules (# comments, '...' "..." '''...''' \"\"\"...\"\"\" strings with
escapes, <IRI>s, ?variables, prefixed names with their \\-escapes) and errs towards refusing where it could
disagree with pyoxigraph: pyoxigraph matches keywords without a word boundary (`SERVICE:x` is SERVICE with
the endpoint `:x`; `true.SERVICE<...>` is a literal, a dot and SERVICE), so any word or prefix that merely
contains "service" counts as one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import SparqlRefusedError

_PN = "A-Za-z0-9_\u00b7-\U0010ffff"  # name characters, non-ASCII ones included (conservative: longer runs)
_TOKEN = re.compile(
    r"(?P<ws>[ \t\r\n]+)"
    r"|(?P<comment>#[^\r\n]*)"
    r"|(?P<iri><(?:[^<>\"{}|^`\\\x00-\x20]|\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8})*>)"
    r"|(?P<string>'''(?:[^'\\]|\\[\s\S]|'(?!''))*'''|\"\"\"(?:[^\"\\]|\\[\s\S]|\"(?!\"\"))*\"\"\""
    r"|'(?:[^'\\\r\n]|\\[^\r\n])*'|\"(?:[^\"\\\r\n]|\\[^\r\n])*\")"
    rf"|(?P<var>[?$][{_PN}]+)"
    rf"|(?P<name>[{_PN}:@](?:[{_PN}:.%\-]|\\[\s\S])*)"
    r"|(?P<punct>[{}()\[\]])"
    r"|(?P<other>[\s\S])"
)
_OPEN, _CLOSE = "{([", "})]"


@dataclass(frozen=True)
class Limits:
    """The operator's bounds on analyst SPARQL (settings KGF_SPARQL_*)."""

    max_chars: int = 50000
    max_depth: int = 64
    service_allow: frozenset[str] = field(default_factory=frozenset)
    check_timeout_s: float = 2.0

    @classmethod
    def from_settings(cls, s) -> "Limits":
        return cls(max_chars=s.sparql_max_chars, max_depth=s.sparql_max_depth,
                   service_allow=frozenset(s.sparql_service_allow), check_timeout_s=s.sparql_check_timeout_s)


@dataclass(frozen=True)
class Token:
    kind: str  # comment, iri, string, var, name, punct, other
    text: str
    start: int


def tokens(sparql: str) -> list[Token]:
    """Every token but whitespace; a quote that opens no complete string is refused (pyoxigraph would too)."""
    out: list[Token] = []
    for m in _TOKEN.finditer(sparql):
        kind, text = m.lastgroup, m.group()
        assert kind is not None  # every alternative of _TOKEN is a named group (the last one takes any character)
        if kind == "ws":
            continue
        if kind == "other" and text in "'\"":
            line = sparql.count("\n", 0, m.start()) + 1
            raise SparqlRefusedError(f"SPARQL syntax error: unterminated string at line {line}", "sparql_error")
        out.append(Token(kind, text, m.start()))
    return out


def check(sparql: str, limits: Limits) -> list[tuple[int, int]]:
    """Refuse (SparqlRefusedError, saying why) a query that is too long, nested too deep, or federated to an
    endpoint that is not allow-listed. Returns the (start, end) offsets of the allow-listed SERVICE IRIs."""
    if len(sparql) > limits.max_chars:
        raise SparqlRefusedError(f"the query is {len(sparql)} characters long; the limit is {limits.max_chars} "
                                 "(KGF_SPARQL_MAX_CHARS)", "query_too_large")
    code = [t for t in tokens(sparql) if t.kind != "comment"]
    depth = 0
    for t in code:
        if t.kind == "punct":
            depth = depth + 1 if t.text in _OPEN else max(depth - 1, 0)
            if depth > limits.max_depth:
                raise SparqlRefusedError(f"the query nests {{ ( [ more than {limits.max_depth} deep "
                                         "(KGF_SPARQL_MAX_DEPTH)", "query_too_deep")
    return _services(code, limits.service_allow)


def _services(code: list[Token], allow: frozenset[str]) -> list[tuple[int, int]]:
    allowed = []
    for i, t in enumerate(code):
        if t.kind != "name" or "service" not in _keyword_part(t.text).lower():
            continue
        keyword = t.text.upper() == "SERVICE"
        j = i + 1
        if keyword and j < len(code) and code[j].kind == "name" and code[j].text.upper() == "SILENT":
            j += 1
        end = code[j] if j < len(code) else None
        if keyword and end is not None and end.kind == "iri" and end.text[1:-1] in allow and "\\" not in end.text:
            allowed.append((end.start, end.start + len(end.text)))
            continue
        hint = (f"; allowed endpoints, written as full <IRI>s: {', '.join(sorted(allow))}" if allow else
                "; no endpoint is allowed (KGF_SPARQL_SERVICE_ALLOW is empty)")
        if not keyword:
            raise SparqlRefusedError(f"federated queries (SERVICE) are not allowed, and {t.text!r} reads as SERVICE "
                                     f"to the SPARQL parser{hint}", "service_refused")
        shown = end.text if end is not None and end.kind == "iri" else "an endpoint that is not a full <IRI>"
        raise SparqlRefusedError(f"federated queries (SERVICE) are not allowed: the server does not fetch {shown} "
                                 f"on a query's behalf{hint}", "service_refused")
    return allowed


def _keyword_part(name: str) -> str:
    """The part of a name that pyoxigraph could read as a keyword: all of a plain word, the prefix of a
    prefixed name (`SERVICE:x` is SERVICE + `:x`). A prefixed name's local part is a name, never a keyword."""
    return name.split(":", 1)[0]
