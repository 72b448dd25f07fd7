"""The openai backend against an in-process fake server (vLLM-shaped answers) and errors."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest

from auditkit.generators import GenerationParams, GeneratorError, load_generator

TEXT = "Pt calm."


class _Handler(BaseHTTPRequestHandler):
    answers: ClassVar[list] = []
    seen: ClassVar[list] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((self.path, body, self.headers.get("Authorization")))
        status, payload = type(self).answers.pop(0)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = HTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.answers, _Handler.seen = [], []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", _Handler
    httpd.shutdown()


def _echo_answer():
    # vLLM echo: prompt tokens (first without a log-prob) then the one generated token
    return {
        "choices": [
            {
                "text": TEXT + " He",
                "logprobs": {
                    "tokens": ["Pt", " calm", ".", " He"],
                    "token_logprobs": [None, -1.5, -0.25, -2.0],
                    "text_offset": [0, 2, 7, 8],
                },
            }
        ]
    }


def test_scores_prompt_logprobs_from_echo(server, monkeypatch):
    url, handler = server
    monkeypatch.setenv("AUDITKIT_OPENAI_API_KEY", "sk-test-secret")
    handler.answers = [(200, _echo_answer())]
    gen = load_generator(f"openai:{url}#tiny")
    (s,) = gen.score([TEXT])
    assert s.logprobs == (-1.5, -0.25) and s.offsets == ((2, 7), (7, 8))
    assert s.mean is None and not gen.has_distribution
    path, body, auth = handler.seen[0]
    assert path == "/v1/completions" and body["echo"] is True and body["logprobs"] == 1
    assert auth == "Bearer sk-test-secret"
    assert "sk-test-secret" not in repr(gen) and "sk-test-secret" not in json.dumps(gen.describe())


def test_missing_logprobs_is_a_clear_error_naming_vllm(server):
    url, handler = server
    handler.answers = [(200, {"choices": [{"text": TEXT + " He", "logprobs": None}]})]
    with pytest.raises(GeneratorError, match="no prompt log-probabilities") as err:
        load_generator(f"openai:{url}#tiny").score([TEXT])
    assert "vLLM" in str(err.value) and err.value.exit_code == 2


def test_generation_payload_and_stop(server):
    url, handler = server
    handler.answers = [(200, {"choices": [{"text": " denies SI.\n\nNext"}]})]
    out = load_generator(f"openai:{url}#tiny").generate(
        ["Pt"], GenerationParams(max_tokens=7, temperature=0.7, seed=5, stop=("\n\n",))
    )
    assert out == [" denies SI."]
    body = handler.seen[0][1]
    assert (body["max_tokens"], body["temperature"], body["seed"], body["stop"]) == (
        7, 0.7, 5, ["\n\n"]
    )  # fmt: skip


def test_retries_server_errors_with_backoff_then_succeeds(server):
    url, handler = server
    handler.answers = [(503, {"error": "busy"}), (200, {"choices": [{"text": "ok"}]})]
    gen = load_generator(f"openai:{url}#tiny", retries=2, backoff=0.01)
    assert gen.generate(["x"], GenerationParams(max_tokens=1)) == ["ok"]
    assert len(handler.seen) == 2


def test_client_errors_are_not_retried(server):
    url, handler = server
    handler.answers = [(401, {"error": "bad key"})]
    with pytest.raises(GeneratorError, match="HTTP 401") as err:
        load_generator(f"openai:{url}#tiny", retries=3, backoff=0.01).generate(
            ["x"], GenerationParams(max_tokens=1)
        )
    assert "API key" in str(err.value) and len(handler.seen) == 1


def test_unreachable_server_fails_after_retries(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-shown")
    gen = load_generator("openai:http://127.0.0.1:9#m", retries=1, backoff=0.01, timeout=2)
    with pytest.raises(GeneratorError, match="failed after 2 attempt") as err:
        gen.generate(["x"], GenerationParams(max_tokens=1))
    assert "sk-never-shown" not in str(err.value)
