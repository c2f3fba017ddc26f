"""The real embedding model and spaCy pipelines: offline load, integrity check, the two spaCy choices."""
from __future__ import annotations

import numpy as np
import pytest

from kgfactory.errors import ConfigError, EmbeddingError
from kgfactory.ingest.embedder import SentenceTransformerEmbedder
from kgfactory.ingest.spacy_extractor import SpacyExtractor
from kgfactory.types import Chunk


def test_embeddings_are_normalised_and_meaningful(embedder):
    v = embedder.embed(["Helios Robotics builds warehouse robots.", "A company that makes robots for warehouses.",
                        "Lyon is on the Rhone river."])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert embedder.model_id.endswith("@53aa5117")


def test_wrong_weights_hash_is_refused():
    e = SentenceTransformerEmbedder(sha256_prefix="deadbeef")
    with pytest.raises(EmbeddingError, match="does not start with deadbeef"):
        e.embed(["x"])


def test_unknown_model_setting_names_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="KGF_EMBED_MODEL"):
        SentenceTransformerEmbedder(str(tmp_path / "nowhere")).embed(["x"])


def _chunk(text: str) -> Chunk:
    return Chunk(id="c1", doc_id="d1", index=0, text=text, start=0, end=len(text))


TEXT = "Tomas Berg works for NVIDIA in Santa Clara. Anna Schmidt joined a startup in Berlin."


def test_trained_pipeline_finds_unlisted_names(extractor):
    x = extractor.extract([_chunk(TEXT)])
    by_name = {e.name: e for e in x.entities}
    assert by_name["NVIDIA"].label == "Company" and by_name["NVIDIA"].source == "vocabulary"
    assert by_name["Tomas Berg"].label == "Person" and by_name["Tomas Berg"].source == "ner"
    assert any(r.type == "worksFor" for r in x.relations)
    assert extractor.name.startswith("spacy:en_core_web_sm")


def test_blank_pipeline_uses_the_vocabulary_only(ontology):
    ex = SpacyExtractor(ontology, model="blank")
    x = ex.extract([_chunk(TEXT)])
    assert {e.name for e in x.entities} == {"NVIDIA", "Santa Clara", "Berlin"}
    assert {e.source for e in x.entities} == {"vocabulary"}
    assert ex.name == "spacy:blank+ruler"


def test_missing_named_pipeline_is_a_config_error(ontology):
    with pytest.raises(ConfigError, match="KGF_SPACY_MODEL"):
        SpacyExtractor(ontology, model="xx_not_installed").extract([_chunk("x")])
