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
P12_PASSPHRASE_ENV = "AUDITKIT_P12_PASSPHRASE"


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


def generator_options(fn: F) -> F:
    """--generator/--reference (the membership probe's models)."""
    fn = click.option(
        "--reference",
        default=None,
        metavar="SPEC",
        help="Reference model for the reference-ratio attack (same spec forms).",
    )(fn)
    fn = click.option(
        "--generator",
        default=None,
        metavar="SPEC",
        help="Generator to probe for membership: hf:PATH, openai:BASE_URL#MODEL, fixture, "
        "fixture:memorising or fixture:general.",
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


def _identity(key: str | None, p12: str | None = None) -> Any:
    from auditkit import signing

    if key is not None and p12 is not None:
        from auditkit.errors import UsageError

        raise UsageError("--key and --sign-p12 both given", hint="sign with one of them")
    if p12 is not None:
        value = os.environ.get(P12_PASSPHRASE_ENV)
        if value is None and sys.stdin.isatty():
            value = click.prompt(f"Passphrase of {p12}", hide_input=True, err=True)
        return signing.load_p12(p12, value.encode() if value else None)
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
    "--sign-p12",
    "sign_p12",
    type=click.Path(exists=True, dir_okay=False),
    help=f"Sign with an organisation's PKCS#12 file instead (passphrase: ${P12_PASSPHRASE_ENV} "
    "or prompt; never on the command line).",
)
@click.option(
    "--summary",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: print one JSON line (verdict, gates, paths) on stdout for CI; the human "
    "summary goes to stderr.",
)
@click.option(
    "--templates",
    type=click.Path(exists=True, file_okay=False),
    help="Folder of report templates that override the shipped ones.",
)
@generator_options
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
    sign_p12: str | None,
    summary: str,
    templates: str | None,
    generator: str | None,
    reference: str | None,
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
        identity=_identity(key, sign_p12),
        junit=junit,
        templates=templates,
        progress=None if not quiet else False,
        argv=["auditkit", *sys.argv[1:]],
        generator=generator,
        reference=reference,
    )
    _print_outcome(outcome, junit, err=summary == "json")
    if summary == "json":
        click.echo(_summary_json(outcome, junit))
    sys.exit(outcome.run.verdict.exit_code)


def _summary_json(outcome: Any, junit: str | None) -> str:
    """One line of JSON for CI: verdict, exit code, every gate, counts and paths."""
    import json

    verdict = outcome.run.verdict
    bundle = outcome.bundle
    line = {
        "verdict": verdict.outcome,
        "exit_code": verdict.exit_code,
        "summary": verdict.summary,
        "released": verdict.released,
        "quarantined": verdict.quarantined,
        "gates": [
            {
                "id": g.id,
                "outcome": g.outcome,
                "metric": g.metric,
                "value": g.value,
                "op": g.op,
                "threshold": g.threshold,
                "severity": g.severity,
            }
            for g in verdict.gates
        ],
        "bundle": str(bundle) if bundle else None,
        "report": str(bundle / "report.pdf") if bundle else None,
        "junit": junit,
        "demo_key": outcome.demo_key,
    }
    return json.dumps(line, sort_keys=True, separators=(",", ":"))


def _print_outcome(outcome: Any, junit: str | None = None, *, err: bool = False) -> None:
    echo = functools.partial(click.echo, err=err)
    verdict = outcome.run.verdict
    echo(verdict.summary)
    for gate in verdict.gates:
        if gate.outcome != "pass":
            value = "n/a" if gate.value is None else f"{gate.value:g}"
            echo(
                f"  {gate.outcome.upper():8} {gate.id}: {gate.metric} = {value} "
                f"(needs {gate.op} {gate.threshold:g})"
            )
    if outcome.bundle is not None:
        echo(f"bundle: {outcome.bundle}")
        for name in (
            "report.pdf",
            "report.html",
            "results.json",
            "release.jsonl",
            "quarantine.jsonl",
            "attestation.intoto.jsonl",
        ):
            echo(f"  {outcome.bundle / name}")
    if junit:
        echo(f"junit: {junit}")
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
    """Check every signature and digest of a bundle; list exactly what failed.

    Checks the detached signature over manifest.json and every file digest it lists, the
    PAdES signature of report.pdf (intact, whole file; trusted when --trust is given), that
    the files embedded in report.pdf equal the bundle's, and the in-toto attestation.
    Exit code 0 when everything holds, 1 when anything failed.
    """
    from auditkit.verify import verify as verify_bundle

    report = verify_bundle(bundle, trusted_cert=trust)
    for step in report.steps:
        click.echo(f"{'OK  ' if step.ok else 'FAIL'} {step.name}: {step.detail}")
    if report.subject:
        demo = " (THROWAWAY DEMO KEY)" if report.demo_key else ""
        click.echo(f"signed by: {report.subject}{demo}")
    if not report.ok:
        _fail(
            f"{len(report.failures)} of {len(report.steps)} checks failed: "
            + "; ".join(f"{s.name} ({s.detail})" for s in report.failures),
            EXIT_GATE_FAILED,
        )
    if not report.trusted:
        click.echo("note: signer not pinned; pass --trust CERT to check who signed", err=True)


@main.command()
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="ROLE=PATH",
    help="Where an input is now (synthetic, source, holdout or policy); it must still have "
    "the audited sha256. Repeatable.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the fresh bundle [default: a new temporary folder].",
)
@click.option(
    "--key",
    type=click.Path(exists=True),
    help="Signing key folder for the fresh bundle (the original key reproduces evidence "
    "tokens exactly); default: the demo key.",
)
@click.option(
    "--trust",
    type=click.Path(exists=True, dir_okay=False),
    help="Certificate the signed bundle must be signed with.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@handle_errors
def rerun(
    bundle: str,
    inputs: tuple[str, ...],
    out: str | None,
    key: str | None,
    trust: str | None,
    quiet: bool,
) -> None:
    """Recompute an audit from its manifest and compare with the signed results.

    Verifies the bundle, finds every input by its recorded path (or --input), refuses an
    input or policy whose sha256 differs, runs the recorded audit() invocation again and
    compares the new results.json with the signed one. Exit code 0 when identical, 1 when
    anything drifted (every differing metric is listed) or an input changed.
    """
    from auditkit.errors import UsageError
    from auditkit.rerun import rerun as run_rerun

    overrides = {}
    for item in inputs:
        role, sep, path = item.partition("=")
        if not sep or not role or not path:
            raise UsageError(
                f"--input {item!r}: expected ROLE=PATH", hint="e.g. --input source=real.jsonl"
            )
        overrides[role] = path
    outcome = run_rerun(
        bundle,
        overrides=overrides,
        out=out,
        identity=_identity(key),
        trusted_cert=trust,
        progress=None if not quiet else False,
    )
    for role, path in sorted(outcome.inputs.items()):
        click.echo(f"input {role}: {path} (sha256 matches the manifest)")
    click.echo(f"fresh bundle: {outcome.bundle}")
    if not outcome.same_key:
        click.echo(
            "note: signed with another key than the original, so masked evidence tokens "
            "were compared without their keyed hash",
            err=True,
        )
    if outcome.identical:
        click.echo("IDENTICAL: the recomputed results.json equals the signed one")
        return
    click.echo(f"DRIFT: {len(outcome.differences)} values differ from the signed results")
    for line in outcome.differences:
        click.echo(f"  {line}")
    sys.exit(EXIT_GATE_FAILED)


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
    "--generator",
    required=True,
    metavar="SPEC",
    help="Generator to probe: hf:PATH, openai:BASE_URL#MODEL, fixture, fixture:memorising, "
    "fixture:general.",
)
@click.option(
    "--members",
    required=True,
    type=click.Path(exists=True),
    help="Records the generator saw (its training data or prompt examples).",
)
@click.option(
    "--nonmembers",
    required=True,
    type=click.Path(exists=True),
    help="Records of the same kind it never saw (holdout).",
)
@click.option("--reference", default=None, metavar="SPEC", help="Reference model (same forms).")
@click.option(
    "--sample",
    type=click.IntRange(min=10),
    default=None,
    help="Score at most N members and N non-members (seeded) [default: the policy's, 1000].",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the JSON here instead of stdout.",
)
@click.option(
    "--policy",
    default="default",
    show_default=True,
    help="Policy whose checks.membership settings to use.",
)
@field_options
@run_options
@handle_errors
def mia(generator: str, members: str, nonmembers: str, reference: str | None,
        sample: int | None, out: str | None, policy: str, id_field: str, text_field: str,
        codes_field: str, max_record_bytes: int | None, seed: int, workers: int,
        quiet: bool) -> None:  # fmt: skip
    """Membership-inference probe and extraction test of a generator.

    Prints JSON: {"attacks": {"loss": {"auc", "auc_ci", "tpr_at_1fpr", "tpr_at_5fpr"}, ...},
    "worst_auc", "worst_auc_ci", "blind_auc", "blind_null_auc", "blind_auc_adjusted",
    "blind_p_value", "probe_unreliable", "extraction": {"member_exact_rate",
    "nonmember_exact_rate", ...}, "n_members", "n_nonmembers", "roc": {...}}. Exit code 0
    when the probe ran (judging it is the policy's job in `auditkit audit`).
    """
    from auditkit.checks.membership import MembershipCheck, probe_summary
    from auditkit.errors import CheckError
    from auditkit.pipeline import run_single_check
    from auditkit.results import canonical_json

    result = run_single_check(
        MembershipCheck, members, source=members, holdout=nonmembers, policy=policy,
        seed=seed, workers=workers, fields=_fields(id_field, text_field, codes_field),
        max_record_bytes=max_record_bytes, progress=None if not quiet else False,
        generator=generator, reference=reference,
        overrides={"sample": sample} if sample is not None else None,
    )  # fmt: skip
    if result.status != "ok":
        raise CheckError(f"the membership probe did not run: {result.reason}")
    summary = probe_summary(result)
    text = canonical_json(summary)
    if out is None:
        click.echo(text, nl=False)
    else:
        from auditkit.bundle import atomic_write_text

        atomic_write_text(Path(out), text)
    ci = summary["worst_auc_ci"]
    ext = summary["extraction"]
    click.echo(
        f"worst AUC {summary['worst_auc']:.3f} ({summary['worst_attack']}) "
        f"[{ci[0]:.3f}, {ci[1]:.3f}] over {len(summary['attacks'])} attacks; "
        f"blind baseline AUC {summary['blind_auc']:.3f}"
        + (f" (null {summary['blind_null_auc']:.3f}, adjusted "
           f"{summary['blind_auc_adjusted']:.3f})" if summary["blind_null_auc"] is not None
           else "")
        + (" (PROBE UNRELIABLE: members and non-members differ)" if summary["probe_unreliable"]
           else "")
        + f"; extraction exact {ext['member_exact_rate']} members vs "
        f"{ext['nonmember_exact_rate']} non-members, {ext['extracted_records']} extracted"
        + (f"; written to {out}" if out else ""),
        err=True,
    )  # fmt: skip


@main.command()
@click.option(
    "--synthetic",
    "-s",
    required=True,
    type=click.Path(exists=True),
    help="The synthetic corpus, each record with the ICD-10 code it was conditioned on.",
)
@click.option(
    "--source",
    required=True,
    type=click.Path(exists=True),
    help="Real reports with their codes (the classifier's training data).",
)
@click.option(
    "--holdout",
    type=click.Path(exists=True),
    help="Real reports never shown to the generator: the TSTR/TRTR test set.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option(
    "--policy",
    default="default",
    show_default=True,
    help="Policy whose checks.fidelity settings to use.",
)
@field_options
@run_options
@handle_errors
def fidelity(synthetic: str, source: str, holdout: str | None, as_json: bool, policy: str,
             id_field: str, text_field: str, codes_field: str, max_record_bytes: int | None,
             seed: int, workers: int, quiet: bool) -> None:  # fmt: skip
    """Does each synthetic report describe its ICD-10 code? Agreement, TSTR, coverage, AUC.

    With --json prints {"agreement": {"accuracy", "macro_f1", "ceiling_accuracy",
    "per_code"}, "tstr": {"macro_f1", "trtr_macro_f1"}, "coverage": {code: {"synthetic",
    "source"}}, "detection_auc", "unknown_codes"}.
    """
    import json

    from auditkit.checks.fidelity import FidelityCheck, fidelity_summary
    from auditkit.errors import CheckError
    from auditkit.pipeline import run_single_check

    result = run_single_check(
        FidelityCheck, synthetic, source=source, holdout=holdout, policy=policy, seed=seed,
        workers=workers, fields=_fields(id_field, text_field, codes_field),
        max_record_bytes=max_record_bytes, progress=None if not quiet else False,
    )  # fmt: skip
    if result.status == "error":
        raise CheckError(f"the fidelity check failed: {result.reason}")
    if result.status == "skipped":
        raise CheckError(f"the fidelity check could not run: {result.reason}")
    summary = fidelity_summary(result)
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
        return
    _print_fidelity(result, summary)


def _print_fidelity(result: Any, summary: dict[str, Any]) -> None:
    from auditkit.report.render import fmt, fmt_metric

    for key, label in (
        ("agreement_accuracy", "code agreement, accuracy"),
        ("agreement_macro_f1", "code agreement, macro-F1"),
        ("ceiling_accuracy", "ceiling (CV accuracy on source)"),
        ("tstr_macro_f1", "TSTR macro-F1"),
        ("trtr_macro_f1", "TRTR macro-F1"),
        ("coverage", "criteria coverage, synthetic"),
        ("coverage_source", "criteria coverage, source"),
        ("detection_auc", "detection AUC (0.5 = same)"),
        ("detection_auc_reference", "detection AUC, holdout vs source"),
    ):
        click.echo(f"{label:<36} {fmt_metric(result.metric(key))}")
    click.echo(f"\n{'code':<10}{'agreement':>11}{'coverage':>10}{'source':>9}{'AUC':>8}")
    for code in sorted(set(summary["agreement"]["per_code"]) | set(summary["coverage"])):
        agree = summary["agreement"]["per_code"].get(code, {}).get("accuracy")
        cov = summary["coverage"].get(code, {})
        auc = result.metric(f"detection_auc[{code}]")
        click.echo(
            f"{code:<10}{fmt(agree):>11}{fmt(cov.get('synthetic')):>10}"
            f"{fmt(cov.get('source')):>9}{fmt(auc.value if auc else None):>8}"
        )
    if summary["unknown_codes"]:
        click.echo(f"\ncodes not in rules/icd10: {', '.join(summary['unknown_codes'])}")


@main.command()
@click.option(
    "--codes",
    required=True,
    help="Reports wanted per ICD-10 code, e.g. F32.1:200,F41.1:200.",
)
@click.option(
    "--generator",
    "-g",
    required=True,
    help="openai:BASE_URL#MODEL (vLLM, Ollama, llama.cpp, LM Studio, hosted APIs), "
    "hf:PATH (a local transformers folder) or fixture[:NAME].",
)
@click.option(
    "--source",
    type=click.Path(exists=True),
    help="Real reports: few-shot examples, and what the screen checks copies and reuse against.",
)
@click.option(
    "--holdout",
    type=click.Path(exists=True),
    help="Real reports the generator never saw (for the final audit).",
)
@click.option(
    "--prompt",
    type=click.Path(exists=True, dir_okay=False),
    help="jinja2 prompt template (default: rules/prompts/evaluation_report.j2 for chat, "
    "evaluation_report_completion.j2 for completion).",
)
@click.option(
    "--mode",
    type=click.Choice(["chat", "completion"]),
    help="chat for instruction-tuned models (default for openai:), completion for base "
    "models (default for hf: and fixture).",
)
@click.option(
    "--examples",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Source reports quoted in each prompt (seeded choice; needs --source).",
)
@click.option(
    "--temperature",
    type=click.FloatRange(min=0),
    default=0.7,
    show_default=True,
    help="Sampling temperature (0: greedy).",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(min=1),
    default=700,
    show_default=True,
    help="Longest generation, in tokens.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Attempts per report before its slot is given up.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Requests in flight at once.",
)
@click.option("--min-words", type=click.IntRange(min=1), help="Shortest sane report.")
@click.option("--max-words", type=click.IntRange(min=1), help="Longest sane report.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=120.0,
    show_default=True,
    help="Seconds per request (openai:).",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Retries with backoff per request before the run stops (openai:).",
)
@click.option(
    "--policy",
    default="default",
    show_default=True,
    help="Policy of the final audit; its check settings also configure the screen.",
)
@click.option(
    "--key",
    type=click.Path(exists=True),
    help=f"Signing key folder from `auditkit keygen` (passphrase: ${PASSPHRASE_ENV}).",
)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(file_okay=False),
    help="Run folder: generated.jsonl, quarantine.jsonl, audit/ (a rerun continues).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="The run seed.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes for the screen's and the final audit's per-record work.",
)
@engine_options
@click.option("--quiet", "-q", is_flag=True, help="No status line.")
@handle_errors
def generate(
    codes: str,
    generator: str,
    source: str | None,
    holdout: str | None,
    prompt: str | None,
    mode: str | None,
    examples: int,
    temperature: float,
    max_tokens: int,
    max_attempts: int,
    concurrency: int,
    min_words: int | None,
    max_words: int | None,
    timeout: float,
    retries: int,
    policy: str,
    key: str | None,
    out: str,
    seed: int,
    workers: int,
    engine: str,
    ray_address: str | None,
    quiet: bool,
) -> None:
    """Generate ICD-10-conditioned reports, screening each before it is kept.

    Every report passes the per-record gates (no PHI, no real identifier, no copied
    passage, not a near-duplicate, sane length) or is quarantined and generated again.
    Running the same command again continues an interrupted run. Ends with the full
    audit of the kept reports (OUT/audit) and exits with its verdict's code; 1 also when
    some slot ran out of attempts.
    """
    from auditkit.generate import generate as run_generate
    from auditkit.generate import parse_codes

    wanted = parse_codes(codes)
    options = {"timeout": timeout, "retries": retries} if generator.startswith("openai:") else {}
    try:
        summary = run_generate(
            wanted,
            generator,
            out,
            source=source,
            holdout=holdout,
            prompt=prompt,
            mode=mode,
            examples=examples,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            max_attempts=max_attempts,
            concurrency=concurrency,
            min_words=min_words,
            max_words=max_words,
            policy=policy,
            identity=_identity(key),
            progress=False if quiet else None,
            argv=["auditkit", *sys.argv[1:]],
            generator_options=options,
            engine=engine,
            workers=workers,
            ray_address=ray_address,
        )
    except KeyboardInterrupt:
        _fail(f"interrupted; what was kept is in {out}; run the same command to continue", 130)
    click.echo(
        f"generated: {summary.kept}/{summary.requested} kept, {summary.quarantined} "
        f"quarantined attempts ({summary.out / 'generated.jsonl'})"
    )
    for code, counts in summary.per_code.items():
        click.echo(
            f"  {code}: {counts['kept']}/{counts['requested']} kept, "
            f"{counts['quarantined']} quarantined"
        )
    if summary.exhausted:
        click.echo(
            f"auditkit: {len(summary.exhausted)} report(s) failed the screen "
            f"{max_attempts} times and were not produced (see {summary.out / 'quarantine.jsonl'})",
            err=True,
        )
    if summary.audit is not None:
        _print_outcome(summary.audit)
    sys.exit(summary.exit_code)


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
    pass and the leaky one fail. The membership probe runs on the shipped fixture
    generators: the clean set's audit probes fixture:general (trained on other reports,
    no signal), the leaky set's fixture:memorising (trained on the source, memorised).
    Exit code 0 when both came out as expected.
    """
    from auditkit.pipeline import audit as run_audit
    from auditkit.resources import fixtures_dir

    fx = fixtures_dir()
    expected = {"clean": "pass", "leaky": "fail"}
    generators = {"clean": "fixture:general", "leaky": "fixture:memorising"}
    surprises = []
    for name, want in expected.items():
        click.echo(
            f"== {name}: fixtures/synthetic_{name}.jsonl against fixtures/source.jsonl, "
            f"generator {generators[name]}"
        )
        outcome = run_audit(
            fx / f"synthetic_{name}.jsonl",
            fx / "source.jsonl",
            fx / "holdout.jsonl",
            policy="default",
            seed=0,
            workers=workers,
            out=Path(out) / name,
            progress=None if not quiet else False,
            generator=generators[name],
            argv=[
                "auditkit",
                "audit",
                "--synthetic",
                f"fixtures/synthetic_{name}.jsonl",
                "--source",
                "fixtures/source.jsonl",
                "--holdout",
                "fixtures/holdout.jsonl",
                "--generator",
                generators[name],
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
