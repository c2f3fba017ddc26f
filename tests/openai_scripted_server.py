"""A real HTTP server on loopback that speaks the OpenAI chat-completions protocol (JSON and SSE streaming)
with scripted replies, so the real `openai` client is tested over real HTTP. Not a mock of the client: the
client, its HTTP stack and the SSE parsing are all real; only the model's words are scripted.

`server.replies` is a queue of Reply objects used in order; when it is empty `server.default(request)` makes
the reply. Every request body is recorded in `server.requests`.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


@dataclass
class Reply:
    text: str = ""
    status: int = 200
    delay_s: float = 0.0  # before the response headers (a slow model: client timeouts)
    headers: dict = field(default_factory=dict)
    usage: tuple[int, int] | None = (20, 5)  # (prompt, completion) tokens; None = the server reports none
    cut_after: int | None = None  # stream: drop the connection after this many tokens


def _tokens(text: str) -> list[str]:
    out, cur = [], ""
    for ch in text:
        cur += ch
        if ch == " ":
            out.append(cur)
            cur = ""
    return out + ([cur] if cur else [])


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client that timed out and hung up: expected here
        pass


class ScriptedOpenAIServer:
    def __init__(self, model: str = "scripted-model"):
        self.model = model
        self.replies: list[Reply] = []
        self.requests: list[dict] = []
        self.default: Callable[[dict], Reply] = lambda req: Reply(text="ok")
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> "ScriptedOpenAIServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def chat_requests(self) -> list[dict]:
        return [r for r in self.requests if "messages" in r]

    def _next(self, req: dict) -> Reply:
        with self._lock:
            self.requests.append(req)
            return self.replies.pop(0) if self.replies else self.default(req)

    def _handler(self):
        server = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def _json(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    with server._lock:
                        server.requests.append({"path": self.path})
                    self._json(200, {"object": "list", "data": [{"id": server.model, "object": "model",
                                                                 "created": 0, "owned_by": "test"}]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                req = json.loads(self.rfile.read(n) or b"{}")
                req["_auth"] = self.headers.get("Authorization")
                r = server._next(req)
                if r.delay_s:
                    time.sleep(r.delay_s)
                if r.status != 200:
                    self._json(r.status, {"error": {"message": f"scripted {r.status}", "type": "scripted"}}, r.headers)
                    return
                model = req.get("model", server.model)
                usage = ({"prompt_tokens": r.usage[0], "completion_tokens": r.usage[1],
                          "total_tokens": sum(r.usage)} if r.usage else None)
                if not req.get("stream"):
                    self._json(200, {"id": "cmpl-1", "object": "chat.completion", "created": 0, "model": model,
                                     "choices": [{"index": 0, "finish_reason": "stop",
                                                  "message": {"role": "assistant", "content": r.text}}],
                                     "usage": usage})
                    return
                base = {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model}
                events = [{**base, "choices": [{"index": 0, "delta": {"content": tok}, "finish_reason": None}]}
                          for tok in _tokens(r.text)]
                events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                if usage and (req.get("stream_options") or {}).get("include_usage"):
                    events.append({**base, "choices": [], "usage": usage})
                frames = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                if r.cut_after is not None:  # promise the whole body, send part of it, hang up: a broken stream
                    self.send_header("Content-Length", str(sum(map(len, frames))))
                    frames = frames[: r.cut_after]
                else:
                    self.send_header("Connection", "close")
                self.end_headers()
                for f in frames:
                    self.wfile.write(f)
                    self.wfile.flush()
                    time.sleep(0.002)
                self.close_connection = True

        return H
