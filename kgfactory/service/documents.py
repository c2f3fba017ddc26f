"""Ingest, list, read and delete one tenant's documents. Another tenant's document answers NotFoundError, the
same as one that does not exist, so ids cannot be probed."""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import InvalidInputError, NotFoundError
from ..rows import DocumentRow
from ..types import ALL_TENANTS, IngestRun
from . import limits as L
from . import staging, walk
from .results import DeleteResult, DocumentDetail, DocumentInfo, IngestProgress, IngestResult, Job

INGEST_ENGINES = ("local", "ray")


def run_summary(run: Any) -> dict[str, Any]:
    """What a job (and IngestResult) reports of an ingest run."""
    return {"id": run.id, "documents_added": run.documents_added, "documents_replaced": run.documents_replaced,
            "documents_unchanged": run.documents_unchanged, "chunks": run.chunks, "entities": run.entities,
            "relations": run.relations, "timings": run.timings}


class Documents:
    """Mixin of KnowledgeService: needs `services` and `tenant`."""

    services: Any
    tenant: str

    @property
    def uploads_dir(self) -> Path:
        """`<data_dir>/uploads/<tenant>/`: where texts and file objects are written before they are ingested."""
        from .uploads import tenant_dir

        return tenant_dir(self.services.settings.data_dir, self.tenant)

    # -- ingest ---------------------------------------------------------------------------------------------
    def ingest(self, paths: Any = None, *, texts: Any = None, files: Any = None, tags: Sequence[str] | str = (),
               progress: Callable[[IngestProgress], None] | None = None, engine: str = "local",
               ray_address: str | None = None) -> IngestResult:
        """Files and directories (read in place, walked by service/walk.py), texts and file objects (written under
        uploads_dir first), ingested now. A named path that is missing or of an unsupported type is refused
        before anything is written; errors inside files are per file, in the result.

        engine: "local" (in this process) or "ray" (parse, chunk, embed and spaCy on a Ray cluster, at
        `ray_address` or KGF_RAY_ADDRESS, else a local Ray; this process writes; server stores only). Both give
        the same documents, chunks, entities and graph."""
        if self.tenant == ALL_TENANTS:  # a key scope over every tenant, never a tenant data belongs to
            raise InvalidInputError(f"tenant {ALL_TENANTS!r} is reserved: ingest into a named tenant")
        if engine not in INGEST_ENGINES:
            raise InvalidInputError(f"engine {engine!r}: use {' or '.join(INGEST_ENGINES)}")
        if engine == "ray":  # refused before anything is staged
            from ..ingest.ray_engine import check_server_stores

            check_server_stores(self.services.settings)
        tag_list = staging.check_tags([tags] if isinstance(tags, str) else list(tags or []))
        found, bad = walk.expand(paths or [])
        if bad:
            raise InvalidInputError("; ".join(f"{p}: {reason}" for p, reason in bad[:5]))
        items = staging.text_items(texts)
        file_list = list(files or [])
        if not paths and not items and not file_list:  # a directory with no supported files is an empty run
            raise InvalidInputError(f"nothing to ingest: give paths, texts or files (supported: {L.SUPPORTED_LIST})")
        todo = [str(p) for p in found]
        todo += [str(p) for p in staging.stage_texts(items, self.uploads_dir)] if items else []
        todo += [str(p) for p in staging.stage_files(file_list, self.uploads_dir)] if file_list else []
        return self.ingest_paths(todo, tag_list, progress, engine=engine, ray_address=ray_address)

    def ingest_paths(self, todo: list[str], tags: list[str],
                     progress: Callable[[IngestProgress], None] | None = None, engine: str = "local",
                     ray_address: str | None = None) -> IngestResult:
        done, stage = 0, ""

        def tick(event: str, n: int) -> None:
            nonlocal done, stage
            if event.startswith("limit:"):  # the pipeline's view of its slowest stage (ingest/stages.py)
                stage = event[6:]
            elif event == "document":
                done += n
                if progress is not None:
                    progress(IngestProgress(documents_processed=done, files_total=len(todo), jobs_done=0,
                                            jobs_total=1, stage=stage))

        started = time.strftime("%Y-%m-%dT%H:%M:%S")
        if engine == "ray":
            from ..ingest.ray_engine import RayOptions, ray_ingest

            s = self.services.settings
            opts = RayOptions(address=s.ray_address if ray_address is None else ray_address, workers=s.ray_workers,
                              batch_docs=s.ray_batch_docs)
            run = ray_ingest(self.services, todo, tenant=self.tenant, tags=tags, progress=tick, options=opts)
        else:
            run = self.services.pipeline.ingest(todo, tenant=self.tenant, tags=tags, progress=tick)
        job = Job(id=run.id, tenant=self.tenant, state="succeeded", files=todo, tags=tags, created_at=started,
                  finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
                  progress={"files": len(todo), "documents_processed": done},
                  errors=[{"file": e.source, "reason": e.reason} for e in run.errors], run=run_summary(run))
        if progress is not None:
            progress(IngestProgress(documents_processed=done, files_total=len(todo), jobs_done=1, jobs_total=1))
        return IngestResult.of([job])

    # -- documents ------------------------------------------------------------------------------------------
    def _document_row(self, doc_id: str) -> DocumentRow:
        """The stored row of this tenant's document, else NotFoundError (also for another tenant's id)."""
        ok = isinstance(doc_id, str) and 0 < len(doc_id) <= L.MAX_ID_CHARS
        row = self.services.graph.get_document(doc_id) if ok else None
        if row is None or row.tenant != self.tenant:
            raise NotFoundError(f"no document {doc_id!r} (see the document list)")
        return row

    def documents(self, status: str | None = None) -> list[DocumentInfo]:
        """This tenant's documents, optionally only those of one status (complete, pending, deleting)."""
        if status is not None and status not in L.DOCUMENT_STATUSES:
            raise InvalidInputError(f"status {status!r}: use {', '.join(L.DOCUMENT_STATUSES)}")
        rows = self.services.graph.list_documents(tenant=self.tenant, status=status)
        return [DocumentInfo.model_validate(asdict(r)) for r in rows]

    def document(self, doc_id: str) -> DocumentDetail:
        """A document with its chunks (in order) and the entities they mention."""
        from ..graph.document_view import document_detail

        row = self._document_row(doc_id)
        return DocumentDetail.model_validate(document_detail(self.services.graph, row))

    def delete(self, doc_id: str) -> DeleteResult:
        """Remove the document and everything only it contributed, and the uploaded file it came from once no
        other document of the tenant comes from that file (a file the CLI read in place is never touched).
        The API calls this under its write lock."""
        from .uploads import remove_copy

        row = self._document_row(doc_id)
        rep = self.services.pipeline.delete(doc_id)
        removed = remove_copy(self.services.settings.data_dir, row, self.services.graph) if rep.found else None
        return DeleteResult(id=doc_id, deleted=rep.found, chunks=rep.chunks, orphaned_entities_removed=rep.entities,
                            upload_removed=removed is not None)

    # -- the operator's view (every tenant: the CLI's `kgf stats` and `kgf runs`) ----------------------------
    def stats(self) -> dict[str, dict[str, int]]:
        """Counts of complete knowledge in the whole data directory; documents a crash left pending (or a delete
        deleting) and their chunk vectors are shown apart. Vector counts are of distinct ids."""
        svc = self.services
        g = svc.graph.stats()
        vectors = {"chunks": svc.vectors.count("chunks", exact=True),
                   "entities": svc.vectors.count("entities", exact=True)}
        for status in ("pending", "deleting"):
            if g.get(f"Document ({status})"):
                n = sum(len(svc.vectors.chunk_ids_for_document(d.id))
                        for d in svc.graph.list_documents(status=status))
                vectors["chunks"] -= n
                vectors[f"chunks ({status})"] = n
        return {"graph": g, "vectors": vectors}

    def runs(self, limit: int = 10) -> list[IngestRun]:
        """Recent ingest runs of the whole data directory (lineage: versions, counts, errors), newest first."""
        return self.services.graph.list_runs(limit)
