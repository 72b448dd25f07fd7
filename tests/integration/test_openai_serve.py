"""The openai backend against a real local server: `transformers serve` on the fixture model.

`transformers serve` implements /v1/completions but returns no log-probabilities, so this
tests generation through it and the missing-logprobs error path. Every request has a
timeout and the server process group is killed whatever happens.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from auditkit.generators import GenerationParams, GeneratorError, load_generator

pytestmark = pytest.mark.slow
STARTUP_TIMEOUT = 180


def _serve_command():
    exe = Path(sys.executable).with_name("transformers")
    if not exe.exists():
        exe = shutil.which("transformers")
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        pytest.skip("transformers[serving] is not installed (pip install -e '.[dev]')")
    return [str(exe), "serve"]


@pytest.fixture(scope="module")
def served(tmp_path_factory, fixtures_dir):
    folder = fixtures_dir / "generator" / "general"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*_serve_command(), str(folder), "--host", "127.0.0.1", "--port", str(port),
             "--device", "cpu"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"transformers serve not up after {STARTUP_TIMEOUT} s")
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1", str(folder)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def test_generation_through_transformers_serve(served):
    url, model = served
    gen = load_generator(f"openai:{url}#{model}", timeout=120, retries=1)
    out = gen.generate(["PATIENT NAME:"], GenerationParams(max_tokens=12, temperature=0))
    assert isinstance(out[0], str) and out[0].strip()
    # greedy decoding is deterministic on the server too
    assert gen.generate(["PATIENT NAME:"], GenerationParams(max_tokens=12)) == out


def test_scoring_fails_clearly_because_the_server_has_no_logprobs(served):
    url, model = served
    gen = load_generator(f"openai:{url}#{model}", timeout=120, retries=1)
    with pytest.raises(GeneratorError, match="no prompt log-probabilities") as err:
        gen.score(["Patient denies SI/HI."])
    assert "vLLM" in str(err.value)
