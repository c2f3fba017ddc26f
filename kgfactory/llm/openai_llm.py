"""LLM port adapter over the `openai` client: any OpenAI-compatible chat endpoint (vLLM, Ollama, NVIDIA NIM,
TGI, LM Studio, OpenAI itself).

The client's own retries are off: this adapter retries 429, 408, 5xx, timeouts and refused connections with
exponential backoff (Retry-After wins), counts failures in a circuit breaker, charges tokens to the tenant in
the ledger, and wraps every vendor exception in an LLMError at this boundary.
"""
from __future__ import annotations

import logging
import math
import random
import threading
import time
from typing import Any, Callable, Iterator, TypeVar

import openai

from ..errors import ConfigError, LLMError, LLMRefusedError, LLMUnavailableError
from ..types import Completion
from .breaker import CircuitBreaker
from .ledger import TokenLedger

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_STATUS = {408, 409, 429}
MAX_DELAY_S = 30.0


def estimate_tokens(text: str) -> int:
    """About four characters a token: used only when a server reports no usage."""
    return math.ceil(len(text) / 4) if text else 0


class OpenAILLM:
    def __init__(self, base_url: str = "", model: str = "", api_key: str = "", timeout_s: float = 60.0,
                 max_retries: int = 2, backoff_s: float = 0.5, breaker: CircuitBreaker | None = None,
                 ledger: TokenLedger | None = None, temperature: float = 0.0, max_tokens: int = 512):
        if not base_url and not api_key:
            raise ConfigError("KGF_LLM_BASE_URL is empty and KGF_LLM_API_KEY too: set the endpoint's URL "
                              "(e.g. http://localhost:8000/v1), or a key for api.openai.com")
        self.base_url = base_url or "https://api.openai.com/v1"
        self._model = model
        self.max_retries, self.backoff_s = max_retries, backoff_s
        self.breaker = breaker or CircuitBreaker()
        self.ledger = ledger
        self.temperature, self.max_tokens = temperature, max_tokens
        self._lock = threading.Lock()
        # the client opens no connection until the first request
        self._client = openai.OpenAI(base_url=self.base_url, api_key=api_key or "not-needed", timeout=timeout_s,
                                     max_retries=0)

    # -- model --------------------------------------------------------------------------------------
    @property
    def model(self) -> str:
        """The configured model, or the first one the endpoint lists (vLLM and Ollama serve one or a few)."""
        with self._lock:
            if not self._model:
                ids = self.list_models()
                if not ids:
                    raise ConfigError(f"KGF_LLM_MODEL is empty and {self.base_url} lists no models")
                self._model = ids[0]
                log.info("LLM model not set; using %s, the first listed by %s", self._model, self.base_url)
            return self._model

    def list_models(self) -> list[str]:
        return [m.id for m in self._call(lambda: list(self._client.models.list()))]

    def close(self) -> None:
        self._client.close()

    # -- requests -----------------------------------------------------------------------------------
    def _params(self, messages: list[dict[str, str]], kwargs: dict[str, Any]) -> dict[str, Any]:
        params = {"model": self.model, "messages": messages, "temperature": self.temperature,
                  "max_tokens": self.max_tokens}
        params.update(kwargs)
        return params

    def complete(self, messages: list[dict[str, str]], *, tenant: str = "default", **kwargs: Any) -> Completion:
        if self.ledger:
            self.ledger.check(tenant)
        params = self._params(messages, kwargs)
        resp = self._call(lambda: self._client.chat.completions.create(**params))
        try:
            choice = resp.choices[0]
            text = choice.message.content or ""
            finish = choice.finish_reason
        except (AttributeError, IndexError, TypeError) as e:
            raise LLMError(f"{self.base_url} returned a completion without choices") from e
        c = _completion(text, getattr(resp, "model", None) or params["model"], resp.usage, messages, finish)
        self._charge(tenant, c)
        return c

    def stream(self, messages: list[dict[str, str]], *, tenant: str = "default",
               **kwargs: Any) -> Iterator[str | Completion]:
        """Yields token strings, then the Completion. A request that fails before its first token is retried;
        a stream that breaks off later raises LLMUnavailableError (the caller has shown tokens already)."""
        if self.ledger:
            self.ledger.check(tenant)
        params = self._params(messages, kwargs)
        params.update(stream=True, stream_options={"include_usage": True})
        stream = self._call(lambda: self._client.chat.completions.create(**params))
        parts: list[str] = []
        usage, model, finish = None, params["model"], None
        try:
            for ev in stream:
                usage = getattr(ev, "usage", None) or usage
                model = getattr(ev, "model", None) or model
                for ch in ev.choices or []:
                    finish = ch.finish_reason or finish
                    piece = ch.delta.content if ch.delta else None
                    if piece:
                        parts.append(piece)
                        yield piece
        except openai.APIStatusError as e:  # an error event inside the stream
            self.breaker.failure()
            raise LLMUnavailableError(f"LLM stream from {self.base_url} failed: {e.message}") from e
        except Exception as e:  # httpx read errors and timeouts mid-stream
            self.breaker.failure()
            raise LLMUnavailableError(f"LLM stream from {self.base_url} broke off: {type(e).__name__}: {e}") from e
        finally:
            stream.close()
        c = _completion("".join(parts), model, usage, messages, finish)
        self._charge(tenant, c)
        yield c

    def _charge(self, tenant: str, c: Completion) -> None:
        log.info("LLM %s: %d prompt + %d completion tokens for tenant %s%s", c.model, c.prompt_tokens,
                 c.completion_tokens, tenant, " (estimated)" if c.usage_estimated else "")
        if self.ledger:
            self.ledger.record(tenant, c)

    def _call(self, fn: Callable[[], T]) -> T:
        """Run one request with retries and the breaker; vendor exceptions become LLMError subclasses."""
        if not self.breaker.allow():
            raise LLMUnavailableError(f"LLM endpoint {self.base_url} is failing; circuit breaker open for "
                                      f"{self.breaker.retry_in():.0f} s more")
        attempt = 0
        while True:
            retry_after = None
            try:
                out = fn()
            except openai.APIStatusError as e:
                status = e.status_code
                if status not in RETRY_STATUS and status < 500:
                    self.breaker.success()  # it answered: the endpoint is up, the request was wrong
                    raise LLMRefusedError(f"LLM endpoint {self.base_url} refused the request: HTTP {status}: "
                                          f"{_message(e)}", status) from e
                reason = f"HTTP {status}: {_message(e)}"
                retry_after = _retry_after(e)
                err: Exception = e
            except openai.APITimeoutError as e:
                reason, err = "timed out", e
            except openai.APIConnectionError as e:
                reason, err = f"connection failed ({e.__cause__ or e})", e
            except openai.OpenAIError as e:
                self.breaker.success()
                raise LLMError(f"LLM endpoint {self.base_url}: {e}") from e
            else:
                self.breaker.success()
                return out
            if attempt >= self.max_retries:
                self.breaker.failure()
                raise LLMUnavailableError(f"LLM endpoint {self.base_url} unavailable after {attempt + 1} "
                                          f"attempt(s): {reason}") from err
            delay = retry_after if retry_after is not None else self.backoff_s * (2 ** attempt) * random.uniform(1, 1.25)
            delay = min(delay, MAX_DELAY_S)
            log.warning("LLM request failed (%s); retry %d/%d in %.2f s", reason, attempt + 1, self.max_retries, delay)
            time.sleep(delay)
            attempt += 1


def _completion(text: str, model: str, usage, messages: list[dict[str, str]], finish: str | None) -> Completion:
    if usage is not None and getattr(usage, "prompt_tokens", None) is not None:
        return Completion(text=text, model=model, prompt_tokens=int(usage.prompt_tokens or 0),
                          completion_tokens=int(usage.completion_tokens or 0), finish_reason=finish)
    prompt = sum(estimate_tokens(m.get("content", "")) for m in messages)
    return Completion(text=text, model=model, prompt_tokens=prompt, completion_tokens=estimate_tokens(text),
                      usage_estimated=True, finish_reason=finish)


def _message(e: openai.APIStatusError) -> str:
    body = e.body
    if isinstance(body, dict):
        inner = body.get("error")
        msg = inner.get("message") if isinstance(inner, dict) else body.get("message")
        if msg:
            return str(msg)[:300]
    return str(e.message)[:300]


def _retry_after(e: openai.APIStatusError) -> float | None:
    try:
        v = e.response.headers.get("retry-after")
        return max(0.0, float(v)) if v is not None else None
    except (AttributeError, ValueError):
        return None
