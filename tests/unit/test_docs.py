"""The README keeps up with the code: every check and command is documented."""

import re
from pathlib import Path

import pytest

from auditkit.checks import registry
from auditkit.cli import main
from auditkit.resources import rules_dir

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("check_id", registry.ids())
def test_every_check_has_a_readme_section_and_a_policy_example(check_id):
    assert re.search(rf"^### {check_id}$", README, re.M), f"README has no '### {check_id}'"
    cls = registry.get(check_id)
    for metric in cls.metrics:
        base = re.sub(r"_(reference|ratio)$", "", metric)
        assert metric in README or base in README, f"{check_id}.{metric} undocumented"
    policies = [p.read_text() for p in rules_dir().glob("*.yaml")]
    assert any(f"metric: {check_id}." in p for p in policies), f"no shipped gate uses {check_id}"


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_is_in_the_readme(command):
    assert f"auditkit {command}" in README


def test_readme_gives_the_two_setup_commands_first():
    first_block = README.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def test_ci_runs_the_readme_test_command():
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)
