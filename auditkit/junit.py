"""JUnit XML for CI systems: one test case per gate, one per record gate."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from auditkit.results import AuditRun


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
