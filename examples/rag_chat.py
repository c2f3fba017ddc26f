"""A RAG chat in 30 lines: answers from your documents, with citations. No LLM needed (the answer quotes the best
sentences); set KGF_LLM_BASE_URL for generated answers. In-process by default ($KGF_DATA_DIR); with $KGF_API_URL
set, the same code talks to a running `kgf serve` through the HTTP client instead.

    python examples/rag_chat.py "Who founded Helios Robotics?"   # answer these questions
    python examples/rag_chat.py                                   # chat on stdin; an empty line quits
"""
import os
import sys
from pathlib import Path

import kgfactory
from kgfactory.sdk import Client

kb = Client() if os.environ.get("KGF_API_URL") else kgfactory.KnowledgeBase.open()
with kb:
    if not kb.documents():  # first run: the sample corpus that ships with kgfactory
        kb.ingest(Path(kgfactory.__file__).parent / "samples" / "corpus")
    questions = sys.argv[1:] or iter(lambda: (sys.stdin.readline() or "\n").strip(), "")
    for question in questions:
        print(f"? {question}")
        for piece in kb.ask_stream(question):  # answer text as it comes, then the answer with its citations
            if isinstance(piece, str):
                print(piece, end="", flush=True)
            else:
                print(f"\n({piece.kind} answer)")
                for n, c in enumerate(piece.citations, 1):
                    print(f"  [{n}] {c.title}: {c.source} chars {c.start}-{c.end}")
