"""``import auditkit`` and ``auditkit --help`` must stay light: no torch, spaCy, WeasyPrint."""

import subprocess
import sys

HEAVY = (
    "torch",
    "spacy",
    "weasyprint",
    "transformers",
    "presidio_analyzer",
    "sklearn",
    "datasketch",
    "matplotlib",
    "sentence_transformers",
    "numpy",
    "pyhanko",
    "sacrebleu",
)

PROBE = """
import sys
from click.testing import CliRunner
import auditkit
from auditkit.cli import main
for args in (["--help"], *[[c, "--help"] for c in main.commands]):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, (args, result.output)
print(",".join(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def test_import_and_help_import_nothing_heavy():
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == ""


def test_every_command_has_help_text():
    from auditkit.cli import main

    for name, command in main.commands.items():
        assert command.help and len(command.help.strip()) > 20, name
        for param in command.params:
            if param.param_type_name == "option" and param.name not in ("help",):
                assert param.help, f"{name} --{param.name} has no help text"
