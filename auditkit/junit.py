"""JUnit XML for CI systems: one test case per gate, one per record gate."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from auditkit.results import AuditRun

#: What to do when a gate of a check fails, by check id (anything else: the generic advice).
ADVICE = {
    "phi": "Open the PHI section of report.pdf: the evidence names each record and rule; remove "
    "or regenerate those records (quarantine.jsonl lists them) and re-run the audit.",
    "overlap": "Open the overlap section of report.pdf: the evidence names the copied source "
    "passages; regenerate those records, or reduce memorisation (fewer epochs, deduplicated "
    "training data), and re-run the audit.",
    "membership": "The generator may have memorised its training notes: retrain with "
    "regularisation or differential privacy, or generate from a model that never saw them.",
    "diversity": "Open the diversity section of report.pdf: regenerate the listed codes with "
    "more varied prompts or sampling (higher temperature, more seeds), or drop "
    "near-duplicates, and re-run the audit.",
    "fidelity": "Open the fidelity section of report.pdf: records do not match their ICD-10 "
    "code; fix the prompts or filter the records, and re-run the audit.",
}
GENERIC_ADVICE = (
    "Open the check's section of report.pdf for the evidence, fix the data or the generator, "
    "and re-run the audit; change the policy only with the data owner's sign-off."
)


def advice(metric: str) -> str:
    """What to do about a failed gate on ``metric`` (``check.metric``)."""
    return ADVICE.get(metric.split(".", 1)[0], GENERIC_ADVICE)


def _fmt(value: float | int | None) -> str:
    return "n/a" if value is None else f"{value:g}"


def junit_xml(run: AuditRun) -> str:
    """Render the verdict as a JUnit XML document (``testsuites`` root)."""
    verdict = run.verdict
    suites = ET.Element("testsuites", name="auditkit")
    suite = ET.SubElement(suites, "testsuite", name=f"auditkit.{run.policy.name}")
    failures = skipped = 0
    for gate in verdict.gates:
        case = ET.SubElement(suite, "testcase", classname="auditkit.gates", name=gate.id)
        text = (
            f"{gate.metric} = {_fmt(gate.value)}; needs {gate.op} {gate.threshold:g} "
            f"({gate.severity}). {gate.why}"
        )
        if gate.reason:
            text += f" [{gate.reason}]"
        if gate.outcome in ("fail", "warn"):
            text += f" What to do: {advice(gate.metric)}"
        elif gate.outcome == "error":
            text += " What to do: the check could not compute; re-run with AUDITKIT_DEBUG=1 "
            text += "for the cause, fix it and re-run the audit."
        if gate.outcome == "fail":
            failures += 1
            ET.SubElement(case, "failure", message=text, type="gate_failed").text = text
        elif gate.outcome == "error":
            failures += 1
            ET.SubElement(case, "error", message=text, type="check_error").text = text
        elif gate.outcome == "skipped":
            skipped += 1
            ET.SubElement(case, "skipped", message=text)
        else:
            ET.SubElement(case, "system-out").text = f"{gate.outcome.upper()}: {text}"
    for rgate in verdict.record_gates:
        case = ET.SubElement(suite, "testcase", classname="auditkit.record_gates", name=rgate.id)
        text = (
            f"{rgate.failed} of {rgate.evaluated} records quarantined "
            f"({rgate.field} {rgate.op} {rgate.threshold:g})"
        )
        if rgate.outcome == "error":
            failures += 1
            ET.SubElement(case, "error", message=rgate.reason or "", type="check_error")
        elif rgate.outcome == "skipped":
            skipped += 1
            ET.SubElement(case, "skipped", message=rgate.reason or "")
        else:
            ET.SubElement(case, "system-out").text = text
    total = len(verdict.gates) + len(verdict.record_gates)
    suite.set("tests", str(total))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", "0")
    ET.SubElement(suite, "system-out").text = verdict.summary
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
