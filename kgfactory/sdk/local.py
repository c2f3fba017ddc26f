"""`KnowledgeBase`: the Client's methods in-process, over bootstrap.build_services, for notebooks and scripts.

Same arguments, same typed results and the same error classes as `Client`, without a server. It holds the data
directory (Milvus Lite allows one process per directory), so it refuses to open one that `kgf serve` holds and
names the server's URL to use with `Client` instead. Needs the `[server]` extra.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..errors import CypherQueryError, CypherTimeout
from ..rows import DocumentRow
from . import _base as B
from .errors import KGFactoryError, NotAvailableError, NotFoundError, ValidationError
from .models import (AskResult, CypherResult, DeleteResult, DocumentDetail, DocumentInfo, EntityDetail,
                     IngestProgress, IngestResult, Job, SearchResult, SparqlResult)

MODES = ("vector", "graph", "hybrid")


class KnowledgeBase:
    """A knowledge base opened in this process. Use as a context manager, or call close()."""

    def __init__(self, services, tenant: str | None = None, own: bool = True):
        self.services = services
        self.tenant = tenant or services.settings.tenant
        self._own = own

    @classmethod
    def open(cls, path_or_settings: Any = None, *, tenant: str | None = None, **settings: Any) -> "KnowledgeBase":
        """Open a data directory (a path), or a `kgfactory.settings.Settings`; nothing given: $KGF_DATA_DIR or
        ./kgf-data. Extra keyword arguments are settings (e.g. `spacy_model="blank"`)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            from ..bootstrap import build_services
            from ..settings import Settings
        except ImportError as e:  # a light install: only the HTTP client is there
            raise KGFactoryError(f"KnowledgeBase needs the server parts ({e.name} is missing): "
                                 "pip install 'kgfactory[server]'; or use kgfactory.sdk.Client with a server") from e
        if isinstance(path_or_settings, Settings):
            s = path_or_settings.model_copy(update=settings) if settings else path_or_settings
        elif path_or_settings is not None:
            s = Settings(data_dir=Path(path_or_settings), **settings)
        else:
            s = Settings(**settings)
        from ..api.serverfile import running_server

        info = running_server(s.data_dir)
        if info:
            raise KGFactoryError(f"`kgf serve` (pid {info['pid']}) holds {s.data_dir}: use "
                                 f"kgfactory.sdk.Client({info['url']!r}) instead, or stop the server")
        return cls(build_services(s), tenant=tenant)

    def close(self) -> None:
        if self._own:
            self.services.close()

    def __enter__(self) -> "KnowledgeBase":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- question answering -----------------------------------------------------------------------------
    def _retrieve(self, question: str, mode: str, top_k: int, tags, doc_ids):
        if not isinstance(question, str) or not question.strip() or len(question) > 2000:
            raise ValidationError("question: 1-2000 characters", status=422, type="invalid_request")
        if mode not in MODES:
            raise ValidationError(f"mode {mode!r}: use one of {', '.join(MODES)}", status=422, type="invalid_request")
        if not 1 <= int(top_k) <= 100:
            raise ValidationError(f"top_k {top_k}: 1-100", status=422, type="invalid_request")
        f: dict[str, Any] = {"tenant": self.tenant}
        if tags:
            f["tag"] = list(tags)
        if doc_ids:
            f["doc_id"] = list(doc_ids)
        return self.services.retriever.search(question, mode=mode, top_k=int(top_k), filters=f)

    @staticmethod
    def _ask_result(ans, result) -> AskResult:
        return AskResult(question=result.query, answer=ans.text, kind=ans.kind, citations=ans.citations,
                         evidence=result.evidence, chunks=result.chunks, seeds=result.seeds,
                         timings=ans.timings or result.timings, model=getattr(ans, "model", None),
                         note=getattr(ans, "note", None), grounding=getattr(ans, "grounding", None))

    def ask(self, question: str, *, mode: str = "hybrid", top_k: int = 5, tags: Sequence[str] | None = None,
            doc_ids: Sequence[str] | None = None) -> AskResult:
        result = self._retrieve(question, mode, top_k, tags, doc_ids)
        return self._ask_result(self.services.answerer.answer(result, tenant=self.tenant), result)

    def ask_stream(self, question: str, *, mode: str = "hybrid", top_k: int = 5, tags: Sequence[str] | None = None,
                   doc_ids: Sequence[str] | None = None) -> Iterator[str | AskResult]:
        from ..types import Answer

        result = self._retrieve(question, mode, top_k, tags, doc_ids)
        stream = getattr(self.services.answerer, "stream", None)
        if stream is None:
            ans = self.services.answerer.answer(result, tenant=self.tenant)
            yield ans.text
            yield self._ask_result(ans, result)
            return
        for item in stream(result, tenant=self.tenant):
            if isinstance(item, Answer):
                yield self._ask_result(item, result)
            elif item:
                yield item

    def search(self, question: str, *, mode: str = "hybrid", top_k: int = 5, tags: Sequence[str] | None = None,
               doc_ids: Sequence[str] | None = None) -> SearchResult:
        r = self._retrieve(question, mode, top_k, tags, doc_ids)
        return SearchResult(question=r.query, mode=r.mode, chunks=r.chunks, seeds=r.seeds, evidence=r.evidence,
                            timings=r.timings)

    # -- documents and ingest ---------------------------------------------------------------------------
    def ingest(self, paths: Any = None, *, texts: Any = None, files: Any = None, tags: Sequence[str] | str = (),
               wait: bool = True, progress: Callable[[IngestProgress], None] | None = None,
               poll_interval: float = 0.5, timeout: float | None = None) -> IngestResult:
        """As Client.ingest. Files are read in place; texts and file objects are first written under
        `<data_dir>/uploads/<tenant>/` (as the server does). In-process ingest is synchronous: `wait` is ignored."""
        plan_paths = B.collect_paths([paths] if isinstance(paths, (str, os.PathLike)) else (paths or []))
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        staged = self._stage(texts, files)
        todo = [str(p) for p in plan_paths] + [str(p) for p in staged]
        if not todo:
            B.ingest_plan(None, None, None, tags)  # raises the same "nothing to ingest" error as the client
        done = 0

        def tick(event: str, n: int) -> None:
            nonlocal done
            if event == "document":
                done += n
                if progress is not None:
                    progress(IngestProgress(documents_processed=done, files_total=len(todo), jobs_done=0, jobs_total=1))

        t = time.strftime("%Y-%m-%dT%H:%M:%S")
        run = self.services.pipeline.ingest(todo, tenant=self.tenant, tags=tags, progress=tick)
        job = Job(id=run.id, tenant=self.tenant, state="succeeded", files=todo, tags=tags, created_at=t,
                  progress={"files": len(todo), "documents_processed": done},
                  errors=[{"file": e.source, "reason": e.reason} for e in run.errors],
                  run={"id": run.id, "documents_added": run.documents_added,
                       "documents_replaced": run.documents_replaced, "documents_unchanged": run.documents_unchanged,
                       "chunks": run.chunks, "entities": run.entities, "relations": run.relations,
                       "timings": run.timings})
        if progress is not None:
            progress(IngestProgress(documents_processed=done, files_total=len(todo), jobs_done=1, jobs_total=1))
        return IngestResult.of([job])

    def _stage(self, texts: Any, files: Any) -> list[Path]:
        dest = self.services.settings.data_dir / "uploads" / self.tenant
        out: list[Path] = []
        if texts:
            for req in B.texts_batches([texts] if isinstance(texts, (str, dict)) else texts, []):
                for t in req.json["texts"]:
                    slug = re.sub(r"[^A-Za-z0-9]+", "-", t["title"]).strip("-")[:60] or "text"
                    p = dest / f"{slug}-{hashlib.sha256(t['title'].encode()).hexdigest()[:10]}.json"
                    rec = {"title": t["title"], "text": t["text"], **{k: v for k, v in (t.get("metadata") or {}).items()
                                                                      if k not in ("title", "text")}}
                    dest.mkdir(parents=True, exist_ok=True)
                    p.write_text(json.dumps(rec, ensure_ascii=False), encoding="utf-8")
                    out.append(p)
        for req, _ in B.upload_batches([], list(files or []), []):
            parts, opened = req.files()
            try:
                for _, (name, body) in parts:
                    data = body if isinstance(body, bytes) else body.read()
                    dest.mkdir(parents=True, exist_ok=True)
                    (dest / os.path.basename(name)).write_bytes(data)
                    out.append(dest / os.path.basename(name))
            finally:
                for f in opened:
                    f.close()
        return out

    def _own_document(self, doc_id: str) -> DocumentRow:
        doc = self.services.graph.get_document(doc_id) if doc_id and len(doc_id) <= 200 else None
        if doc is None or doc.tenant != self.tenant:
            raise NotFoundError(f"no document {doc_id!r} (see documents())")
        return doc

    def documents(self, status: str | None = None) -> list[DocumentInfo]:
        if status is not None and status not in ("complete", "pending", "deleting"):
            raise ValidationError(f"status {status!r}: use complete, pending or deleting", status=422,
                                  type="bad_request")
        return [DocumentInfo.model_validate(asdict(d)) for d in self.services.graph.list_documents(
            tenant=self.tenant, status=status)]

    def document(self, doc_id: str) -> DocumentDetail:
        from ..graph.document_view import document_detail

        return DocumentDetail.model_validate(document_detail(self.services.graph, self._own_document(doc_id)))

    def delete(self, doc_id: str) -> DeleteResult:
        from ..api.uploads import remove_copy

        doc = self._own_document(doc_id)
        rep = self.services.pipeline.delete(doc_id)
        if rep.found:
            remove_copy(self.services.settings.data_dir, doc, self.services.graph)  # a staged text or file goes too
        return DeleteResult(id=doc_id, deleted=rep.found, chunks=rep.chunks, orphaned_entities_removed=rep.entities)

    # -- analysts ---------------------------------------------------------------------------------------
    def cypher(self, query: str, params: dict[str, Any] | None = None, *, timeout_ms: int | None = None,
               max_rows: int | None = None) -> CypherResult:
        from ..bootstrap import build_cypher_views
        from ..errors import CypherRefusedError
        from ..graph import cypher_guard

        svc, s = self.services, self.services.settings
        try:
            cypher_guard.check(query, max_chars=s.cypher_max_chars, max_depth=s.cypher_max_depth)
        except CypherRefusedError as e:
            raise ValidationError(str(e), status=400, type=e.kind) from e
        views = svc.cypher_views if svc.cypher_views is not None else build_cypher_views(svc)
        if views is None:
            raise NotAvailableError("analyst Cypher needs the FalkorDB graph backend", status=501,
                                    type="not_implemented")
        timeout = min(timeout_ms or s.cypher_timeout_ms, s.cypher_timeout_ms)
        cap = min(max_rows or s.cypher_max_rows, s.cypher_max_rows)
        t = time.perf_counter()
        try:
            cols, rows, truncated = views.run(query, params or {}, self.tenant, timeout, cap)
        except CypherQueryError as e:  # the query's fault; any other GraphStoreError is the engine's: raised
            timed_out = isinstance(e, CypherTimeout)
            raise ValidationError(f"Cypher {'timed out' if timed_out else 'failed'}: {e}",
                                  status=408 if timed_out else 400, type="timeout" if timed_out else "bad_query") from e
        return CypherResult(columns=cols, rows=rows, row_count=len(rows), truncated=truncated, tenant=self.tenant,
                            elapsed_ms=round((time.perf_counter() - t) * 1000, 3))

    def sparql(self, query: str) -> SparqlResult:
        rdf = getattr(self.services, "rdf", None)
        if rdf is None:
            raise NotAvailableError("SPARQL is not available: the RDF layer is not configured in this build",
                                    status=501, type="not_implemented")
        result = rdf.query(query, tenant=self.tenant)
        if result.kind in ("construct", "describe"):
            content, _ = result.serialize("turtle")
            return SparqlResult(kind="graph", graph=content if isinstance(content, str) else content.decode())
        content, _ = result.serialize("json")
        return SparqlResult.from_json(json.loads(content))

    def ontology(self) -> dict[str, Any]:
        return self.services.ontology.model_dump(mode="json")

    def entity(self, entity_id: str, *, limit: int = 50) -> EntityDetail:
        graph = self.services.graph
        row = graph.entity(entity_id, self.tenant)
        if row is None:
            raise NotFoundError(f"no entity {entity_id!r} (entity ids appear in ask()/search() seeds and "
                                "document())")
        return EntityDetail.model_validate({
            **asdict(row), "neighbours": [asdict(n) for n in graph.entity_neighbours(entity_id, self.tenant, limit)],
            "mentions": [asdict(m) for m in graph.entity_mentions(entity_id, self.tenant, limit)]})

    def graph_schema(self) -> dict[str, Any]:
        labels, rels = self.services.graph.schema_counts(self.tenant)
        return {"tenant": self.tenant, "labels": labels, "relationship_types": rels}
