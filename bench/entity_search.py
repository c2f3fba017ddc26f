"""Entity type-ahead latency (GET /v1/entities, service/explorer.py) at ~15k entities in one tenant.

    python -m bench.entity_search [--entities 15000] [--other 5000] [--queries 300]

Writes synthetic entities (person-like and company-like names, some with aliases; a second tenant beside them)
into an embedded FalkorDB, loads the retriever's graph index, and times: the index load, the tenant's name table
build (once per index, i.e. after each write), and the layer's entity_search for exact names, 3-6 character
prefixes and misspelled names (p50/p95/max). For comparison it times the store-side alternative, a Cypher
prefix scan over the tenant's entities (no fuzzy matching), on the same graph. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

FIRST = ["Marie", "Tomas", "Priya", "Hank", "Zoë", "Ana", "Li", "Omar", "Sven", "Chloé", "Kofi", "Yuki", "Ravi",
         "Elena", "Jonas", "Aiko", "Mateo", "Ingrid", "Noor", "Pavel", "Lucía", "Kwame", "Mei", "Dmitri", "Astrid"]
SYL = ["ber", "dan", "kor", "lin", "mar", "nov", "ost", "pel", "quin", "ros", "sta", "tur", "vel", "wen", "xan",
       "yor", "zel", "gau", "hal", "ith", "jas", "lux", "mor", "nek"]
ORG = ["Robotics", "Logistics", "Systems", "Labs", "Holdings", "Energy", "Analytics", "Foods", "Motors", "Bank"]


def names(n: int, rng: random.Random) -> list[tuple[str, str, list[str]]]:
    out, seen = [], set()
    while len(out) < n:
        last = "".join(rng.choice(SYL) for _ in range(rng.randint(2, 3))).capitalize()
        if rng.random() < 0.6:
            name, label = f"{rng.choice(FIRST)} {last}", "Person"
            aliases = [last] if rng.random() < 0.3 else []
        else:
            name, label = f"{last} {rng.choice(ORG)}", "Company"
            aliases = [f"{last} {rng.choice(ORG)} Inc"] if rng.random() < 0.2 else []
        if name not in seen:
            seen.add(name)
            out.append((name, label, aliases))
    return out


def write(graph, tenant: str, ents: list[tuple[str, str, list[str]]], per_doc: int = 20) -> None:
    from kgfactory.types import Chunk, Document, Entity, Mention

    for d in range(0, len(ents), per_doc):
        doc_id = f"{tenant}_d{d}"
        doc = Document(id=doc_id, source=f"/src/{doc_id}", title=doc_id, mime="text/plain", text="x", tenant=tenant)
        chunks = [Chunk(id=f"{doc_id}_c{k}", doc_id=doc_id, tenant=tenant, index=k, text="x", start=k, end=k + 1)
                  for k in range(4)]
        graph.begin_documents([doc])
        graph.write_chunks(chunks)
        batch = ents[d:d + per_doc]
        es = [Entity(id=f"{tenant}_e{d + i}", name=n, label=lab, tenant=tenant, aliases=al)
              for i, (n, lab, al) in enumerate(batch)]
        ms = [Mention(chunk_id=chunks[i % 4].id, entity_id=e.id) for i, e in enumerate(es)]
        graph.write_extraction(es, ms, [])
        graph.complete_documents([{"id": doc_id, "chunks": 4, "entities": len(es), "run_id": "bench"}])


def typo(s: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(s) - 2)
    return s[:i] + s[i + 1] + s[i] + s[i + 2:] if rng.random() < 0.5 else s[:i] + s[i + 1:]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p * len(xs)))] * 1000, 3)


def timed(fn, queries) -> dict[str, float]:
    ms = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        ms.append(time.perf_counter() - t)
    return {"p50_ms": pct(ms, 0.5), "p95_ms": pct(ms, 0.95), "max_ms": pct(ms, 1.0),
            "mean_ms": round(statistics.mean(ms) * 1000, 3)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entities", type=int, default=15000)
    ap.add_argument("--other", type=int, default=5000)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args(argv)

    from kgfactory.graph.falkordb_server import EmbeddedFalkorDB
    from kgfactory.graph.falkordb_store import FalkorDBGraphStore
    from kgfactory.ontology.loader import load_ontology
    from kgfactory.retrieval.graph_index import GraphIndex
    from kgfactory.service.knowledge import KnowledgeService

    rng = random.Random(7)
    onto = load_ontology()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedFalkorDB(Path(tmp) / "data")
        graph = FalkorDBGraphStore(unix_socket_path=str(server.start()), labels_for=onto.labels_for,
                                   on_close=server.stop)
        graph.ensure_schema()
        ents = names(args.entities + args.other, rng)
        t = time.perf_counter()
        write(graph, "acme", ents[:args.entities])
        write(graph, "other", ents[args.entities:])
        write_s = time.perf_counter() - t
        t = time.perf_counter()
        idx = GraphIndex.load(graph)
        load_s = time.perf_counter() - t
        services = SimpleNamespace(graph=graph, ontology=onto, retriever=SimpleNamespace(index=lambda: idx))
        kb = KnowledgeService(services, "acme")
        t = time.perf_counter()
        kb.entity_search("warm up")  # builds the tenant's name table
        build_s = time.perf_counter() - t
        mine = [n for n, _, _ in ents[:args.entities]]
        exact = rng.sample(mine, args.queries)
        prefix = [n[:rng.randint(3, 6)] for n in rng.sample(mine, args.queries)]
        typos = [typo(n, rng) for n in rng.sample(mine, args.queries)]
        hit_rate = sum(any(i.name == n for i in kb.entity_search(typo(n, random.Random(i))).items)
                       for i, n in enumerate(exact[:100])) / 100
        res = {"entities_in_tenant": args.entities, "entities_other_tenant": args.other,
               "write_s": round(write_s, 1), "index_load_s": round(load_s, 3),
               "name_table_build_ms": round(build_s * 1000, 1),
               "exact": timed(lambda q: kb.entity_search(q), exact),
               "prefix": timed(lambda q: kb.entity_search(q), prefix),
               "fuzzy": timed(lambda q: kb.entity_search(q), typos),
               "fuzzy_finds_the_name_top10": hit_rate}
        scan = ("MATCH (e:Entity) WHERE e.tenant = $t AND toLower(e.name) STARTS WITH $q "
                "RETURN e.id, e.name LIMIT 10")
        res["store_side_prefix_scan"] = timed(lambda q: graph.query(scan, {"t": "acme", "q": q.lower()}),
                                              prefix[:100])
        graph.close()
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
