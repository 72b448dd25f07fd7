"""Orchestration: load the policy and corpora, run the checks, judge, write the bundle.

The library entry point is :func:`audit`; the CLI is a thin layer over it. The order of
work is fixed: the policy is validated first (a typo fails in milliseconds), then every
corpus is loaded completely (bad input fails before any check runs), then checks run in
registry order, then the pure policy evaluation, then the bundle.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditkit import __version__
from auditkit.checks import registry
from auditkit.checks.base import Check, CheckContext
from auditkit.corpus import Corpus, FieldMap, load_corpus
from auditkit.errors import AuditkitError, UsageError
from auditkit.executor import make_executor
from auditkit.masking import Masker
from auditkit.policy import Policy, evaluate, load_policy
from auditkit.progress import Progress
from auditkit.resources import resolve_policy
from auditkit.results import AuditRun, CheckResult, InputSummary, PolicyRef

log = logging.getLogger("auditkit")


@dataclass(frozen=True)
class AuditInputs:
    """The corpora of one audit."""

    synthetic: Corpus
    source: Corpus | None = None
    holdout: Corpus | None = None

    def present(self) -> dict[str, Corpus]:
        """The corpora that were given, by role."""
        return {
            role: c
            for role, c in (
                ("synthetic", self.synthetic),
                ("source", self.source),
                ("holdout", self.holdout),
            )
            if c is not None
        }


@dataclass
class AuditOutcome:
    """What :func:`audit` returns: the run, and the bundle folder if one was written."""

    run: AuditRun
    bundle: Path | None = None
    demo_key: bool = False
    files: dict[str, Path] = field(default_factory=dict)


def load_inputs(
    synthetic: str | Path,
    source: str | Path | None = None,
    holdout: str | Path | None = None,
    *,
    fields: FieldMap | None = None,
    max_record_bytes: int | None = None,
) -> AuditInputs:
    """Load and validate every corpus of an audit (raises on the first bad record)."""
    kwargs: dict[str, Any] = {"fields": fields}
    if max_record_bytes is not None:
        kwargs["max_record_bytes"] = max_record_bytes
    return AuditInputs(
        synthetic=load_corpus(synthetic, "synthetic", **kwargs),
        source=load_corpus(source, "source", **kwargs) if source else None,
        holdout=load_corpus(holdout, "holdout", **kwargs) if holdout else None,
    )


def make_context(
    inputs: AuditInputs,
    seed: int,
    executor: Any,
    identity: Any,
    progress: bool | None,
    generator: Any | None = None,
    reference: Any | None = None,
) -> CheckContext:
    """The context every check of one run shares (masker keyed by the signing identity).

    ``generator`` and ``reference`` are loaded generators (see :mod:`auditkit.generators`);
    the reference model travels in ``options["reference"]``.
    """
    return CheckContext(
        synthetic=inputs.synthetic,
        source=inputs.source,
        holdout=inputs.holdout,
        seed=seed,
        executor=executor,
        masker=Masker(identity.mask_key()),
        progress=Progress(progress),
        generator=generator,
        options={"reference": reference} if reference is not None else {},
    )


def open_generators(generator: Any | None, reference: Any | None) -> tuple[Any, Any]:
    """Load generator specs (strings) into generators; loaded ones pass through.

    A malformed spec fails here, before any corpus is read.
    """
    from auditkit.generators import Generator, load_generator, parse_spec

    def one(value: Any | None) -> Any | None:
        if value is None or isinstance(value, Generator):
            return value
        return load_generator(parse_spec(str(value)))

    if reference is not None and generator is None:
        raise UsageError("--reference needs --generator (the model to probe)")
    return one(generator), one(reference)


def build_checks(policy: Policy) -> list[Check]:
    """Instantiate the checks the policy enables, in registry order."""
    return [
        registry.get(cid)(policy.check_config(cid))
        for cid in registry.ids()
        if cid in policy.checks
    ]


def run_checks(checks: Sequence[Check], context: CheckContext) -> list[CheckResult]:
    """Run each check; a skip or an unexpected exception becomes a result, not a crash.

    AuditkitErrors (a missing model, bad input discovered late) propagate: they are the
    user's to fix, and a half-certified run would be worse than none.
    """
    results = []
    for check in checks:
        missing = check.missing_inputs(context)
        if missing:
            results.append(check.skipped(missing))
            continue
        try:
            results.append(check.run(context))
        except AuditkitError:
            raise
        except Exception as exc:  # the run must still produce a verdict ("error")
            # The exception's message may quote record text, so results.json (and the
            # report) name only its type; the traceback goes to the debug log.
            log.debug("check %s failed", check.id, exc_info=True)
            results.append(
                CheckResult(
                    check=check.id,
                    status="error",
                    reason=f"{type(exc).__name__} (details: AUDITKIT_DEBUG=1)",
                    config=check.config.model_dump(mode="json"),
                )
            )
    return results


def _input_summary(corpus: Corpus) -> InputSummary:
    codes: dict[str, int] = {}
    for r in corpus:
        if r.primary_code:
            codes[r.primary_code] = codes.get(r.primary_code, 0) + 1
    return InputSummary(
        role=corpus.role,
        path=Path(corpus.path).name,
        format=corpus.format,
        sha256=corpus.sha256,
        records=len(corpus),
        codes=dict(sorted(codes.items())),
    )


def audit(
    synthetic: str | Path | AuditInputs,
    source: str | Path | None = None,
    holdout: str | Path | None = None,
    *,
    policy: str | Path | Policy = "default",
    seed: int = 0,
    workers: int = 1,
    engine: str = "local",
    ray_address: str | None = None,
    fields: FieldMap | None = None,
    max_record_bytes: int | None = None,
    out: str | Path | None = None,
    identity: Any | None = None,
    junit: str | Path | None = None,
    templates: str | Path | None = None,
    progress: bool | None = False,
    argv: Sequence[str] | None = None,
    generator: Any | None = None,
    reference: Any | None = None,
) -> AuditOutcome:
    """Audit a synthetic corpus and, with ``out``, write the signed bundle.

    Args:
        synthetic: path of the corpus to certify (or already loaded inputs).
        source: the real reports the generator saw.
        holdout: real reports from the same distribution the generator never saw.
        policy: a policy name (``default``, ``strict``), a path, or a loaded Policy.
        seed: the one seed behind every random choice.
        workers: processes for per-record work (Ray: CPUs of the local runtime).
        engine: ``local`` (this machine) or ``ray`` (Ray tasks; ``auditkit[ray]``).
            Results are byte-identical; only the manifest's options record the engine.
        ray_address: an existing Ray cluster (engine ``ray``); None starts a local runtime.
        fields: input field names.
        max_record_bytes: largest accepted record.
        out: bundle folder to write (atomically); None to only compute.
        identity: a ``signing.SigningIdentity``; None uses the throwaway demo key.
        junit: also write JUnit XML here.
        templates: a folder of report templates replacing the shipped ones.
        progress: progress bars on stderr (None: when stderr is a terminal).
        argv: the command line to record in the manifest.
        generator: the generator to probe for membership (a spec such as ``hf:PATH``,
            ``openai:URL#MODEL``, ``fixture``, or a loaded generator); None skips the probe.
        reference: a reference model for the membership probe's reference attack.

    Returns:
        The run (results and verdict) and where the bundle went.
    """
    call = dict(locals())  # every argument, before anything else is bound: the invocation
    from auditkit import signing

    pol = policy if isinstance(policy, Policy) else load_policy(resolve_policy(policy))
    gen, ref = open_generators(generator, reference)
    executor = make_executor(engine, workers, ray_address=ray_address)
    inputs = (
        synthetic
        if isinstance(synthetic, AuditInputs)
        else load_inputs(
            synthetic, source, holdout, fields=fields, max_record_bytes=max_record_bytes
        )
    )
    ident = identity if identity is not None else signing.demo_identity()
    checks = build_checks(pol)
    with executor:
        context = make_context(inputs, seed, executor, ident, progress, gen, ref)
        results = run_checks(checks, context)
    verdict = evaluate(results, pol, inputs.synthetic.ids)
    run = AuditRun(
        version=__version__,
        seed=seed,
        policy=PolicyRef(name=pol.name, path=Path(pol.path).name, sha256=pol.sha256),
        inputs=tuple(_input_summary(c) for c in inputs.present().values()),
        checks=tuple(results),
        verdict=verdict,
    )
    outcome = AuditOutcome(run=run, demo_key=ident.demo)
    if out is not None:
        from auditkit.bundle import write_bundle

        outcome.files = write_bundle(
            Path(out),
            run=run,
            inputs=inputs,
            policy=pol,
            identity=ident,
            options={
                "workers": workers,
                "engine": engine,
                "max_record_bytes": max_record_bytes,
                **({"generator": gen.spec} if gen is not None else {}),
                **({"reference": ref.spec} if ref is not None else {}),
            },
            invocation=invocation_record(call, inputs, pol),
            models=[m for check in checks for m in check.models()],
            argv=argv,
            templates=Path(templates) if templates else None,
        )
        outcome.bundle = Path(out)
    if junit is not None:
        from auditkit.bundle import atomic_write_text
        from auditkit.junit import junit_xml

        atomic_write_text(Path(junit), junit_xml(run))
    return outcome


#: audit() arguments that choose where results go or who signs, not what is computed.
NOT_RECORDED = frozenset({"out", "identity", "junit", "templates", "progress", "argv"})


def invocation_record(call: dict[str, Any], inputs: AuditInputs, policy: Policy) -> dict:
    """The audit() keyword arguments that produced a run, as JSON values for the manifest.

    Generic on purpose: every argument of :func:`audit` not in :data:`NOT_RECORDED` is
    recorded, so an option added to audit() later is recorded (and passed back by
    ``auditkit rerun``) without touching this function, as long as its value is a JSON
    value, a path, or a dataclass of JSON values; a string naming an existing file or folder
    is recorded as its absolute path. Corpora are recorded by role with their absolute
    paths; the policy by its absolute path (the manifest pins its digest).
    """
    import dataclasses

    def jsonable(name: str, value: Any) -> Any:
        if isinstance(value, Path) or (isinstance(value, str) and value and Path(value).exists()):
            return str(Path(value).resolve())  # a rerun may start in another folder
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        if value is None or isinstance(value, (str, int, float, bool, list, dict)):
            return value
        raise TypeError(f"audit() argument {name!r} cannot be recorded in the manifest")

    own = NOT_RECORDED | {"synthetic", "source", "holdout", "fields", "policy"}
    record = {k: jsonable(k, v) for k, v in call.items() if k not in own}
    for role in ("synthetic", "source", "holdout"):
        corpus = inputs.present().get(role)
        record[role] = str(Path(corpus.path).resolve()) if corpus is not None else None
    record["fields"] = dataclasses.asdict(inputs.synthetic.fields)
    record["policy"] = str(Path(policy.path).resolve())
    return dict(sorted(record.items()))


def run_single_check(
    check_cls: type[Check],
    synthetic: str | Path,
    *,
    source: str | Path | None = None,
    holdout: str | Path | None = None,
    policy: str | Path = "default",
    seed: int = 0,
    workers: int = 1,
    engine: str = "local",
    ray_address: str | None = None,
    fields: FieldMap | None = None,
    max_record_bytes: int | None = None,
    progress: bool | None = False,
    identity: Any | None = None,
    generator: Any | None = None,
    reference: Any | None = None,
    overrides: dict[str, Any] | None = None,
) -> CheckResult:
    """Run one check outside an audit (the per-check CLI commands use this).

    The check's configuration comes from the policy's ``checks:`` section when the policy
    enables it, else the check's defaults; ``overrides`` replaces single settings.
    """
    from auditkit import signing

    pol = load_policy(resolve_policy(policy))
    gen, ref = open_generators(generator, reference)
    executor = make_executor(engine, workers, ray_address=ray_address)
    inputs = load_inputs(
        synthetic, source, holdout, fields=fields, max_record_bytes=max_record_bytes
    )
    raw = dict(pol.checks.get(check_cls.id) or {}) if check_cls.id in pol.checks else {}
    config = check_cls.configure({**raw, **(overrides or {})})
    ident = identity if identity is not None else signing.demo_identity()
    with executor:
        context = make_context(inputs, seed, executor, ident, progress, gen, ref)
        return run_checks([check_cls(config)], context)[0]
