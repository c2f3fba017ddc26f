"""Ontology loading: the bundled enterprise ontology, user ontologies in several formats, and every load error."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kgfactory.errors import OntologyError
from kgfactory.ontology.loader import default_ontology_path, load_ontology
from kgfactory.ontology.model import OntClass, Ontology

PREFIXES = """@prefix ex: <http://example.org/onto#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""

EXPECTED_CLASSES = {"Person", "Organization", "Company", "EducationalOrganization", "GovernmentOrganization",
                    "Product", "Technology", "SoftwareApplication", "Location", "City", "Country", "Event",
                    "CreativeWork", "Document", "Concept"}


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def onto() -> Ontology:
    return load_ontology()


# ------------------------------------------------------------------------------------------ default ontology

def test_default_ontology_header(onto):
    assert onto.iri == "https://kgfactory.dev/ontology"
    assert onto.version == "1.0.0"
    assert onto.namespace == "https://kgfactory.dev/ontology#"
    assert onto.prefixes["kgf"] == "https://kgfactory.dev/ontology#"
    assert onto.content_hash == hashlib.sha256(default_ontology_path().read_bytes()).hexdigest()


def test_default_ontology_classes(onto):
    assert set(onto.classes) == EXPECTED_CLASSES
    assert onto.entity_labels() == EXPECTED_CLASSES
    person = onto.classes["Person"]
    assert person.iri == "https://kgfactory.dev/ontology#Person"
    assert "https://schema.org/Person" in person.equivalent
    assert onto.classes["Company"].equivalent == ["https://schema.org/Corporation"]
    assert onto.classes["Location"].equivalent == ["https://schema.org/Place"]
    assert "Corporation" in onto.classes["Company"].alt_labels
    assert onto.classes["Technology"].parents == []


def test_hierarchy(onto):
    assert onto.ancestors("City") == ["Location"]
    assert onto.ancestors("SoftwareApplication") == ["Technology"]
    assert onto.ancestors("Person") == []
    assert onto.labels_for("Company") == ["Company", "Organization"]
    assert onto.labels_for("Document") == ["Document", "CreativeWork"]
    assert onto.is_a("Company", "Organization") and onto.is_a("Company", "Company")
    assert not onto.is_a("Organization", "Company")
    assert not onto.is_a("Nope", "Organization")
    with pytest.raises(OntologyError, match="Nope"):
        onto.labels_for("Nope")


def test_allows_respects_domain_range_and_subclasses(onto):
    assert onto.allows("worksFor", "Person", "Company")
    assert onto.allows("worksFor", "Person", "Organization")
    assert not onto.allows("worksFor", "Company", "Person")
    assert not onto.allows("worksFor", "Person", "City")
    assert not onto.allows("noSuchProperty", "Person", "Company")
    assert not onto.allows("worksFor", "Person", "NoSuchClass")
    assert onto.allows("relatedTo", "Concept", "City"), "no domain/range admits any class"


def test_union_domain_and_range(onto):
    assert set(onto.object_properties["locatedIn"].domain) == {"Organization", "Location", "Event"}
    assert onto.allows("locatedIn", "Company", "City")
    assert onto.allows("locatedIn", "City", "Country")
    assert onto.allows("locatedIn", "Event", "Location")
    assert not onto.allows("locatedIn", "Person", "City")
    assert set(onto.object_properties["produces"].range) == {"Product", "Technology"}
    assert onto.allows("produces", "Company", "SoftwareApplication")
    assert onto.allows("produces", "Company", "Product")
    assert not onto.allows("produces", "Company", "Person")
    assert onto.allows("participatedIn", "Person", "Event") and onto.allows("participatedIn", "Company", "Event")


def test_property_flags(onto):
    props = onto.object_properties
    assert props["spouse"].symmetric and not props["spouse"].transitive
    assert props["relatedTo"].symmetric
    assert props["locatedIn"].transitive and props["partOf"].transitive
    assert not props["worksFor"].symmetric and not props["worksFor"].transitive
    assert props["foundedBy"].inverse_of == "founded" and props["founded"].inverse_of == "foundedBy"
    assert props["worksFor"].inverse_of is None
    assert onto.allows("foundedBy", "Company", "Person") and not onto.allows("foundedBy", "Person", "Company")


def test_triggers_and_datatype_properties(onto):
    props = onto.object_properties
    assert {"works for", "employed by", "joined"} <= set(props["worksFor"].alt_labels)
    assert "headquartered in" in props["locatedIn"].alt_labels
    assert "in" not in props["locatedIn"].alt_labels
    assert props["relatedTo"].alt_labels == []
    assert all(p == p.lower() for prop in props.values() for p in prop.alt_labels)
    assert onto.relation_types() == set(props)
    dp = onto.datatype_properties
    assert set(dp) == {"name", "description", "foundingDate", "birthDate"}
    assert dp["foundingDate"].range_datatype == "http://www.w3.org/2001/XMLSchema#date"
    assert dp["birthDate"].domain == ["Person"]


def test_vocabulary(onto):
    vocab = onto.vocabulary()
    assert ("Nvidia", "Company", "NVIDIA") in vocab
    assert ("NVIDIA Corporation", "Company", "NVIDIA") in vocab
    assert ("MSFT", "Company", "Microsoft") in vocab
    assert ("Neo4j", "SoftwareApplication", "Neo4j") in vocab
    assert ("SF", "City", "San Francisco") in vocab
    assert ("Germany", "Country", "Germany") in vocab
    assert onto.individuals["NVIDIA"].class_name == "Company"
    assert all(cls in onto.classes for _, cls, _ in vocab)


def test_ner_mapping(onto):
    assert onto.class_for_ner_label("PERSON") == "Person"
    assert onto.class_for_ner_label("person") == "Person"
    assert onto.class_for_ner_label("ORG") == "Organization"
    assert onto.class_for_ner_label("GPE") == "Location"
    assert onto.class_for_ner_label("WORK_OF_ART") == "CreativeWork"
    assert onto.class_for_ner_label("NORP") == "Concept"
    assert onto.class_for_ner_label("DATE") is None
    assert Ontology.FALLBACK_CLASS == "Concept"


def test_nothing_is_cached(onto):
    again = load_ontology()
    assert again is not onto
    assert again == onto


# ------------------------------------------------------------------------------------------ user ontologies

USER = PREFIXES + """
<http://example.org/onto> a owl:Ontology .
ex:Animal a rdfs:Class ; rdfs:label "Animal"@en , "Tier"@de .
ex:Dog a owl:Class ; rdfs:subClassOf ex:Animal , ex:Pet , [ a owl:Restriction ] ; skos:altLabel "Hound" ;
    ex:nerLabel "ANIMAL" , "PET" .
ex:Pet a owl:Class ; rdfs:subClassOf owl:Thing ; ex:nerLabel "PET" .
ex:Human a owl:Class .
ex:owns a owl:ObjectProperty ; rdfs:domain ex:Human ; rdfs:range ex:Pet ; skos:altLabel "owns" .
ex:ownedBy a owl:ObjectProperty ; owl:inverseOf ex:owns .
ex:age a owl:DatatypeProperty ; rdfs:domain ex:Animal ; rdfs:range xsd:integer .
ex:Rex a owl:NamedIndividual , ex:Dog , ex:Animal ; rdfs:label "Rex" ; skos:altLabel "Rexie" .
"""


def test_user_turtle_ontology(tmp_path):
    path = write(tmp_path, "pets.ttl", USER)
    o = load_ontology(str(path))
    assert set(o.classes) == {"Animal", "Dog", "Pet", "Human", "Concept"}, "Concept is added implicitly"
    assert o.classes["Concept"].iri == "http://example.org/onto#Concept"
    assert o.namespace == "http://example.org/onto#"
    assert o.source == str(path)
    assert o.version == hashlib.sha256(path.read_bytes()).hexdigest()[:12], "no versionInfo: content hash"
    assert o.classes["Animal"].label == "Animal"
    assert o.classes["Dog"].parents == ["Animal", "Pet"]
    assert o.labels_for("Dog") == ["Dog", "Animal", "Pet"]
    assert o.class_for_ner_label("ANIMAL") == "Dog"
    assert o.class_for_ner_label("PET") == "Pet", "a label two classes claim goes to the more general one"
    assert o.allows("owns", "Human", "Dog") and not o.allows("owns", "Dog", "Human")
    owned = o.object_properties["ownedBy"]
    assert owned.inverse_of == "owns" and o.object_properties["owns"].inverse_of == "ownedBy"
    assert owned.domain == ["Pet"] and owned.range == ["Human"], "an inverse takes its partner's range/domain"
    assert o.datatype_properties["age"].range_datatype == "http://www.w3.org/2001/XMLSchema#integer"
    assert o.individuals["Rex"].class_name == "Dog", "the most specific declared type wins"
    assert o.vocabulary() == [("Rex", "Dog", "Rex"), ("Rexie", "Dog", "Rex")]


def test_slash_namespace_and_versioned(tmp_path):
    text = """@prefix owl: <http://www.w3.org/2002/07/owl#> .
<http://example.org/o/> a owl:Ontology ; owl:versionInfo "2.3" .
<http://example.org/o/Widget> a owl:Class .
"""
    o = load_ontology(write(tmp_path, "w.ttl", text))
    assert o.version == "2.3"
    assert o.namespace == "http://example.org/o/"
    assert set(o.classes) == {"Widget", "Concept"}


@pytest.mark.parametrize("suffix,fmt", [(".owl", "xml"), (".rdf", "xml"), (".xml", "xml"), (".jsonld", "json-ld"),
                                        (".nt", "nt"), (".n3", "n3")])
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # rdflib's own n3/json-ld internals
def test_other_serialisations_load_the_same(tmp_path, onto, suffix, fmt):
    from rdflib import Graph

    g = Graph()
    g.parse(default_ontology_path(), format="turtle")
    path = tmp_path / f"default{suffix}"
    g.serialize(destination=str(path), format=fmt, encoding="utf-8")
    o = load_ontology(path)
    assert set(o.classes) == set(onto.classes)
    assert {n: c.parents for n, c in o.classes.items()} == {n: c.parents for n, c in onto.classes.items()}
    assert o.object_properties == onto.object_properties, "unionOf domains, flags and triggers survive"
    assert o.individuals == onto.individuals
    assert o.version == "1.0.0"


# ------------------------------------------------------------------------------------------------- errors

def test_bad_turtle_names_file_and_line(tmp_path):
    text = PREFIXES + "ex:A a owl:Class .\nex:B a owl:Class ex:oops .\n"
    path = write(tmp_path, "bad.ttl", text)
    with pytest.raises(OntologyError) as ei:
        load_ontology(path)
    msg = str(ei.value)
    assert str(path) in msg
    assert "line 7:" in msg and "ex:oops" in msg, msg


def test_bad_rdfxml_names_file_and_line(tmp_path):
    text = ('<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
            '  <rdf:Description>\n</rdf:RDF>\n')
    path = write(tmp_path, "bad.owl", text)
    with pytest.raises(OntologyError) as ei:
        load_ontology(path)
    assert str(path) in str(ei.value) and "line 4" in str(ei.value), str(ei.value)


@pytest.mark.parametrize("name,text,line", [
    ("bad.nt", "<http://a/b> <http://a/c> <http://a/d> .\n# note\n<http://a/b> <http://a/c> .\n", 3),
    ("bad.jsonld", '{\n  "@id": "http://a/b",\n  "http://a/c": \n}\n', 4),
])
def test_bad_other_formats_name_file_and_line(tmp_path, name, text, line):
    path = write(tmp_path, name, text)
    with pytest.raises(OntologyError) as ei:
        load_ontology(path)
    assert str(path) in str(ei.value) and f"line {line}:" in str(ei.value), str(ei.value)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "onto.ttl"
    with pytest.raises(OntologyError, match="not found") as ei:
        load_ontology(path)
    assert str(path) in str(ei.value)


def test_unknown_suffix(tmp_path):
    path = write(tmp_path, "onto.txt", USER)
    with pytest.raises(OntologyError, match=r"unknown ontology format '\.txt'"):
        load_ontology(path)


def test_no_classes(tmp_path):
    path = write(tmp_path, "empty.ttl", PREFIXES + "ex:p a owl:ObjectProperty .\n")
    with pytest.raises(OntologyError, match="declares no classes") as ei:
        load_ontology(path)
    assert str(path) in str(ei.value)


def test_undeclared_domain_class(tmp_path):
    text = PREFIXES + "ex:A a owl:Class .\nex:p a owl:ObjectProperty ; rdfs:domain ex:Ghost ; rdfs:range ex:A .\n"
    with pytest.raises(OntologyError, match=r"property p .*rdfs:domain http://example.org/onto#Ghost"):
        load_ontology(write(tmp_path, "ghost.ttl", text))


def test_undeclared_class_inside_union_range(tmp_path):
    text = PREFIXES + ("ex:A a owl:Class .\n"
                       "ex:p a owl:ObjectProperty ; rdfs:range [ owl:unionOf ( ex:A ex:Phantom ) ] .\n")
    with pytest.raises(OntologyError, match=r"property p .*rdfs:range .*Phantom"):
        load_ontology(write(tmp_path, "phantom.ttl", text))


def test_undeclared_datatype_property_domain(tmp_path):
    text = PREFIXES + "ex:A a owl:Class .\nex:d a owl:DatatypeProperty ; rdfs:domain ex:Ghost .\n"
    with pytest.raises(OntologyError, match=r"property d .*Ghost"):
        load_ontology(write(tmp_path, "dghost.ttl", text))


def test_subclass_cycle(tmp_path):
    text = PREFIXES + ("ex:A a owl:Class ; rdfs:subClassOf ex:B .\nex:B a owl:Class ; rdfs:subClassOf ex:C .\n"
                       "ex:C a owl:Class ; rdfs:subClassOf ex:A .\nex:D a owl:Class ; rdfs:subClassOf ex:A .\n")
    with pytest.raises(OntologyError, match=r"cycle: A -> B -> C -> A"):
        load_ontology(write(tmp_path, "cycle.ttl", text))


def test_self_subclass_is_not_a_cycle(tmp_path):
    o = load_ontology(write(tmp_path, "self.ttl", PREFIXES + "ex:A a owl:Class ; rdfs:subClassOf ex:A .\n"))
    assert o.ancestors("A") == []


@pytest.mark.parametrize("decl,iri", [
    ("<http://example.org/onto#Bad-Name> a owl:Class .", "http://example.org/onto#Bad-Name"),
    ("<http://example.org/onto#9Lives> a owl:Class .", "http://example.org/onto#9Lives"),
    ("ex:A a owl:Class .\n<http://example.org/onto#works%20for> a owl:ObjectProperty .",
     "http://example.org/onto#works%20for"),
])
def test_invalid_identifier_names(tmp_path, decl, iri):
    with pytest.raises(OntologyError) as ei:
        load_ontology(write(tmp_path, "names.ttl", PREFIXES + decl + "\n"))
    assert iri in str(ei.value) and "graph label" in str(ei.value)


def test_model_rejects_invalid_class_name():
    bad = OntClass(iri="http://x/onto#a b", name="a b", label="a b")
    with pytest.raises(OntologyError, match="a b"):
        Ontology(iri="http://x/onto", version="1", namespace="http://x/onto#", classes={"a b": bad})


def test_unsupported_class_expression(tmp_path):
    text = PREFIXES + ("ex:A a owl:Class .\nex:B a owl:Class .\n"
                       "ex:p a owl:ObjectProperty ; rdfs:domain [ owl:intersectionOf ( ex:A ex:B ) ] .\n")
    with pytest.raises(OntologyError, match="unsupported class expression"):
        load_ontology(write(tmp_path, "inter.ttl", text))
