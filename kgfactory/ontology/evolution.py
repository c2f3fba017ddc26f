"""The ontology in force for a data directory, and what happens to stored facts when it changes.

`kgf ontology load FILE` checks the file first (a bad file changes nothing), then compares the stored graph with
it: entities whose class the new ontology does not declare, entities whose superclass labels would change, and
typed edges whose property is gone or whose domain/range no longer admits their ends. With no misfits the new
version is activated. With misfits nothing changes unless the caller chooses:

- migrate: an entity of a removed class takes the nearest superclass (in the old hierarchy) that the new
  ontology still declares, else the fallback class; every entity's labels are re-derived from the new
  hierarchy; edges that still do not fit are moved to the quarantine (an edge has no sensible automatic fix).
- quarantine: entities of removed classes fall back to the fallback class and are recorded in the quarantine
  with their old class, for review; misfit edges move to the quarantine.

The active ontology is copied to <data_dir>/ontology/active.<ext> (with a JSON note of its version) and every
version loaded is kept under <data_dir>/ontology/versions/. n10s-style graph config nodes (_GraphConfig,
_NsPrefDef) record the version and namespace prefixes in the graph itself.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ..errors import OntologyError
from ..ports import GraphStore
from .rdf_mapping import prefixes_for

if TYPE_CHECKING:
    from .model import Ontology
    from .quarantine import Quarantine

ACTIVE_DIR = "ontology"


def active_ontology_path(data_dir: Path) -> Path | None:
    """The ontology file `kgf ontology load` made current for this data directory, if any."""
    d = Path(data_dir) / ACTIVE_DIR
    note = d / "active.json"
    if not note.is_file():
        return None
    try:
        p = d / json.loads(note.read_text())["file"]
    except (ValueError, KeyError, OSError):
        return None
    return p if p.is_file() else None


@dataclass
class ChangeReport:
    old_version: str
    new_version: str
    nodes: list[dict] = field(default_factory=list)  # entities whose class the new ontology lacks
    relabel: int = 0  # entities whose superclass labels change
    edges: list[dict] = field(default_factory=list)  # typed edges that no longer fit
    applied: str = ""  # '', 'activated', 'migrated', 'quarantined'

    @property
    def fits(self) -> bool:
        return not self.nodes and not self.edges

    def as_dict(self) -> dict[str, Any]:
        return {"old_version": self.old_version, "new_version": self.new_version, "nodes": self.nodes,
                "relabel": self.relabel, "edges": self.edges, "applied": self.applied, "fits": self.fits}


def check_change(graph: GraphStore, old: Ontology, new: Ontology) -> ChangeReport:
    """Which stored entities and typed edges the `new` ontology no longer admits (read-only)."""
    rep = ChangeReport(old.version, new.version)
    classes: dict[str, str] = {}
    for e in graph.export_entity_classes():
        cls = e.label or new.FALLBACK_CLASS
        target = _migrated_class(old, new, cls)
        classes[e.id] = target
        if cls not in new.classes:
            rep.nodes.append({"id": e.id, "name": e.name, "tenant": e.tenant, "class": cls,
                              "migrate_to": target, "labels": [lb for lb in e.labels or [] if lb != "Entity"]})
        if sorted(lb for lb in e.labels or [] if lb != "Entity") != sorted(new.labels_for(target)):
            rep.relabel += 1
    for r in graph.export_typed_relations():
        a, b = classes.get(r.source_id, new.FALLBACK_CLASS), classes.get(r.target_id, new.FALLBACK_CLASS)
        if r.type not in new.object_properties:
            why = f"property {r.type} is not declared in ontology {new.version}"
        elif not new.allows(r.type, a, b):
            p = new.object_properties[r.type]
            why = (f"{r.type} now needs {' or '.join(p.domain) or 'any'} -> {' or '.join(p.range) or 'any'}, "
                   f"edge is {a} -> {b}")
        else:
            continue
        rep.edges.append({**asdict(r), "source_class": a, "target_class": b, "reason": why})
    return rep


def _migrated_class(old: Ontology, new: Ontology, cls: str) -> str:
    if cls in new.classes:
        return cls
    if cls in old.classes:
        for anc in old.ancestors(cls):
            if anc in new.classes:
                return anc
    return new.FALLBACK_CLASS


def apply_change(graph: GraphStore, quarantine: Quarantine, old: Ontology, new: Ontology, report: ChangeReport,
                 mode: str) -> ChangeReport:
    """mode: 'migrate' or 'quarantine' (see the module docstring). Bumps the graph revision once."""
    if mode not in ("migrate", "quarantine"):
        raise OntologyError(f"unknown ontology change mode {mode!r}; use migrate or quarantine")
    # 1. misfit edges -> quarantine (one row per supporting chunk), then out of the graph
    if report.edges:
        cids = sorted({c for r in report.edges for c in (r.get("chunk_ids") or [])})
        doc_of = {c.id: c.doc_id for c in graph.get_chunks(cids)} if cids else {}
        rows = []
        for r in report.edges:
            for cid in r.get("chunk_ids") or [""]:
                rows.append({"kind": "edge", "tenant": r.get("tenant") or "default", "doc_id": doc_of.get(cid, ""),
                             "chunk_id": cid, "source_id": r["source_id"], "source_name": r.get("source_name"),
                             "source_class": r["source_class"], "type": r["type"], "target_id": r["target_id"],
                             "target_name": r.get("target_name"), "target_class": r["target_class"],
                             "reason": r["reason"], "origin": "ontology-change", "ontology_version": new.version})
        quarantine.add(rows)
        by_type: dict[str, list[tuple[str, str]]] = {}
        for r in report.edges:
            by_type.setdefault(r["type"], []).append((r["source_id"], r["target_id"]))
        for rtype, pairs in by_type.items():
            graph.delete_relations(rtype, pairs)
    # 2. entities: new class (nearest surviving ancestor, or the fallback), labels from the new hierarchy
    if mode == "quarantine" and report.nodes:
        quarantine.add([{"kind": "node", "tenant": n.get("tenant") or "default", "source_id": n["id"],
                         "source_name": n.get("name"), "source_class": n["class"], "type": "",
                         "reason": f"class {n['class']} is not declared in ontology {new.version}; retyped "
                                   f"{new.FALLBACK_CLASS}", "origin": "ontology-change",
                         "ontology_version": new.version} for n in report.nodes])
    groups: dict[tuple[tuple[str, ...], str], list[str]] = {}
    for e in graph.export_entity_classes():
        cls = e.label or new.FALLBACK_CLASS
        target = _migrated_class(old, new, cls) if mode == "migrate" or cls in new.classes else new.FALLBACK_CLASS
        have = tuple(sorted(lb for lb in e.labels or [] if lb != "Entity"))
        if have != tuple(sorted(new.labels_for(target))) or cls != target:
            groups.setdefault((have, target), []).append(e.id)
    for (have, target), ids in groups.items():
        graph.relabel_entities(ids, have, new.labels_for(target), target)
    graph.bump_revision()
    report.applied = "migrated" if mode == "migrate" else "quarantined"
    return report


def activate(data_dir: Path, ontology, source_file: Path) -> Path:
    """Copy the checked file in as this data directory's ontology; keep a copy per version."""
    d = Path(data_dir) / ACTIVE_DIR
    (d / "versions").mkdir(parents=True, exist_ok=True)
    suffix = Path(source_file).suffix.lower()
    name = f"active{suffix}"
    shutil.copyfile(source_file, d / (name + ".tmp"))
    (d / (name + ".tmp")).replace(d / name)
    safe_version = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in ontology.version)
    shutil.copyfile(source_file, d / "versions" / f"{safe_version}-{ontology.content_hash[:12]}{suffix}")
    note = {"file": name, "version": ontology.version, "iri": ontology.iri, "content_hash": ontology.content_hash,
            "source": str(source_file), "loaded_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (d / "active.json.tmp").write_text(json.dumps(note, indent=2))
    (d / "active.json.tmp").replace(d / "active.json")
    return d / name


def write_graph_config(graph: GraphStore, ontology: Ontology) -> None:
    """n10s-style config nodes: how IRIs map to names, the ontology version, and the namespace prefixes."""
    config = {"_handleVocabUris": "MAP", "_classLabel": "Class", "_subClassOfRel": "SCO",
              "_handleMultival": "ARRAY", "_keepLangTag": False, "_applyNeo4jNaming": False,
              "ontology_iri": ontology.iri, "ontology_version": ontology.version,
              "ontology_hash": ontology.content_hash, "ontology_namespace": ontology.namespace,
              "resource_uri_property": "uri", "class_hierarchy_labels": True}
    graph.write_graph_config(config, prefixes_for(ontology))


def read_graph_config(graph: GraphStore) -> dict[str, Any]:
    cfg, pre = graph.graph_config()
    strip = lambda d: {k: v for k, v in d.items() if not k.startswith("_labels") and k != "_id"}  # noqa: E731
    return {"config": strip(cfg), "prefixes": strip(pre)}
