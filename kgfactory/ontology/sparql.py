"""Read-only SPARQL over a pyoxigraph store: refuse updates, cap rows, time out, serialize results.

pyoxigraph has no cancellation, but it releases the GIL while it evaluates, so a query runs in its own daemon
thread and the caller gets a `SparqlError` at the timeout. The abandoned evaluation finishes (or not) in the
background; at most MAX_RUNAWAY of them may be alive at once, after which new queries are refused until they end.

Before that, the text is bounded and scanned (sparql_guard.py: length, nesting, SERVICE), then parsed and planned
once in a child process (sparql_precheck.py), because a crash inside pyoxigraph would take this process with it.
"""
from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from ..errors import SparqlError
from .sparql_guard import Limits, check as guard_check

MAX_RUNAWAY = 2
EVAL_STACK_BYTES = 16 << 20  # the evaluating thread's stack: twice the parse check's (sparql_child.STACK_BYTES)
_runaway: list[threading.Thread] = []
_stack_lock = threading.Lock()
_UPDATE_OPS = {"INSERT", "DELETE", "LOAD", "CLEAR", "CREATE", "DROP", "COPY", "MOVE", "ADD", "WITH"}
_QUERY_OPS = {"SELECT", "ASK", "CONSTRUCT", "DESCRIBE"}
READ_ONLY_MESSAGE = ("SPARQL is read-only here: UPDATE operations (INSERT, DELETE, LOAD, CLEAR, CREATE, DROP, "
                     "COPY, MOVE, ADD) are refused; the graph changes only through ingest and delete")
MEDIA = {"json": "application/sparql-results+json", "xml": "application/sparql-results+xml", "csv": "text/csv",
         "tsv": "text/tab-separated-values", "turtle": "text/turtle", "ntriples": "application/n-triples",
         "nquads": "application/n-quads", "rdfxml": "application/rdf+xml", "jsonld": "application/ld+json"}
RESULT_FORMATS = ("json", "xml", "csv", "tsv")
GRAPH_FORMATS = ("turtle", "ntriples", "nquads", "rdfxml", "jsonld")  # all five by pyoxigraph's serializers
_XML_LOCAL = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*$")  # RDF/XML splits a predicate IRI into namespace + this
XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
RDF_LANGSTRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"


def operation(query: str) -> str:
    """The query form's keyword (SELECT, ASK, ..., or an update keyword), past the prologue and comments."""
    s = re.sub(r"<[^<>\s]*>", "<>", query)  # IRIs may hold '#'
    s = re.sub(r"\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'", "''", s)
    s = re.sub(r"#[^\n]*", " ", s)
    s = re.sub(r"(?is)^\s*((PREFIX\s+[^\s:]*:\s*<>|BASE\s+<>)\s*)*", "", s)
    m = re.match(r"\s*([A-Za-z]+)", s)
    return m.group(1).upper() if m else ""


@dataclass
class SparqlResult:
    """A capped, fully read result. `rows` hold pyoxigraph terms (None for unbound)."""

    kind: str  # select | ask | construct | describe
    variables: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    boolean: bool | None = None
    triples: list[Any] = field(default_factory=list)
    truncated: bool = False
    elapsed_ms: float = 0.0
    prefixes: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.triples) if self.kind in ("construct", "describe") else len(self.rows)

    def bindings(self) -> list[dict[str, str]]:
        """Rows as {variable: plain string value}, unbound variables left out (for tables and tests)."""
        return [{v: t.value for v, t in zip(self.variables, row) if t is not None} for row in self.rows]

    def serialize(self, fmt: str) -> tuple[bytes, str]:
        """(content, media type). SELECT/ASK: json, xml, csv, tsv; CONSTRUCT/DESCRIBE: turtle, ntriples, nquads
        (the triples in the default graph), rdfxml, jsonld (expanded JSON-LD)."""
        fmt = fmt.lower()
        graph_kind = self.kind in ("construct", "describe")
        allowed = GRAPH_FORMATS if graph_kind else RESULT_FORMATS
        if fmt not in allowed:
            raise SparqlError(f"a {self.kind.upper()} result can be given as {', '.join(allowed)}, not {fmt!r}")
        if graph_kind:
            import pyoxigraph as ox

            rdf_fmt = {"turtle": ox.RdfFormat.TURTLE, "ntriples": ox.RdfFormat.N_TRIPLES,
                       "nquads": ox.RdfFormat.N_QUADS, "rdfxml": ox.RdfFormat.RDF_XML,
                       "jsonld": ox.RdfFormat.JSON_LD}[fmt]
            used = dict(self.prefixes) if fmt in ("turtle", "rdfxml") else None
            bad = next((t.predicate.value for t in self.triples if not _XML_LOCAL.search(t.predicate.value)), None)
            if fmt == "rdfxml" and bad is not None:  # pyoxigraph would write an unparsable element name
                raise SparqlError(f"RDF/XML cannot write the predicate <{bad}> (an XML element name must end it); "
                                  f"ask for Turtle, N-Triples or JSON-LD")
            out = ox.serialize(self.triples, format=rdf_fmt, prefixes=used)
            assert out is not None  # with no output file, serialize returns the bytes (its stub says bytes | None)
            return out, MEDIA[fmt]
        body = {"json": self._json, "xml": self._xml, "csv": self._csv, "tsv": self._tsv}[fmt]()
        return body.encode("utf-8"), MEDIA[fmt]

    # -- SPARQL 1.1 results formats ----------------------------------------------------------------
    def _json(self) -> str:
        if self.kind == "ask":
            return json.dumps({"head": {}, "boolean": bool(self.boolean)})
        rows = [{v: _json_term(t) for v, t in zip(self.variables, row) if t is not None} for row in self.rows]
        return json.dumps({"head": {"vars": self.variables}, "results": {"bindings": rows}}, ensure_ascii=False)

    def _xml(self) -> str:
        out = ['<?xml version="1.0"?>', '<sparql xmlns="http://www.w3.org/2005/sparql-results#">', "<head>"]
        if self.kind == "ask":
            out += ["</head>", f"<boolean>{'true' if self.boolean else 'false'}</boolean>", "</sparql>"]
            return "\n".join(out)
        out += [f"<variable name={quoteattr(v)}/>" for v in self.variables]
        out += ["</head>", "<results>"]
        for row in self.rows:
            out.append("<result>")
            for v, t in zip(self.variables, row):
                if t is not None:
                    out.append(f"<binding name={quoteattr(v)}>{_xml_term(t)}</binding>")
            out.append("</result>")
        out += ["</results>", "</sparql>"]
        return "\n".join(out)

    def _csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        if self.kind == "ask":
            w.writerow(["boolean"])
            w.writerow(["true" if self.boolean else "false"])
            return buf.getvalue()
        w.writerow(self.variables)
        for row in self.rows:
            w.writerow(["" if t is None else (("_:" + t.value) if _kind(t) == "bnode" else t.value) for t in row])
        return buf.getvalue()

    def _tsv(self) -> str:
        if self.kind == "ask":
            return "?boolean\n" + ("true" if self.boolean else "false") + "\n"
        lines = ["\t".join("?" + v for v in self.variables)]
        lines += ["\t".join("" if t is None else str(t) for t in row) for row in self.rows]
        return "\n".join(lines) + "\n"


def _kind(t) -> str:
    import pyoxigraph as ox

    if isinstance(t, ox.NamedNode):
        return "uri"
    if isinstance(t, ox.BlankNode):
        return "bnode"
    if isinstance(t, ox.Literal):
        return "literal"
    return "triple"


def _json_term(t) -> dict:
    k = _kind(t)
    if k in ("uri", "bnode"):
        return {"type": k, "value": t.value}
    if k == "triple":
        return {"type": "triple", "value": {"subject": _json_term(t.subject), "predicate": _json_term(t.predicate),
                                            "object": _json_term(t.object)}}
    out = {"type": "literal", "value": t.value}
    if t.language:
        out["xml:lang"] = t.language
    elif t.datatype.value != XSD_STRING:
        out["datatype"] = t.datatype.value
    return out


def _xml_term(t) -> str:
    k = _kind(t)
    if k == "uri":
        return f"<uri>{escape(t.value)}</uri>"
    if k == "bnode":
        return f"<bnode>{escape(t.value)}</bnode>"
    if k == "triple":
        return f"<literal>{escape(str(t))}</literal>"
    if t.language:
        return f"<literal xml:lang={quoteattr(t.language)}>{escape(t.value)}</literal>"
    if t.datatype.value != XSD_STRING:
        return f"<literal datatype={quoteattr(t.datatype.value)}>{escape(t.value)}</literal>"
    return f"<literal>{escape(t.value)}</literal>"


def run_query(store, sparql: str, *, default_graph=None, named_graphs=None, union: bool = False,
              prefixes: dict[str, str] | None = None, timeout_s: float = 10.0, max_rows: int = 10000,
              limits: Limits | None = None) -> SparqlResult:
    """Evaluate a read-only query on `store`; raise SparqlError for updates, syntax errors and timeouts, and
    SparqlRefusedError for what `limits` refuse (too long, too deep, SERVICE, crashed or slow to plan)."""
    if not sparql or not sparql.strip():
        raise SparqlError("empty SPARQL query")
    limits = limits or Limits()
    services = guard_check(sparql, limits)
    op = operation(sparql)
    if op in _UPDATE_OPS:
        raise SparqlError(READ_ONLY_MESSAGE)
    if max_rows < 1:
        raise SparqlError(f"max_rows must be at least 1, got {max_rows}")
    if timeout_s <= 0:
        raise SparqlError(f"timeout must be positive, got {timeout_s}")
    _runaway[:] = [t for t in _runaway if t.is_alive()]
    if len(_runaway) >= MAX_RUNAWAY:
        raise SparqlError(f"{len(_runaway)} earlier queries that timed out are still being evaluated; "
                          f"try again when they finish")
    if limits.check_timeout_s > 0:
        from .sparql_precheck import checker

        checker().check(sparql, prefixes=prefixes, timeout_s=limits.check_timeout_s, wait_s=timeout_s,
                        services=services)
    kwargs: dict[str, Any] = {"prefixes": prefixes or None}
    if union:
        kwargs["use_default_graph_as_union"] = True
    else:
        kwargs["default_graph"] = default_graph
        kwargs["named_graphs"] = named_graphs
    box: dict[str, Any] = {}
    deadline = time.monotonic() + timeout_s

    def work() -> None:
        try:
            box["result"] = _evaluate(store, sparql, op, kwargs, max_rows, deadline)
        except BaseException as e:  # handed to the caller's thread, without this thread's pyoxigraph objects
            traceback.clear_frames(e.__traceback__)  # (they may only be dropped on the thread that made them)
            box["error"] = e

    t0 = time.perf_counter()
    with _stack_lock:  # a known stack, larger than the parse check had, for pyoxigraph's recursion
        old = threading.stack_size(EVAL_STACK_BYTES)
        try:
            th = threading.Thread(target=work, name="kgf-sparql", daemon=True)
            th.start()
        finally:
            threading.stack_size(old)
    th.join(timeout_s)
    if th.is_alive() or isinstance(box.get("error"), TimeoutError):
        if th.is_alive():
            _runaway.append(th)
        raise SparqlError(f"SPARQL query timed out after {timeout_s:g} s (raise the timeout, or narrow the query)")
    err = box.get("error")
    if err is not None:
        if isinstance(err, SyntaxError):
            if re.search(r"(?i)\b(INSERT|DELETE|LOAD|CLEAR|DROP|COPY|MOVE)\b", sparql):
                raise SparqlError(READ_ONLY_MESSAGE) from err
            raise SparqlError(f"SPARQL syntax error: {err}") from err
        if isinstance(err, SparqlError):
            raise err
        raise SparqlError(f"SPARQL evaluation failed: {err}") from err
    res: SparqlResult = box["result"]
    res.elapsed_ms = (time.perf_counter() - t0) * 1000
    res.prefixes = dict(prefixes or {})
    return res


def _evaluate(store, sparql: str, op: str, kwargs: dict, max_rows: int, deadline: float) -> SparqlResult:
    import pyoxigraph as ox

    res = store.query(sparql, **kwargs)
    if isinstance(res, ox.QueryBoolean):
        return SparqlResult(kind="ask", boolean=bool(res))
    if isinstance(res, ox.QueryTriples):
        out = SparqlResult(kind="describe" if op == "DESCRIBE" else "construct")
        out.triples.extend(_capped(res, out, max_rows, deadline))
        return out
    out = SparqlResult(kind="select", variables=[v.value for v in res.variables])
    width = len(out.variables)
    out.rows.extend([sol[i] for i in range(width)] for sol in _capped(res, out, max_rows, deadline))
    return out


def _capped(items, out: "SparqlResult", max_rows: int, deadline: float):
    """At most max_rows items (setting out.truncated when there were more), checking the deadline as it goes."""
    for n, item in enumerate(items):
        if n >= max_rows:
            out.truncated = True
            return
        if n % 1000 == 0 and time.monotonic() > deadline:
            raise TimeoutError
        yield item
