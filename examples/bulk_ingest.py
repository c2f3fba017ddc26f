"""Bulk ingest of a folder (walked recursively: .txt .md .html .pdf .json .jsonl) with a progress line.

    python examples/bulk_ingest.py FOLDER [--tag finance] [--url http://127.0.0.1:8765]

In-process by default (the data directory is $KGF_DATA_DIR or ./kgf-data); with --url (or $KGF_API_URL) the files
are uploaded to a running `kgf serve` in jobs of up to 32 files, and the progress comes from polling those jobs.
Bad files (empty, binary, malformed) are reported with the reason; the rest go in.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import kgfactory
from kgfactory.sdk import Client, IngestProgress

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("folder", nargs="?", default=Path(kgfactory.__file__).parent / "samples" / "corpus", type=Path)
ap.add_argument("--tag", action="append", default=[], help="tag every document (repeatable)")
ap.add_argument("--url", default=os.environ.get("KGF_API_URL"), help="a kgf serve URL (default: in-process)")
args = ap.parse_args()
start = time.perf_counter()


def show(p: IngestProgress) -> None:
    print(f"\r{p.documents_processed} documents processed from {p.files_total} files, "
          f"jobs {p.jobs_done}/{p.jobs_total}, {time.perf_counter() - start:.1f} s", end="", file=sys.stderr, flush=True)


with (Client(args.url) if args.url else kgfactory.KnowledgeBase.open()) as kb:
    result = kb.ingest(args.folder, tags=args.tag, progress=show)
    print(file=sys.stderr)
    print(f"added {result.documents_added}, replaced {result.documents_replaced}, unchanged "
          f"{result.documents_unchanged}, chunks {result.chunks} in {time.perf_counter() - start:.1f} s")
    for err in result.errors:
        print(f"  skipped {err['file']}: {err['reason']}")
    print(f"{len(kb.documents())} documents stored")
