"""bench/run_all.py --quick writes a well-formed RESULTS.md (a smoke test: nothing is timed)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_quick_run_writes_every_section(tmp_path):
    out = tmp_path / "RESULTS.md"
    # The engines stage is exercised by the Ray tests; skipping it keeps this one short.
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run_all.py"), "--quick", "--skip", "engines",
         "--out", str(out)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    titles = re.findall(r"^## (\d)\. ", text, re.M)
    assert titles == ["1", "2", "3", "4", "5", "6"]
    for line in ("load average at start: ", "load average at end: ", "CPU cores", "command: `"):
        assert line in text
    assert "skipped in this run (--skip engines)" in text
    # Measured numbers, not placeholders: every table row of PHI and overlap has figures.
    phi = text.split("## 1. ")[1].split("## 2. ")[0]
    assert len(re.findall(r"^\| (auditkit|Presidio|bare spaCy).*\d", phi, re.M)) == 4
    assert "cores" in text.split("## 6. ")[1] and "core-s" in text
