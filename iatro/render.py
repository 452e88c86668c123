"""The report as text for a terminal (the same content as the JSON, readable by a pharmacist)."""

from __future__ import annotations

from iatro.model.report import Report


def render_text(report: Report) -> str:
    out = [f"Iatro report  (KB {report.kb_version})"]
    if not report.complete:
        out.append("!! INCOMPLETE: some lines could not be resolved; the analysis does not cover them.")
    out.append("")
    for line in report.lines:
        subs = ", ".join(f"{s.name} [{s.atc or '?'}]" for s in line.substances)
        product = f" — {line.product.name}" if line.product else ""
        out.append(f"{line.index:>2}. {line.input}")
        out.append(f"    {line.status.upper()}{product}" + (f"  ({line.reason})" if line.reason else ""))
        if subs:
            out.append(f"    substances: {subs}")
        for cand in line.candidates:
            label = cand.product.name if cand.product else ", ".join(s.name for s in cand.substances)
            out.append(f"    candidate: {label}")
        if line.posology:
            p = line.posology
            if p.parsed and p.dose_per_intake is None and p.mg_per_day is not None and not p.as_needed:
                out.append(f"    posologie: {p.mg_per_day:g} mg/j")
            elif p.parsed:
                dose = (
                    f"{p.dose_per_intake:g} {p.unit or ''}".strip() if p.dose_per_intake is not None else "?"
                )
                freq = f"{p.intakes_per_day:g}/j" if p.intakes_per_day is not None else ""
                extra = " si besoin" if p.as_needed else ""
                if p.max_intakes_per_day is not None:
                    extra += f" (max {p.max_intakes_per_day:g}/j)"
                mg = f", {p.mg_per_day:g} mg/j" if p.mg_per_day is not None else ""
                out.append(f"    posologie: {dose} {freq}{extra}{mg}".rstrip())
            else:
                out.append(f"    posologie (non interprétée): {p.text}")
    out.append("")
    if report.alerts:
        out.append("Alerts:")
        for alert in report.alerts:
            out.append(
                f"  [{alert.severity}] {alert.type}: {alert.message}  ({alert.source}, {alert.rule_id})"
            )
    if report.checks_not_run:
        out.append("Checks not run: " + ", ".join(report.checks_not_run))
    return "\n".join(out)
