"""Repair of the almost-JSON that small local models emit: code fences, prose around the object, trailing
commas, single quotes, Python literals, comments, and output cut off mid-object (brackets closed)."""
from __future__ import annotations

import ast
import json
import re

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_LINE_COMMENT = re.compile(r"^\s*//.*$", re.M)


def parse_json_object(text: str) -> dict:
    """The first JSON object in `text`, repaired if needed. ValueError (with the reason) when nothing fits."""
    if not text or not text.strip():
        raise ValueError("empty reply")
    fence = _FENCE.search(text)
    body = fence.group(1) if fence else text
    start = body.find("{")
    if start < 0:
        raise ValueError("no JSON object in the reply")
    body = body[start:]
    end = body.rfind("}")
    candidates = [body[: end + 1]] if end >= 0 else []
    candidates.append(_close(body))  # cut off mid-object: close what is open
    last = "no JSON object"
    for cand in candidates:
        for fixed in (cand, _TRAILING_COMMA.sub(r"\1", _LINE_COMMENT.sub("", cand))):
            try:
                out = json.loads(fixed)
            except json.JSONDecodeError as e:
                last = f"invalid JSON ({e.msg} at char {e.pos})"
                out = _python_literal(fixed)
            if isinstance(out, dict):
                return out
            if out is not None:
                last = f"expected an object, got {type(out).__name__}"
    raise ValueError(last)


def _python_literal(text: str):
    """{'a': True, 'b': None} style: what a model trained on Python writes."""
    try:
        return ast.literal_eval(re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnull\b", "None", text))))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def _close(body: str) -> str:
    """Close an unterminated string and every open bracket, dropping a dangling partial member."""
    stack, in_str, esc = [], False, False
    for ch in body:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    out = body + ('"' if in_str else "")
    out = re.sub(r',\s*("[^"]*"\s*:?\s*)?$', "", out.rstrip())  # `, "key":` or `, "partial"` at the end
    out = re.sub(r':\s*$', ': null', out)
    return out + "".join(reversed(stack))
