"""SPARQL benchmark over the RDF view of the MuSiQue knowledge graph: pyoxigraph vs rdflib's memory store.

Measures the time to build the RDF view from the graph store, then the latency of three queries (a type query
through the class hierarchy, a two-hop property path, a provenance query back to documents), each checked to give
the same number of rows on both engines.

    python -m bench.sparql [--kb-dir DIR] [--runs N] [--no-write]

--kb-dir is an ingested MuSiQue data directory (default: the one `python -m bench.retrieval` leaves in
$TMPDIR/kgf-bench-kb/musique); it is copied to a temp dir first, never modified (its graph server replays the
whole AOF on start, which can take long on a busy machine). With --ingest [--limit N], or without a KB dir, the
MuSiQue corpus (or its first N passages) is ingested afresh (the full corpus: about 6-7 minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import bench_data, header, save_json, write_section

PREFIXES = """PREFIX kgf: <https://kgfactory.dev/ontology#>
PREFIX kgfv: <https://kgfactory.dev/vocab#>
PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX prov: <http://www.w3.org/ns/prov#>
PREFIX dcterms: <http://purl.org/dc/terms/>
"""


def queries(hub_name: str, busy_name: str) -> dict[str, str]:
    def lit(name: str) -> str:
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return {
        "type (Organization incl. subclasses, with names)":
            "SELECT ?e ?name WHERE { ?e a kgf:Organization ; rdfs:label ?name }",
        "two-hop path (entities sharing a chunk with the most-mentioned entity: ^kgfv:mentions/kgfv:mentions)":
            f"SELECT DISTINCT ?name WHERE {{ ?a rdfs:label {lit(busy_name)} ; ^kgfv:mentions/kgfv:mentions ?b . "
            f"?b rdfs:label ?name }}",
        "provenance (documents behind one entity's typed relations)":
            f"""SELECT DISTINCT ?p ?title WHERE {{ ?a rdfs:label {lit(hub_name)} .
               ?st rdf:subject ?a ; rdf:predicate ?p ; prov:wasDerivedFrom ?d . ?d a kgfv:Document ; dcterms:title ?title }}""",
    }


def _timed(fn, runs: int) -> tuple[dict, int]:
    n = fn()
    for _ in range(2):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
            "min_ms": round(times[0], 2)}, n


def _ingest(where: Path, limit: int | None) -> Path:
    import json

    from kgfactory.bootstrap import build_services
    from kgfactory.settings import Settings

    data = json.loads((bench_data() / "musique_train_corpus.json").read_text())
    if isinstance(data, dict):
        data = [{"title": t, "text": "".join(s)} for t, s in data.items()]
    if limit:
        data = data[:limit]
    corpus = where / "musique.json"
    corpus.write_text(json.dumps(data))
    svc = build_services(Settings(data_dir=where / "kb"))
    try:
        svc.pipeline.ingest([str(corpus)])
    finally:
        svc.close()
    return where / "kb"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb-dir", type=Path, default=Path(tempfile.gettempdir()) / "kgf-bench-kb" / "musique")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--ingest", action="store_true", help="ingest the corpus afresh instead of copying --kb-dir")
    ap.add_argument("--limit", type=int, default=None, help="with --ingest: the first N passages only")
    ap.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    args = ap.parse_args(argv)

    import pyoxigraph as ox
    import rdflib

    from kgfactory.bootstrap import build_services
    from kgfactory.ontology.rdf_mapping import RdfMapper
    from kgfactory.ontology.rdf_view import RdfView
    from kgfactory.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="kgf-bench-sparql-"))
    try:
        if not args.ingest and (args.kb_dir / "graph").is_dir():
            shutil.copytree(args.kb_dir, tmp / "kb", ignore=shutil.ignore_patterns("rdf", "*.lock"))
            kb, source = tmp / "kb", f"copy of {args.kb_dir}"
        else:
            kb = _ingest(tmp, args.limit)
            source = f"fresh ingest of the first {args.limit} MuSiQue passages" if args.limit else "fresh ingest"
        from kgfactory.graph.falkordb_server import EmbeddedFalkorDB

        server = EmbeddedFalkorDB(kb, start_timeout=900)  # replaying a large AOF takes longer than the default
        server.start()
        svc = build_services(Settings(data_dir=kb))
        try:
            docs = len(svc.graph.list_documents(status="complete"))
            stats = svc.graph.stats()
            # 1. build: graph export (Cypher reads) + mapping, then load into each store
            t = time.perf_counter()
            quads = RdfView.build_quads(svc.graph, RdfMapper(svc.ontology))
            export_s = time.perf_counter() - t
            t = time.perf_counter()
            info = svc.rdf.rebuild()  # the persistent store the product uses (reads the graph again)
            view_s = time.perf_counter() - t
            t = time.perf_counter()
            ox_mem = ox.Store()
            ox_mem.bulk_extend(quads)
            ox_load_s = time.perf_counter() - t
            nq = ox.serialize(quads, format=ox.RdfFormat.N_QUADS)
            t = time.perf_counter()
            ds = rdflib.Dataset(default_union=True)
            ds.parse(data=nq, format="nquads")
            rdflib_load_s = time.perf_counter() - t
            # the entity with the most typed relations, for the provenance query
            hub = svc.graph.query("MATCH (a:Entity)-[r]->(:Entity) WHERE type(r) <> 'CO_OCCURS' "
                                  "RETURN a.name AS name, count(r) AS n ORDER BY n DESC LIMIT 1")
            hub_name = hub[0]["name"] if hub else "Lyon"
            busy = svc.graph.query("MATCH (:Chunk)-[m:MENTIONS]->(e:Entity) RETURN e.name AS name, count(m) AS n "
                                   "ORDER BY n DESC LIMIT 1")
            busy_name = busy[0]["name"] if busy else hub_name
            store = svc.rdf._open()
            graphs = [ox.NamedNode(g.value) for g in store.named_graphs() if g.value.startswith("urn:kgf:tenant:")]
            results = {}
            for name, q in queries(hub_name, busy_name).items():
                text = PREFIXES + q
                ox_disk, n1 = _timed(lambda: len(list(store.query(text, default_graph=graphs))), args.runs)
                ox_ram, n2 = _timed(lambda: len(list(ox_mem.query(text, use_default_graph_as_union=True))), args.runs)
                via_api, n3 = _timed(lambda: len(svc.rdf.query(text, max_rows=10**7).rows), args.runs)
                rl, n4 = _timed(lambda: len(list(ds.query(text))), max(3, args.runs // 4))
                assert n1 == n2 == n3 == n4, f"{name}: row counts differ: {n1} {n2} {n3} {n4}"
                results[name] = {"rows": n1, "pyoxigraph_disk": ox_disk, "pyoxigraph_memory": ox_ram,
                                 "rdf_view_query_api": via_api, "rdflib_memory": rl}
                print(f"{name}: {n1} rows; pyoxigraph {ox_disk['p50_ms']} ms, rdflib {rl['p50_ms']} ms")
        finally:
            svc.close()
            server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    import sys

    cmd = " ".join(["python -m bench.sparql", *(argv if argv is not None else sys.argv[1:])]).replace(" --no-write", "")
    payload = {**header(cmd), "source": source, "documents": docs,
               "graph": {k: v for k, v in stats.items() if k in ("Document", "Chunk", "Entity")},
               "quads": len(quads), "hub_entity": hub_name, "busy_entity": busy_name,
               "build": {"graph_export_and_mapping_s": round(export_s, 2), "rdf_view_rebuild_s": round(view_s, 2),
                         "pyoxigraph_memory_load_s": round(ox_load_s, 2), "rdflib_memory_load_s": round(rdflib_load_s, 2)},
               "queries": results, "runs": args.runs}
    save_json("sparql", payload)
    if not args.no_write:
        write_section("sparql", _markdown(payload))
    return payload


def _markdown(r: dict) -> str:
    b = r["build"]
    lines = [
        "## SPARQL over the RDF view (pyoxigraph vs rdflib)", "",
        f"Machine: {r['machine']}. Date: {r['date']}. Commit: {r['commit']}. Command: `{r['command']}`.", "",
        f"Corpus: MuSiQue, {r['documents']} documents ({r['source']}): {r['graph'].get('Entity', 0)} entities, "
        f"{r['graph'].get('Chunk', 0)} chunks -> **{r['quads']:,} quads** in the RDF view (CO_OCCURS edges are not "
        f"part of the view; typed relations are reified for provenance).", "",
        "| build step | seconds |", "|---|---:|",
        f"| read the graph store + map to RDF | {b['graph_export_and_mapping_s']} |",
        f"| full RDF view rebuild (read + map + load into the on-disk pyoxigraph store) | {b['rdf_view_rebuild_s']} |",
        f"| load the same quads into an in-memory pyoxigraph store | {b['pyoxigraph_memory_load_s']} |",
        f"| load the same quads into an rdflib in-memory Dataset (N-Quads parse) | {b['rdflib_memory_load_s']} |", "",
        f"Query latency, median / p95 in ms ({r['runs']} timed runs after 3 warm-ups; rdflib {max(3, r['runs'] // 4)} runs). "
        f"Every engine returned the same row count. `RdfView.query` is the library call (`kgf sparql`): "
        f"revision check against the graph, worker thread with timeout, rows read into Python.", "",
        "| query | rows | pyoxigraph on disk | pyoxigraph in memory | RdfView.query | rdflib memory | rdflib / pyoxigraph |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, q in r["queries"].items():
        ratio = q["rdflib_memory"]["p50_ms"] / max(q["pyoxigraph_disk"]["p50_ms"], 1e-6)
        lines.append(f"| {name} | {q['rows']} | {q['pyoxigraph_disk']['p50_ms']} / {q['pyoxigraph_disk']['p95_ms']} | "
                     f"{q['pyoxigraph_memory']['p50_ms']} / {q['pyoxigraph_memory']['p95_ms']} | "
                     f"{q['rdf_view_query_api']['p50_ms']} / {q['rdf_view_query_api']['p95_ms']} | "
                     f"{q['rdflib_memory']['p50_ms']} / {q['rdflib_memory']['p95_ms']} | {ratio:.0f}x |")
    lines += ["", f"Two-hop path entity: {r['busy_entity']!r} (the most-mentioned entity); provenance query entity: "
                  f"{r['hub_entity']!r} (the entity with the most typed relations)."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
