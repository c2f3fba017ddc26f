"""Extractor port adapter that adds LLM extraction to the spaCy extractor (off by default: KGF_LLM_EXTRACT).

Per chunk, a prompt constrained by a JSON schema whose enums are the ontology's classes and relation types.
Bad JSON is repaired; if it cannot be, the request is retried once, and then the chunk keeps the spaCy
extraction alone, recorded on the ingest run. Results (and deterministic failures) are cached by chunk text
hash + prompt version + model + ontology version, so a re-ingest costs no tokens. LLM entities go through the
same resolution as spaCy's (vocabulary canonical names, `normalise`d name -> entity id), must appear in the
chunk's text, and typed relations must respect the property's domain and range.
"""
from __future__ import annotations

import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from ..errors import LLMBudgetError, LLMError, LLMRefusedError
from ..ports import LLM, Extractor
from ..textnorm import clean_surface, normalise
from ..types import Chunk, Entity, Extraction, FileError, Mention, Relation, RelationViolation, content_id
from .extract_cache import ExtractionCache
from .jsonrepair import parse_json_object
from .prompts import Prompt, load_prompt

log = logging.getLogger(__name__)
EXTRACT_PROMPT = "extract_v1"
TRUST = {"vocabulary": 4, "llm": 3, "ner": 2, "noun_phrase": 1}
EXTRACT_MAX_TOKENS = 2048


class LLMExtractor:
    def __init__(self, base: Extractor, llm: LLM, ontology, cache: ExtractionCache, prompt: Prompt | None = None,
                 json_mode: str = "schema", concurrency: int = 4):
        self.base, self.llm, self.ontology, self.cache = base, llm, ontology, cache
        self.prompt = prompt or load_prompt(EXTRACT_PROMPT)
        self.json_mode, self.concurrency = json_mode, concurrency
        # llama-cpp-python's server refuses `json_schema` (HTTP 500 naming response_format) and takes the schema as
        # {"type": "json_object", "schema": ...} instead: after one such refusal, that form is used
        self._schema_as_object = False
        self._vocab = {normalise(s): (canonical, cls) for s, cls, canonical in ontology.vocabulary()}
        self._lock = threading.Lock()
        self.start_run()

    @property
    def name(self) -> str:
        return f"{self.base.name}+llm:{self.llm.model}@{self.prompt.version}"

    # -- run lineage (read by the ingest pipeline) -------------------------------------------------------
    def start_run(self) -> None:
        self.stats = {"quarantined": 0, "chunks": 0, "llm_requests": 0, "cache_hits": 0, "fallbacks": 0, "tokens": 0,
                      "entities_added": 0, "relations_added": 0, "dropped_items": 0}
        self.fallbacks: list[FileError] = []

    def run_report(self) -> dict[str, Any]:
        return {"llm_model": self.llm.model, "prompt_version": self.prompt.version, "llm_stats": dict(self.stats),
                "llm_fallbacks": list(self.fallbacks)}

    # -- prompt -------------------------------------------------------------------------------------
    def schema(self) -> dict[str, Any]:
        classes = sorted(self.ontology.classes)
        props = sorted(self.ontology.object_properties)
        obj = lambda props_, req: {"type": "object", "additionalProperties": False, "required": req,  # noqa: E731
                                   "properties": props_}
        return obj({
            "entities": {"type": "array", "items": obj({"name": {"type": "string"},
                                                        "class": {"type": "string", "enum": classes}},
                                                       ["name", "class"])},
            "relations": {"type": "array", "items": obj({"source": {"type": "string"},
                                                         "type": {"type": "string", "enum": props},
                                                         "target": {"type": "string"}},
                                                        ["source", "type", "target"])},
        }, ["entities", "relations"])

    def messages(self, text: str) -> list[dict[str, str]]:
        import json

        ont = self.ontology
        classes = "\n".join(f"- {c.name}: {c.label}" + (f" (e.g. {', '.join(c.alt_labels[:4])})" if c.alt_labels else "")
                            for c in sorted(ont.classes.values(), key=lambda c: c.name))
        props = "\n".join(f"- {p.name}: {' | '.join(p.domain) or 'any'} -> {' | '.join(p.range) or 'any'}, \"{p.label}\""
                          for p in sorted(ont.object_properties.values(), key=lambda p: p.name))
        return self.prompt.messages(schema=json.dumps(self.schema()), classes=classes, properties=props, text=text)

    def _response_format(self) -> dict[str, Any] | None:
        if self.json_mode == "schema" and self._schema_as_object:
            return {"type": "json_object", "schema": self.schema()}
        if self.json_mode == "schema":
            return {"type": "json_schema", "json_schema": {"name": "kg_extraction", "schema": self.schema(), "strict": True}}
        if self.json_mode == "object":
            return {"type": "json_object"}
        return None

    def _key(self, chunk: Chunk) -> str:
        return content_id(chunk.text, self.prompt.version, self.llm.model, self.ontology.version, prefix="x_", size=32)

    # -- extraction ---------------------------------------------------------------------------------
    def extract(self, chunks: Sequence[Chunk], tenant: str = "default") -> Extraction:
        base = self.base.extract(chunks, tenant=tenant)
        keys = [self._key(c) for c in chunks]
        cached = self.cache.get_many(list(dict.fromkeys(keys)))
        todo = [(c, k) for c, k in zip(chunks, keys) if k not in cached]
        fresh: dict[str, Any] = {}
        if todo:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(todo))) as pool:
                for (c, k), (value, cacheable) in zip(todo, pool.map(lambda ck: self._ask(ck[0], tenant), todo)):
                    fresh[k] = value
                    if cacheable:
                        cached[k] = value
            self.cache.put_many({k: v for k, v in fresh.items() if k in cached})
        self.stats["chunks"] += len(chunks)
        self.stats["cache_hits"] += sum(1 for k in keys if k not in fresh)
        results = []
        for c, k in zip(chunks, keys):
            value = fresh[k] if k in fresh else cached[k]
            if "fallback" in value:
                self.stats["fallbacks"] += 1
                self.fallbacks.append(FileError(source=f"{c.doc_id} chunk {c.index}",
                                                reason=f"kept the spaCy extraction: {value['fallback']}"))
            else:
                results.append((c, value))
        return self._merge(base, results, tenant)

    def _ask(self, chunk: Chunk, tenant: str) -> tuple[dict[str, Any], bool]:
        """-> (parsed {entities, relations} or {fallback: reason}, whether to cache it)."""
        msgs = self.messages(chunk.text)
        kw: dict[str, Any] = {"max_tokens": EXTRACT_MAX_TOKENS}
        rf = self._response_format()
        if rf:
            kw["response_format"] = rf
        reason = ""
        try:
            for attempt in (1, 2):
                try:
                    c = self.llm.complete(msgs, tenant=tenant, **kw)
                except LLMError as e:
                    # 400/422, or (llama-cpp-python 0.3.36) HTTP 500 with the request's validation error
                    refused = (isinstance(e, LLMRefusedError) and e.status in (400, 422)) or "response_format" in str(e)
                    if not (refused and self.json_mode == "schema"
                            and kw.get("response_format", {}).get("type") == "json_schema"):
                        raise
                    log.warning("%s refused response_format json_schema (%s); sending the schema as "
                                "json_object + schema (llama-cpp-python's form) from now on", self.llm.model, e)
                    self._schema_as_object = True
                    kw["response_format"] = self._response_format()
                    c = self.llm.complete(msgs, tenant=tenant, **kw)
                with self._lock:
                    self.stats["llm_requests"] += 1
                    self.stats["tokens"] += c.total_tokens
                try:
                    return self._validate(parse_json_object(c.text)), True
                except ValueError as e:
                    reason = str(e)
                    log.info("LLM extraction of chunk %s: bad JSON (%s), attempt %d", chunk.id, reason, attempt)
                    msgs = msgs + [{"role": "assistant", "content": c.text},
                                   {"role": "user", "content": f"That reply was not valid JSON ({reason}). "
                                                               "Reply with the JSON object only."}]
        except LLMBudgetError as e:
            return {"fallback": str(e)}, False
        except LLMError as e:
            return {"fallback": f"LLM unavailable: {e}"}, False
        log.warning("LLM extraction of chunk %s fell back to spaCy: bad JSON after a retry (%s)", chunk.id, reason)
        return {"fallback": f"bad JSON after a retry: {reason}"}, True

    def _validate(self, data: dict) -> dict[str, Any]:
        """Keep only well-formed items that use the ontology's names; a reply that is not the object fails."""
        ents, rels = data.get("entities"), data.get("relations", [])
        if not isinstance(ents, list) or not isinstance(rels, list):
            raise ValueError("'entities' and 'relations' must be lists")
        by_lower = {c.lower(): c for c in self.ontology.classes}
        props = {p.lower(): p for p in self.ontology.object_properties}
        out_e, out_r, dropped = [], [], 0
        for e in ents:
            cls = by_lower.get(str(e.get("class", "")).lower()) if isinstance(e, dict) else None
            if cls and isinstance(e.get("name"), str) and e["name"].strip():
                out_e.append({"name": e["name"].strip(), "class": cls})
            else:
                dropped += 1
        for r in rels:
            typ = props.get(str(r.get("type", "")).lower()) if isinstance(r, dict) else None
            if typ and all(isinstance(r.get(k), str) for k in ("source", "target")):
                out_r.append({"source": r["source"].strip(), "type": typ, "target": r["target"].strip()})
            else:
                dropped += 1
        with self._lock:
            self.stats["dropped_items"] += dropped
        return {"entities": out_e, "relations": out_r}

    def _merge(self, base: Extraction, results: list[tuple[Chunk, dict]], tenant: str) -> Extraction:
        ents = {e.id: e.model_copy() for e in base.entities}
        mentions = {(m.chunk_id, m.entity_id): m.count for m in base.mentions}
        rels = {(r.source_id, r.target_id, r.type): set(r.chunk_ids) for r in base.relations}
        n_rel = len(rels)
        refused: dict[tuple[str, str, str], set[str]] = {}
        for chunk, value in results:
            text = normalise(chunk.text)
            local: dict[str, str] = {}
            for item in value["entities"]:
                name, cls, source = clean_surface(item["name"]), item["class"], "llm"
                key = normalise(name)
                if len(key) < 2 or key.isdigit():
                    continue
                hits = len(re.findall(r"(?<!\w)" + re.escape(key) + r"(?!\w)", text))
                if not hits:  # not in the text: the model made it up or paraphrased; only grounded names count
                    self.stats["dropped_items"] += 1
                    continue
                if key in self._vocab:  # the same resolution as spaCy's ruler: a known name's canonical entity
                    name, cls = self._vocab[key]
                    source, key = "vocabulary", normalise(self._vocab[key][0])
                eid = content_id(tenant, key, prefix="ent_")
                e = ents.get(eid)
                if e is None:
                    ents[eid] = Entity(id=eid, name=name, label=cls, tenant=tenant, source=source)
                    self.stats["entities_added"] += 1
                elif TRUST[source] > TRUST.get(e.source, 0):
                    e.label, e.source = cls, source
                if clean_surface(item["name"]) != ents[eid].name and clean_surface(item["name"]) not in ents[eid].aliases:
                    ents[eid].aliases = sorted({*ents[eid].aliases, clean_surface(item["name"])})
                mentions.setdefault((chunk.id, eid), hits)
                local[normalise(item["name"])] = eid
            for r in value["relations"]:
                a, b = local.get(normalise(r["source"])), local.get(normalise(r["target"]))
                if not a or not b or a == b:
                    self.stats["dropped_items"] += 1
                    continue
                if not self.ontology.allows(r["type"], ents[a].label, ents[b].label):
                    # the ontology forbids it: quarantined (kgf ontology violations), never silently dropped
                    refused.setdefault((a, b, r["type"]), set()).add(chunk.id)
                    continue
                if self.ontology.object_properties[r["type"]].symmetric:
                    a, b = min(a, b), max(a, b)
                rels.setdefault((a, b, r["type"]), set()).add(chunk.id)
        self.stats["relations_added"] += len(rels) - n_rel
        return Extraction(entities=list(ents.values()),
                          mentions=[Mention(chunk_id=c, entity_id=e, count=n) for (c, e), n in mentions.items()],
                          relations=[Relation(source_id=s, target_id=t, type=ty, chunk_ids=sorted(cs))
                                     for (s, t, ty), cs in rels.items()],
                          violations=[*base.violations, *(self._violation(ents[a], ents[b], ty, cs)
                                                          for (a, b, ty), cs in refused.items())])

    def _violation(self, src: Entity, dst: Entity, prop: str, chunk_ids: set[str]) -> RelationViolation:
        p = self.ontology.object_properties[prop]
        why = []
        if p.domain and not any(self.ontology.is_a(src.label, d) for d in p.domain):
            why.append(f"domain of {prop} is {' or '.join(p.domain)}, {src.name!r} is a {src.label}")
        if p.range and not any(self.ontology.is_a(dst.label, r) for r in p.range):
            why.append(f"range of {prop} is {' or '.join(p.range)}, {dst.name!r} is a {dst.label}")
        self.stats["quarantined"] += 1
        return RelationViolation(source_id=src.id, target_id=dst.id, type=prop, source_name=src.name,
                                 target_name=dst.name, source_class=src.label, target_class=dst.label,
                                 chunk_ids=sorted(chunk_ids), reason="; ".join(why) or "domain/range not satisfied (LLM)")
