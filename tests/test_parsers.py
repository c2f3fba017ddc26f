"""Parsers on real files written to tmp_path: every format, every rejection, ids and directory walking."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgfactory.errors import ParseError
from kgfactory.ingest.parsers import SUPPORTED_SUFFIXES, iter_documents, parse_file
from kgfactory.types import Document, FileError, content_id

BENCH_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "bench-data"


def _split(items):
    items = list(items)
    return [i for i in items if isinstance(i, Document)], [i for i in items if isinstance(i, FileError)]


def _one_error(path, **kw) -> FileError:
    docs, errors = _split(iter_documents([path], **kw))
    assert docs == []
    assert len(errors) == 1, errors
    return errors[0]


def _pdf_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(page_texts: list[str | None], title: str | None = None) -> bytes:
    """A minimal valid PDF written by hand: one Helvetica text line per page (None = an empty page)."""
    n = len(page_texts)
    font_id, first_page = 3, 4
    objs: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: ("<< /Type /Pages /Kids [%s] /Count %d >>"
            % (" ".join(f"{first_page + 2 * k} 0 R" for k in range(n)), n)).encode(),
        font_id: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for k, text in enumerate(page_texts):
        page_id, content_id_ = first_page + 2 * k, first_page + 2 * k + 1
        stream = f"BT /F1 12 Tf 72 720 Td ({_pdf_escape(text)}) Tj ET".encode() if text else b""
        objs[page_id] = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                         f"/Resources << /Font << /F1 {font_id} 0 R >> >> /Contents {content_id_} 0 R >>").encode()
        objs[content_id_] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    info_id = None
    if title is not None:
        info_id = max(objs) + 1
        objs[info_id] = f"<< /Title ({_pdf_escape(title)}) >>".encode()

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for oid in sorted(objs):
        offsets[oid] = len(out)
        out += b"%d 0 obj\n" % oid + objs[oid] + b"\nendobj\n"
    xref_at = len(out)
    size = max(objs) + 1
    out += b"xref\n0 %d\n" % size + b"0000000000 65535 f \n"
    for oid in range(1, size):
        out += b"%010d 00000 n \n" % offsets[oid]
    trailer = f"<< /Size {size} /Root 1 0 R" + (f" /Info {info_id} 0 R" if info_id else "") + " >>"
    out += b"trailer\n" + trailer.encode() + b"\nstartxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


# -- plain text and markdown ------------------------------------------------------------------------------
def test_txt_document_fields(tmp_path):
    raw = b"Marie Dubois founded Helios Robotics.\r\nIt is based in Lyon.\n"
    f = tmp_path / "people.txt"
    f.write_bytes(raw)
    docs, errors = _split(iter_documents([f], tenant="acme", tags=["hr", "2025"], metadata={"owner": "ops"}))
    assert errors == []
    [d] = docs
    source = str(f.resolve())
    assert d.source == source
    assert d.id == content_id(source, raw, prefix="doc_")
    assert d.title == "people"
    assert d.mime == "text/plain"
    assert d.text == "Marie Dubois founded Helios Robotics.\nIt is based in Lyon.\n"
    assert (d.tenant, d.tags) == ("acme", ["hr", "2025"])
    assert d.metadata == {"owner": "ops", "path": source}
    assert d.pages == []


def test_txt_with_bom_decodes(tmp_path):
    f = tmp_path / "bom.txt"
    f.write_bytes(b"\xef\xbb\xbfCaf\xc3\xa9 au lait")
    [d] = parse_file(f)
    assert d.text == "Café au lait"


def test_markdown_title_and_text_kept_verbatim(tmp_path):
    body = "```\n# not a title\n```\n\nIntro line.\n\n# Helios Robotics #\n\nSome *emphasis* and a [link](http://x).\n"
    f = tmp_path / "notes.md"
    f.write_text(body, encoding="utf-8")
    [d] = parse_file(f)
    assert d.title == "Helios Robotics"
    assert d.mime == "text/markdown"
    assert d.text == body


def test_markdown_without_heading_uses_stem(tmp_path):
    f = tmp_path / "plain-notes.markdown"
    f.write_text("## Only a level two heading\n\ntext\n")
    [d] = parse_file(f)
    assert d.title == "plain-notes"
    assert d.mime == "text/markdown"


# -- html -------------------------------------------------------------------------------------------------
HTML = """<!doctype html>
<html><head><title>Cities of the network</title><script>var tracking = 1;</script>
<style>p { color: red }</style></head>
<body class="has-sidebar">
<header>Site header</header>
<nav class="menu">Home | About</nav>
<div id="cookie-banner">We use cookies. Accept?</div>
<main>
  <h1>Cities</h1>
  <p>Lyon is a city in France.</p>


  <p>Oslo is the capital of Norway.   </p>
  <div class="sidebar-widget">Related links</div>
  <form><input value="search"></form>
</main>
<aside>Ads</aside>
<footer>Copyright 2026</footer>
</body></html>"""


def test_html_boilerplate_removed_and_title(tmp_path):
    f = tmp_path / "places.html"
    f.write_text(HTML, encoding="utf-8")
    [d] = parse_file(f)
    assert d.title == "Cities of the network"
    assert d.mime == "text/html"
    assert d.text == "Cities\n\nLyon is a city in France.\n\nOslo is the capital of Norway."
    for junk in ("tracking", "color", "Site header", "Home", "cookies", "Related", "search", "Ads", "Copyright"):
        assert junk not in d.text


def test_html_title_falls_back_to_h1_then_article(tmp_path):
    f = tmp_path / "post.htm"
    f.write_text("<html><body><div class='menu'>Nav</div><article><h1>First post</h1><p>Body text.</p></article>"
                 "<p>outside the article</p></body></html>")
    [d] = parse_file(f)
    assert d.title == "First post"
    assert d.text == "First post\nBody text."


def test_html_only_boilerplate_is_an_error(tmp_path):
    f = tmp_path / "shell.html"
    f.write_text("<html><head><title>App</title><script>boot()</script></head><body><nav>Menu</nav></body></html>")
    e = _one_error(f)
    assert e.source == str(f.resolve())
    assert e.reason == "no text after removing boilerplate"


# -- pdf --------------------------------------------------------------------------------------------------
def test_pdf_pages_and_spans(tmp_path):
    f = tmp_path / "report.pdf"
    raw = make_pdf(["Hello page one", "Hello page two (second)"])
    f.write_bytes(raw)
    [d] = parse_file(f, metadata={"dept": "r&d"})
    assert d.mime == "application/pdf"
    assert d.title == "report"
    assert d.id == content_id(str(f.resolve()), raw, prefix="doc_")
    assert d.metadata == {"dept": "r&d", "path": str(f.resolve()), "page_count": 2}
    assert [p.page for p in d.pages] == [1, 2]
    p1, p2 = d.pages
    assert d.text[p1.start:p1.end].strip() == "Hello page one"
    assert d.text[p2.start:p2.end].strip() == "Hello page two (second)"
    assert d.text == "Hello page one\n\nHello page two (second)"  # pypdf read back what was written
    assert (p1.start, p2.end) == (0, len(d.text))
    assert d.page_at(d.text.index("two")) == 2
    assert d.page_at(d.text.index("one")) == 1


def test_pdf_metadata_title(tmp_path):
    f = tmp_path / "x.pdf"
    f.write_bytes(make_pdf(["Some text"], title="Annual Report"))
    [d] = parse_file(f)
    assert d.title == "Annual Report"


def test_pdf_without_text_is_an_error(tmp_path):
    f = tmp_path / "scan.pdf"
    f.write_bytes(make_pdf([None]))
    e = _one_error(f)
    assert e.reason == "PDF has no extractable text (scanned? run OCR first)"


def test_pdf_corrupt_is_an_error(tmp_path):
    f = tmp_path / "broken.pdf"
    f.write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    e = _one_error(f)
    assert e.source == str(f.resolve())
    assert e.reason.startswith("not a readable PDF")


# -- json corpora -----------------------------------------------------------------------------------------
@pytest.mark.skipif(not (BENCH_DATA / "sample_corpus.json").is_file(), reason="shared bench-data not present")
def test_json_list_corpus_real_sample():
    path = BENCH_DATA / "sample_corpus.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    docs, errors = _split(iter_documents([path], tags=["bench"]))
    assert errors == []
    assert len(docs) == len(records) == 3
    base = str(path.resolve())
    for i, (d, rec) in enumerate(zip(docs, records)):
        assert d.source == f"{base}#{i}"
        assert d.title == rec["title"]
        assert d.text == rec["text"]
        assert d.mime == "text/plain"
        assert d.tags == ["bench"]
        assert d.metadata == {"idx": rec["idx"], "path": base, "record_index": i}
        canonical = json.dumps(rec, sort_keys=True, ensure_ascii=False).encode("utf-8")
        assert d.id == content_id(f"{base}#{i}", canonical, prefix="doc_")
    assert docs[0].title == "Thomas C. Sudhof"


def test_hotpot_style_dict_corpus(tmp_path):
    f = tmp_path / "hotpot.json"
    f.write_text(json.dumps({
        "Demon Dice": ["Demon Dice is a dice game.", " It was created by Lester Smith."],
        "Lyon": "Lyon is a city in France.",
        "Broken": 42,
    }))
    docs, errors = _split(iter_documents([f]))
    assert [(d.title, d.text) for d in docs] == [
        ("Demon Dice", "Demon Dice is a dice game. It was created by Lester Smith."),
        ("Lyon", "Lyon is a city in France."),
    ]
    assert [d.source for d in docs] == [f"{f.resolve()}#0", f"{f.resolve()}#1"]
    assert [e.source for e in errors] == [f"{f.resolve()}#2"]
    assert "'Broken'" in errors[0].reason and "a number" in errors[0].reason


def test_single_object_json(tmp_path):
    f = tmp_path / "one.json"
    f.write_text(json.dumps({"title": "Solo", "text": "Just one passage.", "url": "http://e.x"}))
    [d] = parse_file(f)
    assert (d.title, d.text, d.source) == ("Solo", "Just one passage.", f"{f.resolve()}#0")
    assert d.metadata["url"] == "http://e.x"


def test_json_records_missing_or_bad_text(tmp_path):
    f = tmp_path / "corpus.json"
    f.write_text(json.dumps([
        {"title": "Good", "text": "Fine passage."},
        {"title": "No text here"},
        "just a string",
        {"title": "Wrong type", "text": ["a", "b"]},
        {"title": "Blank", "text": "   "},
        {"text": "Untitled passage.", "idx": 7},
        {"title": "Too long", "text": "x" * 101},
    ]))
    docs, errors = _split(iter_documents([f], max_record_chars=100))
    base = str(f.resolve())
    assert [(d.title, d.source) for d in docs] == [("Good", f"{base}#0"), ("record 5", f"{base}#5")]
    assert docs[1].metadata["idx"] == 7
    reasons = {e.source: e.reason for e in errors}
    assert reasons == {
        f"{base}#1": "record has no 'text' field",
        f"{base}#2": "record is a string, expected an object with a 'text' field",
        f"{base}#3": "record field 'text' is a list, expected a string",
        f"{base}#4": "record field 'text' is empty",
        f"{base}#6": "record text is 101 characters, over the limit of 100 (KGF_MAX_RECORD_CHARS)",
    }
    # parse_file keeps the good records and hands the bad ones back when asked
    errs: list[FileError] = []
    assert [d.title for d in parse_file(f, max_record_chars=100, errors=errs)] == ["Good", "record 5"]
    assert len(errs) == 5


def test_invalid_json_names_line_and_column(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text('[\n  {"title": "a", "text": "b"},\n  {"title": oops}\n]\n')
    with pytest.raises(ParseError) as ei:
        parse_file(f)
    assert ei.value.source == str(f.resolve())
    assert ei.value.reason.startswith("invalid JSON at line 3 column 13:")


def test_jsonl_malformed_line_others_survive(tmp_path):
    f = tmp_path / "news.jsonl"
    lines = [json.dumps({"title": "A", "text": "First."}), "", "{not json",
             json.dumps({"title": "B", "text": "Second.", "lang": "en"}), json.dumps({"title": "C"})]
    f.write_text("\n".join(lines) + "\n")
    docs, errors = _split(iter_documents([f]))
    base = str(f.resolve())
    assert [(d.title, d.text) for d in docs] == [("A", "First."), ("B", "Second.")]
    # record index counts non-blank lines (the bad one included) so fixing a line renumbers nothing
    assert [d.source for d in docs] == [f"{base}#0", f"{base}#2"]
    assert docs[1].metadata == {"lang": "en", "path": base, "record_index": 2, "line": 4}
    assert [e.source for e in errors] == [f"{base}:3", f"{base}:5"]
    assert errors[0].reason.startswith("invalid JSON: Expecting property name")
    assert errors[1].reason == "record has no 'text' field"


def test_jsonl_bad_utf8_line_only_loses_that_line(tmp_path):
    f = tmp_path / "mixed.jsonl"
    first = json.dumps({"text": "ok"}).encode() + b"\n"
    f.write_bytes(first + b'{"text": "caf\xe9"}\n' + json.dumps({"text": "also ok"}).encode() + b"\n")
    docs, errors = _split(iter_documents([f]))
    assert [d.text for d in docs] == ["ok", "also ok"]
    [e] = errors
    assert e.source == f"{f.resolve()}:2"
    assert e.reason.startswith(f"not valid UTF-8 at byte {len(first) + 13}")


# -- rejected files -----------------------------------------------------------------------------------------
def test_binary_file_rejected(tmp_path):
    f = tmp_path / "binary.txt"
    f.write_bytes(b"PK\x03\x04\x00\x01\x02 not text")
    e = _one_error(f)
    assert e.source == str(f.resolve())
    assert "looks binary" in e.reason and "offset 4" in e.reason


@pytest.mark.parametrize("content", [b"", b"  \n\t\r\n  "])
def test_empty_file_rejected(tmp_path, content):
    f = tmp_path / "empty.md"
    f.write_bytes(content)
    assert _one_error(f).reason.startswith("empty file")


def test_bad_utf8_names_byte_offset(tmp_path):
    f = tmp_path / "latin1.md"
    f.write_bytes("Café au lait".encode("latin-1"))
    e = _one_error(f)
    assert e.reason == "not valid UTF-8 at byte 3 (0xe9); re-save as UTF-8"


def test_bad_utf8_offset_counts_the_bom(tmp_path):
    f = tmp_path / "bom-latin1.txt"
    f.write_bytes(b"\xef\xbb\xbfab\xff")
    assert _one_error(f).reason.startswith("not valid UTF-8 at byte 5 ")


def test_oversized_file_rejected_before_reading(tmp_path):
    f = tmp_path / "big.txt"
    f.write_text("x" * 200)
    e = _one_error(f, max_file_bytes=100)
    assert e.reason == "file is 200 bytes, over the limit of 100 (KGF_MAX_FILE_BYTES)"
    with pytest.raises(ParseError, match="over the limit of 100"):
        parse_file(f, max_file_bytes=100)


def test_unsupported_suffix_explicit(tmp_path):
    f = tmp_path / "sheet.xlsx"
    f.write_bytes(b"whatever")
    e = _one_error(f)
    assert e.source == str(f.resolve())
    assert e.reason.startswith("unsupported file type .xlsx (supported: ")
    for s in SUPPORTED_SUFFIXES:
        assert s in e.reason


def test_missing_path(tmp_path):
    missing = tmp_path / "nope" / "missing.txt"
    e = _one_error(missing)
    assert e.source == str(missing.resolve())
    assert e.reason == "no such file or directory"
    with pytest.raises(ParseError, match="no such file"):
        parse_file(missing)


def test_bad_files_do_not_stop_the_batch(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("Good text.")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\x00\x00")
    items = list(iter_documents([bad, tmp_path / "missing.txt", good]))
    assert [type(i).__name__ for i in items] == ["FileError", "FileError", "Document"]
    assert items[2].text == "Good text."


# -- directories and ids --------------------------------------------------------------------------------------
def test_directory_walk_recursive_sorted_hidden_skipped(tmp_path):
    root = tmp_path / "corpus"
    (root / "b_sub" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "a.txt").write_text("alpha")
    (root / "c.md").write_text("# Charlie\n\ncharlie")
    (root / "b_sub" / "b.txt").write_text("bravo")
    (root / "b_sub" / "deeper" / "d.jsonl").write_text(json.dumps({"text": "delta"}) + "\n")
    (root / "b_sub" / "notes.docx").write_bytes(b"unsupported, skipped silently")
    (root / ".hidden.txt").write_text("hidden file")
    (root / ".git" / "config.txt").write_text("hidden dir")
    (root / "README").write_text("no suffix")
    items = list(iter_documents([root, root / "a.txt"]))  # a.txt twice: parsed once
    assert all(isinstance(i, Document) for i in items), items
    assert [i.text for i in items] == ["alpha", "bravo", "delta", "# Charlie\n\ncharlie"]
    assert [Path(i.source.split("#")[0]).name for i in items] == ["a.txt", "b.txt", "d.jsonl", "c.md"]


def test_hidden_file_parsed_when_named_explicitly(tmp_path):
    f = tmp_path / ".env.txt"
    f.write_text("explicit")
    [d] = parse_file(f)
    assert d.text == "explicit"


def test_ids_stable_for_same_bytes_and_change_with_bytes(tmp_path):
    f = tmp_path / "doc.txt"
    f.write_text("version one")
    first = parse_file(f)[0].id
    assert parse_file(f, tenant="other", tags=["x"])[0].id == first  # id depends on source + bytes only
    f.write_text("version two")
    second = parse_file(f)[0].id
    assert second != first
    f.write_text("version one")
    assert parse_file(f)[0].id == first
    other = tmp_path / "copy.txt"
    other.write_text("version one")
    assert parse_file(other)[0].id != first  # same bytes, different source


def test_record_ids_ignore_json_formatting(tmp_path):
    a = tmp_path / "c.json"
    a.write_text('[{"title": "T", "text": "Same passage."}]')
    id1 = parse_file(a)[0].id
    a.write_text('[\n  {"text":"Same passage.",   "title":"T"}\n]\n')
    assert parse_file(a)[0].id == id1
    a.write_text('[{"title": "T", "text": "Changed passage."}]')
    assert parse_file(a)[0].id != id1
