"""The ``auditkit`` command line: parse options, call the library, map errors to exit codes.

Exit codes: 0 every blocking gate passed, 1 a blocking gate failed (or ``verify`` found a
changed file), 2 usage or input error, 3 internal error. Heavy libraries are imported
inside commands, never at module level, so ``auditkit --help`` stays fast.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from auditkit import __version__
from auditkit.errors import EXIT_GATE_FAILED, EXIT_INTERNAL, AuditkitError

F = TypeVar("F", bound=Callable[..., Any])
PASSPHRASE_ENV = "AUDITKIT_KEY_PASSPHRASE"


def _fail(message: str, code: int) -> None:
    click.echo(f"auditkit: error: {message}", err=True)
    sys.exit(code)


def handle_errors(fn: F) -> F:
    """Turn domain errors into a one-paragraph message and the right exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AuditkitError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted; no bundle was written", 130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:
            if os.environ.get("AUDITKIT_DEBUG"):
                raise
            _fail(
                f"internal error ({type(exc).__name__}); re-run with AUDITKIT_DEBUG=1 for a "
                "traceback and report it",
                EXIT_INTERNAL,
            )

    return wrapper  # type: ignore[return-value]


def field_options(fn: F) -> F:
    """--id-field/--text-field/--codes-field/--max-record-bytes."""
    fn = click.option(
        "--max-record-bytes",
        type=click.IntRange(min=1),
        default=None,
        help="Largest accepted record line or file, in bytes [default: 1000000].",
    )(fn)
    fn = click.option(
        "--codes-field",
        default="icd10",
        show_default=True,
        help="Input field holding the ICD-10 code(s).",
    )(fn)
    fn = click.option(
        "--text-field",
        default="text",
        show_default=True,
        help="Input field holding the report text.",
    )(fn)
    fn = click.option(
        "--id-field", default="id", show_default=True, help="Input field holding the record id."
    )(fn)
    return fn


def run_options(fn: F) -> F:
    """--seed/--workers/--quiet."""
    fn = click.option("--quiet", "-q", is_flag=True, help="No progress bars.")(fn)
    fn = click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Worker processes for per-record work.",
    )(fn)
    fn = click.option(
        "--seed",
        type=int,
        default=0,
        show_default=True,
        help="The one seed behind every random choice (recorded in the manifest).",
    )(fn)
    return fn


def engine_options(fn: F) -> F:
    """--engine/--ray-address: where per-record work runs (results are identical)."""
    fn = click.option(
        "--ray-address",
        default=None,
        metavar="ADDRESS",
        help="An existing Ray cluster (e.g. ray://head:10001); with --engine ray. Without "
        "it, a local Ray runtime with --workers CPUs starts and stops with the command.",
    )(fn)
    fn = click.option(
        "--engine",
        type=click.Choice(["local", "ray"]),
        default="local",
        show_default=True,
        help="Run per-record work in local processes, or as Ray tasks (needs "
        "pip install 'auditkit[ray]').",
    )(fn)
    return fn


def _fields(id_field: str, text_field: str, codes_field: str) -> Any:
    from auditkit.corpus import FieldMap

    return FieldMap(id=id_field, text=text_field, codes=codes_field)


def _passphrase(prompt: bool) -> bytes | None:
    value = os.environ.get(PASSPHRASE_ENV)
    if value is not None:
        return value.encode()
    if prompt:
        return click.prompt("Key passphrase", hide_input=True, err=True).encode()
    return None


def _identity(key: str | None) -> Any:
    from auditkit import signing

    if key is None:
        return None
    try:
        return signing.load_identity(key, _passphrase(prompt=False))
    except AuditkitError:
        if os.environ.get(PASSPHRASE_ENV) is None and sys.stdin.isatty():
            return signing.load_identity(key, _passphrase(prompt=True))
        raise


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="auditkit")
def main() -> None:
    """Certify LLM-generated synthetic clinical text before release.

    Runs PHI, overlap, membership, diversity and fidelity checks, judges them with a
    policy, and writes a signed bundle (results, report, release/quarantine files).
    """
    if os.environ.get("AUDITKIT_DEBUG"):
        # Tracebacks of failed checks go here, never into results.json or the report.
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")


@main.command()
@click.option(
    "--synthetic",
    "-s",
    required=True,
    type=click.Path(exists=True),
    help="The synthetic corpus to certify (JSONL, CSV or folder of .txt).",
)
@click.option(
    "--source",
    type=click.Path(exists=True),
    help="The real reports the generator saw (training data or prompt examples).",
)
@click.option(
    "--holdout",
    type=click.Path(exists=True),
    help="Real reports from the same distribution that the generator never saw.",
)
@click.option(
    "--policy",
    default="default",
    show_default=True,
    help="Policy file, or the name of a shipped policy (default, strict).",
)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(file_okay=False),
    help="Bundle folder to write (replaced atomically).",
)
@click.option("--junit", type=click.Path(dir_okay=False), help="Also write JUnit XML here.")
@click.option(
    "--key",
    type=click.Path(exists=True),
    help=f"Signing key folder from `auditkit keygen` (passphrase: ${PASSPHRASE_ENV} "
    "or prompt). Without it, a throwaway demo key signs.",
)
@click.option(
    "--templates",
    type=click.Path(exists=True, file_okay=False),
    help="Folder of report templates that override the shipped ones.",
)
@field_options
@run_options
@engine_options
@handle_errors
def audit(
    synthetic: str,
    source: str | None,
    holdout: str | None,
    policy: str,
    out: str,
    junit: str | None,
    key: str | None,
    templates: str | None,
    id_field: str,
    text_field: str,
    codes_field: str,
    max_record_bytes: int | None,
    seed: int,
    workers: int,
    quiet: bool,
    engine: str,
    ray_address: str | None,
) -> None:
    """Audit a synthetic corpus and write the signed bundle.

    Exit code 0 when every blocking gate passed, 1 when one failed.
    """
    from auditkit.pipeline import audit as run_audit

    outcome = run_audit(
        synthetic,
        source,
        holdout,
        policy=policy,
        seed=seed,
        workers=workers,
        engine=engine,
        ray_address=ray_address,
        fields=_fields(id_field, text_field, codes_field),
        max_record_bytes=max_record_bytes,
        out=out,
        identity=_identity(key),
        junit=junit,
        templates=templates,
        progress=None if not quiet else False,
        argv=["auditkit", *sys.argv[1:]],
    )
    _print_outcome(outcome, junit)
    sys.exit(outcome.run.verdict.exit_code)


def _print_outcome(outcome: Any, junit: str | None = None) -> None:
    verdict = outcome.run.verdict
    click.echo(verdict.summary)
    for gate in verdict.gates:
        if gate.outcome != "pass":
            value = "n/a" if gate.value is None else f"{gate.value:g}"
            click.echo(
                f"  {gate.outcome.upper():8} {gate.id}: {gate.metric} = {value} "
                f"(needs {gate.op} {gate.threshold:g})"
            )
    if outcome.bundle is not None:
        click.echo(f"bundle: {outcome.bundle}")
        for name in (
            "report.pdf",
            "report.html",
            "results.json",
            "release.jsonl",
            "quarantine.jsonl",
        ):
            click.echo(f"  {outcome.bundle / name}")
    if junit:
        click.echo(f"junit: {junit}")
    if outcome.demo_key:
        click.echo(
            "auditkit: signed with the THROWAWAY DEMO KEY; create a key with "
            "`auditkit keygen` and pass --key for a release",
            err=True,
        )


@main.command()
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for signing-key.pem (mode 0600) and signing-cert.pem.",
)
@click.option(
    "--cn",
    "common_name",
    default="auditkit signer",
    show_default=True,
    help="Certificate common name (who signs).",
)
@click.option("--org", "organization", default=None, help="Certificate organisation.")
@click.option(
    "--key-type",
    type=click.Choice(["ecdsa-p256", "rsa-3072"]),
    default="ecdsa-p256",
    show_default=True,
    help="Key algorithm; both are accepted by PDF readers.",
)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=1095,
    show_default=True,
    help="Certificate validity.",
)
@click.option(
    "--encrypt",
    is_flag=True,
    help=f"Encrypt the key with a passphrase (from ${PASSPHRASE_ENV}, else prompted).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing key in the folder.")
@handle_errors
def keygen(
    out: str,
    common_name: str,
    organization: str | None,
    key_type: str,
    days: int,
    encrypt: bool,
    force: bool,
) -> None:
    """Create a signing key and a self-signed X.509 certificate."""
    from auditkit import signing

    passphrase = None
    if encrypt:
        passphrase = (
            os.environ.get(PASSPHRASE_ENV, "").encode()
            or click.prompt(
                "New key passphrase", hide_input=True, confirmation_prompt=True, err=True
            ).encode()
        )
    key_path, cert_path = signing.keygen(
        out,
        common_name=common_name,
        organization=organization,
        passphrase=passphrase,
        key_type=key_type,
        days=days,
        force=force,  # type: ignore[arg-type]
    )
    click.echo(f"key:  {key_path}\ncert: {cert_path}")


@main.command()
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--trust",
    type=click.Path(exists=True, dir_okay=False),
    help="Certificate (PEM) of the expected signer; without it, only integrity is checked.",
)
@handle_errors
def verify(bundle: str, trust: str | None) -> None:
    """Check that every file of a bundle is byte-identical to what was signed.

    Exit code 0 when it is, 1 naming the first changed, missing or extra file.
    """
    from auditkit import signing

    result = signing.verify_bundle(bundle, trusted_cert=trust)
    click.echo(f"OK: {len(result.files)} files verified")
    click.echo(f"signed by: {result.subject}{' (THROWAWAY DEMO KEY)' if result.demo_key else ''}")
    if not result.trusted:
        click.echo("note: signer not pinned; pass --trust CERT to check who signed", err=True)


@main.command()
@click.argument("synthetic", type=click.Path(exists=True))
@click.option(
    "--source",
    type=click.Path(exists=True),
    help="Real reports to compare with (same sample size and length distribution).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the full check result as JSON.")
@click.option(
    "--policy",
    default="default",
    show_default=True,
    help="Policy whose checks.diversity settings to use.",
)
@field_options
@run_options
@handle_errors
def diversity(
    synthetic: str,
    source: str | None,
    as_json: bool,
    policy: str,
    id_field: str,
    text_field: str,
    codes_field: str,
    max_record_bytes: int | None,
    seed: int,
    workers: int,
    quiet: bool,
) -> None:
    """Diversity statistics of a corpus, per ICD-10 code, against real notes."""
    from auditkit.checks.diversity import DiversityCheck
    from auditkit.pipeline import run_single_check
    from auditkit.results import canonical_json

    result = run_single_check(
        DiversityCheck,
        synthetic,
        source=source,
        policy=policy,
        seed=seed,
        workers=workers,
        fields=_fields(id_field, text_field, codes_field),
        max_record_bytes=max_record_bytes,
        progress=None if not quiet else False,
    )
    if as_json:
        click.echo(canonical_json(result), nl=False)
        return
    _print_diversity(result)


def _print_diversity(result: Any) -> None:
    from auditkit.report.render import fmt, fmt_metric

    names = [
        "records",
        "distinct_1",
        "distinct_2",
        "distinct_3",
        "mattr",
        "self_bleu",
        "compression_ratio",
        "near_duplicate_rate",
    ]
    groups: list[str | None] = [None, *result.groups()]
    header = f"{'group':<10}" + "".join(f"{n[:14]:>15}" for n in names)
    click.echo(header)
    for g in groups:
        row = f"{g or 'ALL':<10}"
        for n in names:
            m = result.metric(n if g is None else f"{n}[{g}]")
            row += f"{fmt(m.value) if m else 'n/a':>15}"
        click.echo(row)
    ratios = [
        m
        for m in result.metrics
        if m.name.endswith("_ratio")
        and m.group is None
        and m.name not in ("compression_ratio", "min_distinct_2_ratio")
    ]
    if ratios:
        click.echo("\nagainst length-matched real notes (synthetic / real, 95% interval):")
        for m in ratios:
            click.echo(f"  {m.name:<28} {fmt_metric(m)}")
    for key in ("collapsed_codes", "min_distinct_2_ratio"):
        m = result.metric(key)
        click.echo(f"{key}: {fmt(m.value) if m else 'n/a'}")


@main.command()
@click.argument("synthetic", type=click.Path(exists=True))
@click.option(
    "--source",
    type=click.Path(exists=True),
    help="Real reports: flag spans that repeat one of their identifiers (in_source).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the JSON lines here instead of stdout.",
)
@click.option(
    "--model",
    default=None,
    help="spaCy model package or folder [default: the policy's, else the best installed].",
)
@click.option(
    "--policy",
    default="default",
    show_default=True,
    help="Policy whose checks.phi settings to use.",
)
@field_options
@run_options
@engine_options
@handle_errors
def phi(
    synthetic: str,
    source: str | None,
    out: str | None,
    model: str | None,
    policy: str,
    id_field: str,
    text_field: str,
    codes_field: str,
    max_record_bytes: int | None,
    seed: int,
    workers: int,
    quiet: bool,
    engine: str,
    ray_address: str | None,
) -> None:
    """PHI spans of every record, one JSON line each (offsets and types, never values).

    Each line is {"id", "spans": [{"start", "end", "type", "score", "recognizer",
    "in_source"}]}; offsets index the record's text.
    """
    import json

    from auditkit.checks.phi import scan_files

    scans = scan_files(
        synthetic,
        source=source,
        policy=policy,
        model=model,
        workers=workers,
        engine=engine,
        ray_address=ray_address,
        fields=_fields(id_field, text_field, codes_field),
        max_record_bytes=max_record_bytes,
        progress=None if not quiet else False,
    )
    lines = "".join(
        json.dumps(s.to_json(), sort_keys=True, ensure_ascii=False) + "\n" for s in scans
    )
    if out is None:
        click.echo(lines, nl=False)
        return
    from auditkit.bundle import atomic_write_text

    atomic_write_text(Path(out), lines)
    with_phi = sum(bool(s.spans) for s in scans)
    reused = sum(any(x.in_source for x in s.spans) for s in scans)
    click.echo(
        f"{len(scans)} records, {with_phi} with PHI"
        + (f", {reused} repeating a source identifier" if source else "")
        + f"; spans written to {out}",
        err=True,
    )


@main.command()
@click.option(
    "--synthetic",
    "-s",
    required=True,
    type=click.Path(exists=True),
    help="The synthetic corpus to check.",
)
@click.option(
    "--source",
    required=True,
    type=click.Path(exists=True),
    help="The real reports the generator saw.",
)
@click.option(
    "--holdout",
    type=click.Path(exists=True),
    help="Real reports the generator never saw: enables the calibrated distance test.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the JSON lines here instead of stdout.",
)
@click.option(
    "--policy",
    default="default",
    show_default=True,
    help="Policy whose checks.overlap settings to use.",
)
@field_options
@run_options
@engine_options
@handle_errors
def overlap(synthetic: str, source: str, holdout: str | None, out: str | None, policy: str,
            id_field: str, text_field: str, codes_field: str, max_record_bytes: int | None,
            seed: int, workers: int, quiet: bool, engine: str,
            ray_address: str | None) -> None:  # fmt: skip
    """Copied and near-copied source passages, one JSON line per synthetic record.

    Each line is {"id", "leak", "max_exact_tokens", "exact_fraction", "matches": [{"kind",
    "source_id", "start", "end", "source_start", "source_end", "similarity",
    "boilerplate"}]}, with character offsets into both texts and never the text itself.
    """
    import json

    from auditkit.checks.overlap import scan_files

    lines, summary = scan_files(
        synthetic, source, holdout=holdout, policy=policy, seed=seed, workers=workers,
        engine=engine, ray_address=ray_address, fields=_fields(id_field, text_field, codes_field),
        max_record_bytes=max_record_bytes, progress=None if not quiet else False,
    )  # fmt: skip
    text = "".join(json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n" for line in lines)
    if out is None:
        click.echo(text, nl=False)
    else:
        from auditkit.bundle import atomic_write_text

        atomic_write_text(Path(out), text)
    click.echo(summary, err=True)


@main.command()
@click.option(
    "--out",
    "-o",
    default="auditkit-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the demo bundles.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes for per-record work.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@handle_errors
def demo(out: str, workers: int, quiet: bool) -> None:
    """Audit the shipped fictional fixtures: a clean and a leaky synthetic set.

    Writes two signed bundles under OUT and prints their verdicts; the clean set should
    pass and the leaky one fail. Exit code 0 when both came out as expected.
    """
    from auditkit.pipeline import audit as run_audit
    from auditkit.resources import fixtures_dir

    fx = fixtures_dir()
    expected = {"clean": "pass", "leaky": "fail"}
    surprises = []
    for name, want in expected.items():
        click.echo(f"== {name}: fixtures/synthetic_{name}.jsonl against fixtures/source.jsonl")
        outcome = run_audit(
            fx / f"synthetic_{name}.jsonl",
            fx / "source.jsonl",
            fx / "holdout.jsonl",
            policy="default",
            seed=0,
            workers=workers,
            out=Path(out) / name,
            progress=None if not quiet else False,
            argv=[
                "auditkit",
                "audit",
                "--synthetic",
                f"fixtures/synthetic_{name}.jsonl",
                "--source",
                "fixtures/source.jsonl",
                "--holdout",
                "fixtures/holdout.jsonl",
                "--out",
                str(Path(out) / name),
            ],
        )
        _print_outcome(outcome)
        got = "fail" if outcome.run.verdict.exit_code else "pass"
        if got != want:
            surprises.append(f"{name} was expected to {want} but did {got}")
        click.echo("")
    if surprises:
        _fail("; ".join(surprises), EXIT_GATE_FAILED)
    click.echo(f"demo bundles: {Path(out) / 'clean'} (verdict above), {Path(out) / 'leaky'}")
    click.echo(f"check one with: auditkit verify {Path(out) / 'leaky'}")


if __name__ == "__main__":  # pragma: no cover
    main()
