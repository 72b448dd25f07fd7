"""`auditkit generate` against a real OpenAI-compatible server on loopback.

`transformers serve` serves the shipped fixture generator; the server is killed in the
middle of a run and restarted, and the same command continues the run to the requested
counts without duplicating a report.
"""

import json
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

from auditkit.resources import fixtures_dir

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CODES = "F32.1:3,F41.1:3"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`transformers serve` on loopback with one local model folder, killable."""

    def __init__(self, model: Path, port: int, log: Path) -> None:
        self.model, self.port, self.log = model, port, log
        self.proc: subprocess.Popen | None = None

    @property
    def spec(self) -> str:
        return f"openai:http://127.0.0.1:{self.port}/v1#{self.model}"

    def start(self, timeout: float = 180.0) -> None:
        exe = Path(sys.executable).parent / "transformers"
        if not exe.exists():
            pytest.fail("transformers CLI missing: install the dev extra (transformers[serving])")
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                [str(exe), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 str(self.model)],
                stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"transformers serve exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        self.stop()
        pytest.fail("transformers serve did not come up in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture(scope="module")
def small_source(tmp_path_factory):
    """80 source reports: enough for the screen, small enough to scan quickly."""
    path = tmp_path_factory.mktemp("source") / "source.jsonl"
    lines = (FIXTURES / "source.jsonl").read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:80]))
    return path


@pytest.fixture(scope="module")
def served_fixture(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("server")
    model = tmp_path / "model"
    shutil.copytree(fixtures_dir() / "generator" / "general", model)
    # The server samples only when the model's generation config says so.
    config = model / "generation_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "do_sample": True}))
    server = Server(model, _free_port(), tmp_path / "server.log")
    server.start()
    yield server
    server.stop()


def _generate(server: Server, out: Path, source: Path, *extra: str) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "auditkit"
    return subprocess.Popen(
        [str(exe), "generate", "--codes", CODES, "--generator", server.spec,
         "--source", str(source), "--mode", "completion",
         "--max-tokens", "80", "--min-words", "15", "--max-attempts", "8",
         "--retries", "1", "--timeout", "20", "--seed", "11", "--quiet", "--out", str(out),
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_generate_survives_a_server_killed_mid_run(served_fixture, small_source, tmp_path):
    out = tmp_path / "run"
    proc = _generate(served_fixture, out, small_source)
    # Wait until a few attempts are settled, then kill the server under the run.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        settled = len(_lines(out / "generated.jsonl")) + len(_lines(out / "quarantine.jsonl"))
        if settled >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    served_fixture.stop()
    _stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 3, stderr
    assert "run the same command again" in stderr
    before = _lines(out / "generated.jsonl")
    assert len(before) < 6

    served_fixture.start()
    proc = _generate(served_fixture, out, small_source)
    stdout, stderr = proc.communicate(timeout=900)
    assert proc.returncode in (0, 1), stderr
    kept = _lines(out / "generated.jsonl")
    ids = [r["id"] for r in kept]
    assert len(ids) == len(set(ids)), "a report was duplicated"
    assert ids[: len(before)] == [r["id"] for r in before], "kept reports were rewritten"
    tried = {}
    for row in _lines(out / "quarantine.jsonl"):
        tried[row["slot"]] = tried.get(row["slot"], 0) + 1
    slots = {f"gen-{c}-{i:04d}" for c, n in (("F32.1", 3), ("F41.1", 3)) for i in range(1, n + 1)}
    # Every slot is settled: kept, or quarantined --max-attempts times (then exit 1).
    assert set(ids) | {s for s, n in tried.items() if n == 8} == slots
    assert all(tried.get(s, 0) < 8 for s in ids)
    assert "generated:" in stdout
    if set(ids) == slots:
        assert (out / "audit" / "results.json").exists()


def test_chat_mode_needs_a_chat_template(served_fixture, small_source, tmp_path):
    proc = _generate(served_fixture, tmp_path / "chat", small_source, "--mode", "chat")
    _stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode in (2, 3), stderr
    assert "auditkit: error:" in stderr and "Traceback" not in stderr
