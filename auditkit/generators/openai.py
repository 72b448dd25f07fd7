"""The ``openai:BASE_URL#MODEL`` backend: an OpenAI-compatible completions server.

Scoring asks ``POST {BASE_URL}/completions`` to echo the prompt with log-probabilities
(``echo: true, logprobs: 1, max_tokens: 1``); vLLM answers that. Servers that do not return
prompt log-probabilities (``transformers serve``, Ollama, OpenAI's hosted API for current
models) cannot be probed, and scoring fails with an error saying so. They only expose the
chosen token's probability, so Min-K%++ (which needs the whole next-token distribution)
never runs on this backend.

Every request has a timeout and is retried with exponential backoff on connection errors,
429 and 5xx. The API key is read from an environment variable and sent as a bearer
token; it never appears in a message, a log line or the manifest.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from auditkit.generators.base import (
    GenerationParams,
    Generator,
    GeneratorError,
    TokenScores,
    cut_at_stop,
)

#: Environment variables holding the API key, first one set wins.
API_KEY_ENVS = ("AUDITKIT_OPENAI_API_KEY", "OPENAI_API_KEY")
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
SERVERS_WITH_LOGPROBS = (
    "vLLM (`vllm serve MODEL`: /v1/completions with echo=true and logprobs) returns prompt "
    "log-probabilities; transformers serve, Ollama and OpenAI's hosted models do not. "
    "Alternatively score the weights locally with --generator hf:PATH"
)


class OpenAIGenerator(Generator):
    """A model behind an OpenAI-compatible HTTP API."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        spec: str = "",
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 1.0,
        api_key_env: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.spec = spec or f"openai:{base_url}#{model}"
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        envs = (api_key_env,) if api_key_env else API_KEY_ENVS
        self._api_key = next((os.environ[e] for e in envs if os.environ.get(e)), None)

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIGenerator({self.base_url!r}, {self.model!r})"

    def describe(self) -> dict[str, Any]:
        """The server and model name; a remote model's weights cannot be hashed."""
        return {
            "kind": "generator",
            "spec": self.spec,
            "name": self.model,
            "revision": None,
            "sha256": None,
            "path": self.base_url,
            "note": "served model: weights not visible to auditkit, sha256 unknown",
        }

    # -- HTTP ----------------------------------------------------------------------------

    def _post(self, route: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/{route}"
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                # A server's error body may quote the prompt (few-shot examples are real
                # reports), so it is shown only for errors about the address, key or model.
                detail = exc.read()[:200].decode("utf-8", "replace").strip()
                if exc.code not in (401, 403, 404):
                    detail = ""
                last = f"HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else "")
                if exc.code not in _RETRY_STATUS:
                    hint = (
                        "check the API key variable ($AUDITKIT_OPENAI_API_KEY or $OPENAI_API_KEY)"
                        if exc.code in (401, 403)
                        else "check the base URL (it usually ends in /v1) and the model name"
                    )
                    raise GeneratorError(
                        f"generator {self.spec!r}: {url} answered {last}", hint=hint
                    ) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"{type(reason).__name__}: {reason}"
            except json.JSONDecodeError:
                raise GeneratorError(
                    f"generator {self.spec!r}: {url} did not answer with JSON",
                    hint="is BASE_URL an OpenAI-compatible API (usually ending in /v1)?",
                ) from None
        raise GeneratorError(
            f"generator {self.spec!r}: {url} failed after {self.retries + 1} attempt(s) ({last})",
            hint=f"is the server running? timeout is {self.timeout:g} s per request",
        )

    # -- scoring -------------------------------------------------------------------------

    def score(self, texts: Sequence[str]) -> list[TokenScores]:
        """Prompt log-probabilities via echo; a clear error when the server has none."""
        return [self._score_one(t) for t in texts]

    def _score_one(self, text: str) -> TokenScores:
        answer = self._post(
            "completions",
            {
                "model": self.model,
                "prompt": text,
                "max_tokens": 1,
                "temperature": 0,
                "echo": True,
                "logprobs": 1,
            },
        )
        choice = (answer.get("choices") or [{}])[0]
        lp = choice.get("logprobs") or {}
        tokens = lp.get("tokens")
        values = lp.get("token_logprobs")
        offsets = lp.get("text_offset")
        if not tokens or not values or not offsets or len(values) < 2:
            raise GeneratorError(
                f"generator {self.spec!r}: the server returned no prompt log-probabilities "
                "(echo + logprobs on /completions), which the membership probe needs",
                hint=SERVERS_WITH_LOGPROBS,
            )
        logprobs, spans = [], []
        for i, (tok, value, start) in enumerate(zip(tokens, values, offsets, strict=False)):
            if start >= len(text):
                break  # the generated token after the echoed prompt
            if value is None:
                continue  # the first token has no left context
            end = offsets[i + 1] if i + 1 < len(offsets) else start + len(tok)
            logprobs.append(float(value))
            spans.append((int(start), int(min(end, len(text)))))
        return TokenScores(logprobs=tuple(logprobs), offsets=tuple(spans))

    # -- generation ----------------------------------------------------------------------

    def generate(self, prompts: Sequence[str], params: GenerationParams) -> list[str]:
        """Each prompt's answer (``/chat/completions`` with ``params.chat``, else ``/completions``).

        Of a chat answer only ``message.content`` is kept: reasoning servers put the chain
        of thought in ``reasoning_content`` (DeepSeek, vLLM's reasoning parser), which is
        dropped here; ``<think>`` blocks inside the content are the caller's to strip.
        """
        return [self._generate_one(prompt, params) for prompt in prompts]

    def _generate_one(self, prompt: str, params: GenerationParams) -> str:
        payload: dict[str, Any] = {
            "model": self.model,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
        }
        if params.stop:
            payload["stop"] = list(params.stop)
        if params.chat:
            payload["messages"] = [{"role": "user", "content": prompt}]
            route, where = "chat/completions", "choices[0].message.content"
        else:
            payload["prompt"] = prompt
            route, where = "completions", "choices[0].text"
        answer = self._post(route, payload)
        choices = answer.get("choices") or []
        first = choices[0] if choices and isinstance(choices[0], dict) else {}
        text = (first.get("message") or {}).get("content") if params.chat else first.get("text")
        if not isinstance(text, str):
            raise GeneratorError(
                f"generator {self.spec!r}: /{route} answered without {where}",
                hint=f"the server must implement the OpenAI {route.replace('/', ' ')} API",
            )
        return cut_at_stop(text, params.stop)
