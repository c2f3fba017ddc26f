"""LLM extraction through the real `openai` client over real HTTP to a scripted server: ontology-constrained
schema, bad JSON repaired / retried / fallen back to spaCy, merge through spaCy's resolution, and the cache
that makes a re-ingest cost no tokens."""
from __future__ import annotations

import json
import re
import shutil

import pytest
from openai_scripted_server import Reply, ScriptedOpenAIServer

from kgfactory.bootstrap import build_llm
from kgfactory.llm.extract_cache import ExtractionCache
from kgfactory.llm.llm_extractor import LLMExtractor
from kgfactory.settings import Settings
from kgfactory.types import Chunk, content_id

TEXT = ("Marie Dubois founded Helios Robotics in Lyon. The Atlas Picker is made by Helios Robotics. "
        "Quentin Moreau joined Helios Robotics in 2020.")
KNOWN = {"Marie Dubois": "Person", "Helios Robotics": "Company", "Lyon": "City", "Atlas Picker": "Product",
         "Quentin Moreau": "Person", "Tomas Berg": "Person", "Nordlicht Logistics": "Company"}


def chunk_text(req: dict) -> str:
    return re.search(r'Text:\n"""\n(.*)\n"""', req["messages"][1]["content"], re.S).group(1)


def scripted_extraction(req: dict) -> Reply:
    """What a decent model would reply: the known names found in the chunk, and who founded what."""
    text = chunk_text(req)
    ents = [{"name": n, "class": c} for n, c in KNOWN.items() if n in text]
    rels = [{"source": "Marie Dubois", "type": "founded", "target": "Helios Robotics"}] if "Marie Dubois founded" in text else []
    return Reply(text=json.dumps({"entities": ents, "relations": rels}), usage=(300, 40))


@pytest.fixture
def server():
    s = ScriptedOpenAIServer().start()
    s.default = scripted_extraction
    yield s
    s.stop()


def ent_id(name: str) -> str:
    from kgfactory.textnorm import normalise

    return content_id("default", normalise(name), prefix="ent_")


@pytest.fixture
def make_extractor(tmp_path, extractor, ontology):
    made = []

    def make(url: str, **kw) -> LLMExtractor:
        settings = Settings(data_dir=tmp_path / "data", llm_base_url=url, llm_model="m1", llm_backoff_s=0.01, **kw)
        cache = ExtractionCache(tmp_path / "data" / "llm" / "extract_cache.sqlite")
        x = LLMExtractor(extractor, build_llm(settings), ontology, cache, json_mode=settings.llm_extract_json)
        made.append(cache)
        return x

    yield make
    for c in made:
        c.close()


def chunk(text: str = TEXT, i: int = 0) -> Chunk:
    return Chunk(id=content_id(text, prefix="chk_"), doc_id="doc_1", index=i, text=text, start=0, end=len(text))


def test_schema_limits_to_the_ontology_and_merges_through_the_same_resolution(server, make_extractor, extractor, ontology):
    x = make_extractor(server.url)
    server.replies = [Reply(text=json.dumps({"entities": [
        {"name": "Marie Dubois", "class": "Person"}, {"name": "Helios Robotics", "class": "Company"},
        {"name": "Quentin Moreau", "class": "Person"},
        {"name": "Atlas Picker", "class": "Spaceship"},  # not an ontology class: dropped
        {"name": "Zorg Industries", "class": "Company"},  # not in the text: dropped
        {"name": "lyon", "class": "Location"},  # a vocabulary name: resolves to the canonical Lyon (City)
    ], "relations": [
        {"source": "Marie Dubois", "type": "founded", "target": "Helios Robotics"},
        {"source": "Helios Robotics", "type": "bornIn", "target": "Marie Dubois"},  # domain/range violated
        {"source": "Quentin Moreau", "type": "worksFor", "target": "Helios Robotics"},
    ]}))]
    c = chunk()
    base = extractor.extract([c])
    got = x.extract([c])
    req = server.chat_requests()[0]
    schema = req["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["entities"]["items"]["properties"]["class"]["enum"] == sorted(ontology.classes)
    assert schema["properties"]["relations"]["items"]["properties"]["type"]["enum"] == sorted(ontology.object_properties)
    ids = {e.id: e for e in got.entities}
    assert {e.id for e in base.entities} <= set(ids)  # spaCy's entities all kept
    assert ids[ent_id("Lyon")].label == "City" and ids[ent_id("Lyon")].name == "Lyon"
    assert ids[ent_id("Quentin Moreau")].label == "Person"
    base_ids = {e.id: e for e in base.entities}
    # the LLM's ontology class beats statistical NER's guess; a class outside the ontology is ignored
    assert base_ids[ent_id("Helios Robotics")].label == "Organization"
    assert (ids[ent_id("Helios Robotics")].label, ids[ent_id("Helios Robotics")].source) == ("Company", "llm")
    assert ids[ent_id("Atlas Picker")].label == base_ids[ent_id("Atlas Picker")].label != "Spaceship"
    assert ent_id("Zorg Industries") not in ids
    rels = {(r.source_id, r.type, r.target_id) for r in got.relations}
    assert (ent_id("Marie Dubois"), "founded", ent_id("Helios Robotics")) in rels
    assert (ent_id("Quentin Moreau"), "worksFor", ent_id("Helios Robotics")) in rels
    assert not any(t == "bornIn" for _, t, _ in rels)
    # the domain/range misfit is quarantined with its reason, not silently dropped; spaCy's own ones are kept
    born = [v for v in got.violations if v.type == "bornIn"]
    assert [(v.source_id, v.target_id, v.chunk_ids) for v in born] == [(ent_id("Helios Robotics"), ent_id("Marie Dubois"), [c.id])]
    assert "domain of bornIn" in born[0].reason and x.stats["quarantined"] == 1
    assert {(v.source_id, v.type, v.target_id) for v in base.violations} <= {(v.source_id, v.type, v.target_id) for v in got.violations}
    assert (c.id, ent_id("Quentin Moreau")) in {(m.chunk_id, m.entity_id) for m in got.mentions}
    assert x.stats["dropped_items"] >= 2 and x.stats["fallbacks"] == 0


def test_bad_json_is_repaired_without_a_second_request(server, make_extractor):
    x = make_extractor(server.url)
    server.replies = [Reply(text='Sure! Here it is:\n```json\n{"entities": [{"name": "Quentin Moreau", "class": "Person",},],'
                                 ' "relations": [],}\n```')]
    got = x.extract([chunk()])
    assert ent_id("Quentin Moreau") in {e.id for e in got.entities}
    assert len(server.chat_requests()) == 1 and x.stats["fallbacks"] == 0


def test_bad_json_is_retried_once_with_the_reason(server, make_extractor):
    x = make_extractor(server.url)
    server.replies = [Reply(text="Entities: Quentin Moreau (Person)"),
                      Reply(text='{"entities": [{"name": "Quentin Moreau", "class": "Person"}], "relations": []}')]
    got = x.extract([chunk()])
    assert ent_id("Quentin Moreau") in {e.id for e in got.entities}
    second = server.chat_requests()[1]["messages"]
    assert second[-2] == {"role": "assistant", "content": "Entities: Quentin Moreau (Person)"}
    assert "not valid JSON" in second[-1]["content"]


def test_bad_json_twice_keeps_spacy_records_it_and_is_cached(server, make_extractor, extractor):
    x = make_extractor(server.url)
    server.replies = [Reply(text="I cannot do that."), Reply(text="{'entities': [oops")]
    c = chunk()
    got = x.extract([c])
    base = extractor.extract([c])
    assert {e.id for e in got.entities} == {e.id for e in base.entities}
    assert {(r.source_id, r.target_id, r.type) for r in got.relations} == {(r.source_id, r.target_id, r.type) for r in base.relations}
    report = x.run_report()
    assert report["llm_stats"]["fallbacks"] == 1 and report["llm_stats"]["llm_requests"] == 2
    assert "bad JSON after a retry" in report["llm_fallbacks"][0].reason and "doc_1 chunk 0" in report["llm_fallbacks"][0].source
    x.extract([c])  # same text and prompt: deterministic failure cached, no tokens spent again
    assert len(server.chat_requests()) == 2 and x.stats["cache_hits"] == 1


def test_endpoint_down_falls_back_and_is_not_cached(server, make_extractor):
    x = make_extractor(server.url, llm_max_retries=0)
    server.replies = [Reply(status=503)]
    x.extract([chunk()])
    assert "LLM unavailable" in x.fallbacks[0].reason
    x.extract([chunk()])  # a transient failure is not cached: the next ingest asks again
    assert len(server.chat_requests()) == 2 and x.stats["fallbacks"] == 1


def test_budget_spent_during_ingest_keeps_spacy(server, make_extractor):
    x = make_extractor(server.url, llm_tenant_token_budget=100)
    x.extract([chunk()])  # 340 tokens: over budget afterwards
    x.extract([chunk(TEXT + " More text.", 1)])
    assert len(server.chat_requests()) == 1 and "budget" in x.fallbacks[0].reason


def test_json_mode_object_and_none(server, make_extractor):
    make_extractor(server.url, llm_extract_json="object").extract([chunk()])
    make_extractor(server.url, llm_extract_json="none").extract([chunk(TEXT + " Again.")])
    first, second = server.chat_requests()
    assert first["response_format"] == {"type": "json_object"} and "response_format" not in second


@pytest.fixture
def llm_services(tmp_path, server, embedder, extractor):
    """Services as bootstrap wires them for KGF_LLM_EXTRACT=true, sharing the session's loaded models."""
    from kgfactory.bootstrap import build_services

    svc = build_services(Settings(data_dir=tmp_path / "data", llm_base_url=server.url, llm_model="m1",
                                  llm_extract=True))
    svc.embedder = svc.pipeline.embedder = svc.retriever.embedder = svc.answerer.embedder = embedder
    svc.extractor.base = extractor
    yield svc
    svc.close()


def test_ingest_records_prompt_version_and_reingest_costs_no_tokens(llm_services, server, sample_dir, tmp_path):
    svc = llm_services
    corpus = tmp_path / "corpus"
    shutil.copytree(sample_dir, corpus)
    run = svc.pipeline.ingest([str(corpus)])
    n = len(server.chat_requests())
    assert n == run.chunks > 0 and run.llm_stats["llm_requests"] == n and run.llm_stats["cache_hits"] == 0
    assert run.prompt_version.startswith("extract_v1@") and run.llm_model == "m1" and "+llm:m1@extract_v1@" in run.extractor
    assert run.llm_stats["tokens"] == 340 * n and run.llm_fallbacks == []
    stored = svc.graph.list_runs(1)[0]
    assert stored.prompt_version == run.prompt_version and stored.llm_stats["llm_requests"] == n
    # the LLM's class is in the graph: spaCy's NER alone labels Helios Robotics an Organization, not a Company
    rows = svc.graph.query("MATCH (e:Company {id: $id}) RETURN e.name AS name", {"id": ent_id("Helios Robotics")})
    assert rows and rows[0]["name"] == "Helios Robotics"

    # delete a document and ingest it again: every chunk comes from the cache
    doc = next(d for d in svc.graph.list_documents() if d.source.endswith("people.txt"))
    svc.pipeline.delete(doc.id)
    again = svc.pipeline.ingest([str(corpus / "people.txt")])
    assert len(server.chat_requests()) == n and again.llm_stats["cache_hits"] == again.chunks > 0
    assert again.llm_stats["llm_requests"] == 0 and again.prompt_version == run.prompt_version

    # change one file: only its new text costs tokens
    p = corpus / "helios.md"
    p.write_text(p.read_text() + "\nQuentin Moreau joined Helios Robotics in 2020.\n")
    changed = svc.pipeline.ingest([str(corpus)])
    assert changed.documents_replaced == 1 and changed.documents_unchanged >= 4
    assert len(server.chat_requests()) == n + changed.llm_stats["llm_requests"] and changed.llm_stats["llm_requests"] >= 1
    rows = svc.graph.query("MATCH (e:Person {id: $id}) RETURN e.name AS name", {"id": ent_id("Quentin Moreau")})
    assert rows and rows[0]["name"] == "Quentin Moreau"


def test_llm_extract_without_an_llm_is_a_clear_config_error(tmp_path):
    from kgfactory.bootstrap import build_services
    from kgfactory.errors import ConfigError

    with pytest.raises(ConfigError, match="KGF_LLM_EXTRACT"):
        build_services(Settings(data_dir=tmp_path / "d", llm_extract=True))


def test_server_refusing_json_schema_gets_the_schema_as_json_object(server, make_extractor):
    """A server that refuses response_format json_schema (llama-cpp-python: a 500 naming response_format) may take
    {"type": "json_object", "schema": ...} instead (the llm_server leg meets the real one): one refusal, then that form for the run."""
    server.replies = [Reply(status=422)]
    x = make_extractor(server.url)
    out = x.extract([chunk()])
    out2 = x.extract([chunk("Tomas Berg works for Nordlicht Logistics.", 1)])
    assert {e.name for e in out.entities + out2.entities} >= {"Marie Dubois", "Helios Robotics", "Tomas Berg"}
    assert x.stats["fallbacks"] == 0
    formats = [r["response_format"] for r in server.chat_requests()]
    assert formats[0]["type"] == "json_schema" and len(formats) == 3
    assert all(f["type"] == "json_object" and f["schema"] == x.schema() for f in formats[1:])
