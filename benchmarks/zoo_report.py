"""The "Zoo" section of BENCHMARKS.md, rendered from the per-model records of ``zoo.py``.

Only the text between ``<!-- zoo:start -->`` and ``<!-- zoo:end -->`` is ours;
the rest of BENCHMARKS.md belongs to other benchmarks and is kept as it is.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Section", "render_section", "write_section", "START", "END"]

START = "<!-- zoo:start -->"
END = "<!-- zoo:end -->"
RULES = ("QR001", "QR002", "QR003", "QR004", "QR005")
PREPARE_TARGET = 0.95


@dataclass(frozen=True)
class Section:
    markdown: str
    summary_text: str


def _ratio(n: int, total: int) -> str:
    return f"{n}/{total} ({100 * n / total:.1f}%)" if total else "0/0"


def _mark(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _v(record: dict[str, Any]) -> dict[str, Any]:
    return record.get("verdict") or {}


def _family_row(name: str, records: list[dict[str, Any]], with_aimet: bool) -> list[str]:
    n = len(records)
    count = Counter()
    for r in records:
        v = _v(r)
        count["check"] += bool(v.get("check_completes"))
        count["pass"] += bool(v.get("prepare_pass"))
        count["identical"] += bool(v.get("identical"))
        count["clean"] += bool(v.get("clean"))
        count["leaves"] += bool((r.get("prepare") or {}).get("leaves"))
        count["bad"] += bool(v.get("crash") or v.get("silently_wrong") or v.get("timeout"))
        count["aimet_prepare"] += bool(v.get("aimet_prepare"))
        count["aimet_identical"] += bool(v.get("aimet_identical"))
        count["val_aimet"] += bool(v.get("validator_on_aimet"))
        count["val_qready"] += bool(v.get("validator_on_qready"))
    check_s = sum((r.get("check") or {}).get("time_s", 0) for r in records)
    prepare_s = sum((r.get("prepare") or {}).get("time_s", 0) for r in records)
    row = [name, str(n), f"{count['check']}", f"**{count['pass']}** ({100 * count['pass'] / n:.0f}%)" if n else "0",
           str(count["identical"]), str(count["clean"]), str(count["leaves"]), str(count["bad"]),
           f"{check_s:.0f} / {prepare_s:.0f}"]
    if with_aimet:
        row += [str(count["aimet_prepare"]), str(count["aimet_identical"]), str(count["val_aimet"]),
                str(count["val_qready"])]
    return row


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _yes(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "**no**"
    if value is None:
        return "–"
    return "error"


def _model_row(r: dict[str, Any], with_aimet: bool) -> list[str]:
    check = r.get("check") or {}
    prep = r.get("prepare") or {}
    recheck = r.get("recheck") or {}
    v = _v(r)
    if check.get("completed"):
        counts = check.get("counts", {})
        findings = [("–" if code == "QR001" and r.get("exporter") == "skipped" else str(counts.get(code, 0)))
                    for code in RULES]
    else:
        findings = ["✗"] * len(RULES)
    identical = "yes" if v.get("identical") else ("**no**" if prep.get("outcome") in ("ok", "verification-failed") else "–")
    remaining = recheck.get("remaining")
    left = "–" if remaining is None else (str(remaining) if remaining == 0 else f"**{remaining}**")
    leaves = str(len(prep.get("leaves") or []))
    prep_cell = {"ok": "ok", "verification-failed": "**verify**", "refused": "**refused**",
                 "crash": "**crash**"}.get(prep.get("outcome"), f"**{r.get('status', '?')}**")
    row = [f"`{r['name']}`", r.get("input", ""), f"{r.get('params_m', 0):g}",
           f"{check.get('time_s', 0):.1f}", *findings, prep_cell, f"{prep.get('time_s', 0):.1f}", identical, left, leaves]
    if with_aimet:
        a = r.get("aimet") or {}
        row += [("ok" if a.get("prepare") == "ok" else "failed") if a else "–", _yes(a.get("identical")),
                _yes(a.get("validator_on_aimet")), _yes(a.get("validator_on_qready"))]
    return row


def render_section(records: list[dict[str, Any]], environment: dict[str, Any], *, timeout: float) -> Section:
    """The markdown of the Zoo section, and a few summary lines for the terminal."""
    with_aimet = any(r.get("aimet") for r in records)
    total = len(records)
    families: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        families.setdefault(r["family"], []).append(r)

    check_ok = sum(bool(_v(r).get("check_completes")) for r in records)
    passed = sum(bool(_v(r).get("prepare_pass")) for r in records)
    crashes = [r for r in records if _v(r).get("crash")]
    wrong = [r for r in records if _v(r).get("silently_wrong")]
    timeouts = [r for r in records if _v(r).get("timeout")]
    aimet_ok = [r for r in records if _v(r).get("aimet_prepare")]
    aimet_ok_passed = [r for r in aimet_ok if _v(r).get("prepare_pass")]
    val_aimet = [r for r in records if _v(r).get("validator_on_aimet")]
    val_both = [r for r in val_aimet if _v(r).get("validator_on_qready")]
    val_qready = sum(bool(_v(r).get("validator_on_qready")) for r in records)
    aimet_identical = sum(bool(_v(r).get("aimet_identical")) for r in records)
    exporters = sorted({r.get("exporter", "?") for r in records})
    commands = sorted({r.get("command", "") for r in records if r.get("command")})
    versions = environment.get("versions", {})

    lines = [START, "## Zoo", ""]
    lines.append(
        f"{total} models: every torchvision model (`torchvision.models.list_models()`, `weights=None`), "
        f"{sum(len(v) for k, v in families.items() if k.startswith('timm'))} timm architectures (`pretrained=False`, "
        f"the smallest variant of each family, at the model's default input size) and "
        f"{sum(len(v) for k, v in families.items() if k.startswith('hf'))} tiny Hugging Face models built from configs "
        "(keyword inputs, `ModelOutput` results). Each model runs in its own subprocess "
        f"(timeout {timeout:g} s) on {environment.get('cpus', '?')} CPU cores."
    )
    lines.append("")
    reproduce = "; ".join(f"`{c}`" for c in commands) if commands else "`python benchmarks/zoo.py`"
    if commands == ["python benchmarks/zoo.py"]:
        reproduce += " (what `make zoo` runs, in the venv with the bench and interop extras)"
    lines.append(f"Reproduce: {reproduce}; one model: `python benchmarks/zoo.py --only '^tv/resnet18$'`.")
    lines.append("")
    lines.append(
        "Environment: " + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f"; Python {environment.get('python', '?')}; QR001 exporter: {', '.join(exporters)}."
    )
    lines.append("")
    lines.append(
        "A model **passes** when `qready.prepare` returns without error, its own verification is bit-identical "
        "(example and fresh input), the prepared model is bit-identical again on a third input drawn by the "
        "benchmark, `qready.check(prepared, select=QR003,QR004)` finds **nothing** (findings inside submodules "
        "left as leaves count as remaining), and no data-dependent branch of the root forward was specialized. "
        "AIMET: `aimet_torch.model_preparer.prepare_model` on a copy of the model, compared bit for bit on the "
        "same two inputs; `ModelValidator.validate_model` on AIMET's result (with the original's inputs) and on "
        "qready's result (with its flat inputs)."
    )
    lines.append("")

    lines.append("### Targets")
    lines.append("")
    target_rows = [
        ["qready check completes on 100% of models", _ratio(check_ok, total), _mark(check_ok == total)],
        [f"prepare bit-identical, zero QR003/QR004 left, on ≥{PREPARE_TARGET:.0%} of models", _ratio(passed, total),
         _mark(total > 0 and passed / total >= PREPARE_TARGET)],
        ["never a crash or a silently wrong model",
         f"{len(crashes)} crashes, {len(wrong)} silently wrong, {len(timeouts)} timeouts",
         _mark(not crashes and not wrong and not timeouts)],
    ]
    if with_aimet:
        target_rows += [
            ["prepare passes on every model where AIMET's prepare succeeds",
             _ratio(len(aimet_ok_passed), len(aimet_ok)), _mark(len(aimet_ok_passed) == len(aimet_ok))],
            ["AIMET's ModelValidator passes on qready's model wherever it passes on AIMET's",
             _ratio(len(val_both), len(val_aimet)), _mark(len(val_both) == len(val_aimet))],
        ]
    lines += _table(["target", "result", ""], target_rows)
    lines.append("")
    if with_aimet:
        lines.append(
            f"Side by side: qready prepares {_ratio(passed, total)} of the models bit-identical and clean; AIMET's "
            f"`prepare_model` succeeds on {_ratio(len(aimet_ok), total)} ({aimet_identical} of them bit-identical). "
            f"AIMET's ModelValidator passes on qready's prepared model for {_ratio(val_qready, total)} of the models, "
            f"on AIMET's own prepared model for {_ratio(len(val_aimet), total)}."
        )
        lines.append("")

    lines.append("### Summary per family")
    lines.append("")
    header = ["family", "models", "check completes", "prepare passes", "bit-identical", "no QR003/QR004 left",
              "with leaves", "crash / wrong / timeout", "check / prepare time (s)"]
    if with_aimet:
        header += ["AIMET prepare ok", "AIMET bit-identical", "AIMET validator on AIMET's", "AIMET validator on qready's"]
    rows = [_family_row(name, group, with_aimet) for name, group in families.items()]
    rows.append(_family_row("**all**", records, with_aimet))
    lines += _table(header, rows)
    lines.append("")

    failures = [r for r in records if not (_v(r).get("prepare_pass") and _v(r).get("check_completes"))]
    lines.append(f"### Failures ({len(failures)})")
    lines.append("")
    if failures:
        for r in failures:
            lines.append(f"- `{r['name']}`: {_single_line(_v(r).get('reason'))}")
    else:
        lines.append("None.")
    lines.append("")

    with_leaves = [r for r in records if (r.get("prepare") or {}).get("leaves")]
    lines.append(f"### Submodules left as leaves ({len(with_leaves)} models)")
    lines.append("")
    lines.append("A submodule whose forward torch.fx cannot trace (a Python branch on tensor data, an untraceable "
                 "call) stays whole; the reason is the first line of the error that stopped the trace.")
    lines.append("")
    for r in with_leaves:
        leaves = r["prepare"]["leaves"]
        lines.append(f"- `{r['name']}` ({len(leaves)}):")
        reasons: dict[str, list[str]] = {}
        for leaf in leaves:
            where = f" at {Path(leaf['file']).name}:{leaf['line']}" if leaf.get("file") else ""
            reasons.setdefault(f"{_single_line(leaf['reason'])}{where}", []).append(leaf["module"] or "<root>")
        for reason, modules in reasons.items():
            shown = ", ".join(f"`{m}`" for m in modules[:6]) + (f" and {len(modules) - 6} more" if len(modules) > 6 else "")
            lines.append(f"  - {shown}: {reason}")
    if not with_leaves:
        lines.append("None.")
    lines.append("")

    aimet_failures = Counter()
    if with_aimet:
        for r in records:
            a = r.get("aimet") or {}
            if a.get("prepare") == "failed":
                aimet_failures[_aimet_reason(a.get("prepare_error") or "")] += 1
        if aimet_failures:
            lines.append("### Why AIMET's prepare_model failed")
            lines.append("")
            lines += _table(["reason (first line, shortened)", "models"],
                            [[reason, str(n)] for reason, n in aimet_failures.most_common(15)])
            lines.append("")
        differing = [r for r in records if (r.get("aimet") or {}).get("prepare") == "ok"
                     and (r.get("aimet") or {}).get("identical") is not True]
        if differing:
            lines.append(f"### AIMET's prepared model is not bit-identical ({len(differing)} models)")
            lines.append("")
            silu = sum(bool(r["aimet"].get("has_silu")) for r in differing)
            lines.append("AIMET's `prepare_model` replaces every `nn.SiLU` by its `CustomSiLU` (`x * sigmoid(x)`), "
                         "which rounds differently from `F.silu`; the difference grows through the layers after it. "
                         f"{silu} of these {len(differing)} models use `nn.SiLU`.")
            lines.append("")
            lines += _table(["model", "first difference"],
                            [[f"`{r['name']}`", _single_line(r["aimet"].get("identical_error"))] for r in differing])
            lines.append("")
        lines += _validator_section(records)

    lines.append("### Per model")
    lines.append("")
    lines.append("<details><summary>all models</summary>")
    lines.append("")
    header = ["model", "input", "params (M)", "check (s)", *RULES, "prepare", "prepare (s)", "bit-identical",
              "QR003/QR004 left", "leaves"]
    if with_aimet:
        header += ["AIMET prepare", "AIMET bit-identical", "AIMET val. (AIMET's)", "AIMET val. (qready's)"]
    lines += _table(header, [_model_row(r, with_aimet) for r in records])
    lines.append("")
    lines.append("</details>")
    lines.append(END)

    summary = [
        f"zoo: {total} models; check completes {_ratio(check_ok, total)}; prepare passes {_ratio(passed, total)}; "
        f"{len(crashes)} crashes, {len(wrong)} silently wrong, {len(timeouts)} timeouts",
    ]
    if with_aimet:
        summary.append(
            f"AIMET: prepare_model ok {_ratio(len(aimet_ok), total)}, bit-identical {aimet_identical}; qready passes "
            f"on {_ratio(len(aimet_ok_passed), len(aimet_ok))} of those; validator on AIMET's {len(val_aimet)}, "
            f"on qready's {val_qready} (on qready's where on AIMET's: {len(val_both)}/{len(val_aimet)})"
        )
    for name, group in families.items():
        summary.append(f"  {name}: {sum(bool(_v(r).get('prepare_pass')) for r in group)}/{len(group)} pass")
    return Section("\n".join(lines) + "\n", "\n".join(summary))


def _validator_section(records: list[dict[str, Any]]) -> list[str]:
    """Why AIMET's ModelValidator rejects qready's prepared models: the op types it names."""
    failing = [r for r in records if (r.get("aimet") or {}).get("validator_on_qready") is not True
               and (r.get("aimet") or {}).get("validator_on_qready") is not None]
    if not failing:
        return []
    ops: Counter[str] = Counter()
    models_per_op: dict[str, list[str]] = {}
    other: list[str] = []
    for r in failing:
        a = r["aimet"]
        log = a.get("validator_on_qready_log") or {}
        types = sorted({entry.split(" in ", 1)[0] for entry in log.get("missing_modules") or []})
        for op in types:
            ops[op] += 1
            models_per_op.setdefault(op, []).append(r["name"])
        if log.get("reused_modules"):
            ops["(reused module)"] += 1
            models_per_op.setdefault("(reused module)", []).append(r["name"])
        if not types and not log.get("reused_modules"):
            other.append(f"`{r['name']}`: {_single_line(a.get('validator_on_qready'))}")
    lines = [
        f"### Why AIMET's ModelValidator rejects qready's prepared model ({len(failing)} models)",
        "",
        "`validate_for_missing_modules` names each op that runs outside a module and is not in AIMET's list of "
        "math-invariant ops; qready treats data movement, casts and indexing (`gather`, `type_as`, `__getitem__`, "
        "...) as no-ops for quantization and leaves them as they are. Ops inside submodules left as leaves "
        "are named too.",
        "",
    ]
    rows = []
    for op, n in ops.most_common():
        names = models_per_op[op]
        shown = ", ".join(f"`{m}`" for m in names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        rows.append([f"`{op}`", str(n), shown])
    lines += _table(["op type AIMET names", "models", "e.g."], rows)
    if other:
        lines.append("")
        lines.append("No op named (the validator raised, or its log said nothing): " + "; ".join(other))
    lines.append("")
    return lines


def _single_line(text: Any) -> str:
    return " ".join(str(text).split())


def _aimet_reason(error: str) -> str:
    # Group by the error's kind and first words: proxies, control flow, and so on.
    text = error.split(" (", 1)[0]
    return text if len(text) <= 110 else text[:107] + "..."


def write_section(path: Path, section: Section) -> None:
    """Replace the text between the zoo markers, or append the section when there is none."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    block = section.markdown.rstrip("\n")
    if START in text and END in text:
        before, rest = text.split(START, 1)
        _, after = rest.split(END, 1)
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
