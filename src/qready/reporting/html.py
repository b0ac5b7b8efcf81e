"""The HTML format: one self-contained page to read a report in a browser.

Inline CSS only, no scripts, no external assets: the file can be attached to a
CI run or mailed and still reads the same. Sections: a header with the verdict,
the coverage figure and one row per rule; the model's module tree with each
finding marked on its module; every finding with the source lines around it;
and, when given a ``PrepareResult``, what ``prepare`` converted, unrolled, left
whole and what remains. Every value from the model or the report is escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from qready.errors import strip_ansi
from qready.findings import SCHEMA_VERSION, Finding, Report, Severity
from qready.reporting.explain import SECTION_TITLES, rule_sections
from qready.reporting.sarif import tool_version

if TYPE_CHECKING:  # torch: the prepare machinery and the rules; `qready --help` must not wait for it
    from qready.prepared import PrepareResult
    from qready.rules.base import Rule

__all__ = ["emit_html", "render_html"]

CONTEXT_LINES = 3
_MAX_SPAN = 12  # other call sites this close to the finding's line share its snippet
_LOG_LIMIT = 20_000  # exporter logs can be megabytes; the head says what failed
_MAX_SOURCE_BYTES = 2_000_000


def emit_html(report: Report, stream: TextIO, color: bool = False) -> None:
    """The registry's emitter: the report alone (the module tree shows only modules with findings)."""
    stream.write(render_html(report))


def render_html(
    report: Report,
    *,
    module_paths: Iterable[str] | Mapping[str, str] | None = None,
    prepare_result: PrepareResult | None = None,
    source_root: str | Path | None = None,
) -> str:
    """The report as one HTML document.

    ``module_paths`` are the model's ``named_modules()`` paths (``""`` for the
    root), or a mapping of path to class name; without them the tree shows
    only the modules that have findings. ``source_root`` is where relative
    file paths of findings are read from (default: the working directory).
    """
    sources = _Sources(Path(source_root) if source_root is not None else Path.cwd())
    numbered = list(enumerate(report.findings, 1))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="qready">',
        f"<title>qready: {_e(report.model)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        _header(report, prepare_result),
        "<main>",
        _rules_section(report),
        _tree_section(report, numbered, module_paths, prepare_result),
        _findings_section(report, numbered, sources),
    ]
    if prepare_result is not None:
        parts.append(_prepare_section(prepare_result))
    parts += [
        "</main>",
        f'<footer>qready {_e(tool_version())} &middot; report schema {SCHEMA_VERSION}</footer>',
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


# -- header and rules ---------------------------------------------------------------------------


def _header(report: Report, prepare_result: PrepareResult | None) -> str:
    errors = len(report.errors)
    warnings = len(report.findings) - errors
    if report.ok:
        verdict = "ready" if not warnings else "ready, with warnings"
        verdict_class = "ok"
    else:
        verdict, verdict_class = "not ready", "error"
    counts = f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}"
    coverage = report.coverage
    percent = 100 * coverage.ratio if coverage is not None else 0.0
    if coverage is None:  # only exporter rules ran: the instrumented forward did not
        figure = "&ndash;"
        explained = "<strong>coverage</strong>: not measured (QR003 to QR005 were not selected)"
    elif coverage.total:
        figure = f"{percent:.1f}%"
        explained = (
            f"<strong>coverage</strong>: {coverage.covered} of {coverage.total} value-changing op calls run inside "
            "a leaf module, where a module-level quantizer can sit"
        )
    else:  # 0 of 0 is not 100%: nothing was observed (QR003 to QR005 did not run, or the model has no such op)
        figure, explained = "&ndash;", "<strong>coverage</strong>: no value-changing op call was observed"
        percent = 0.0
    verdicts = f'<span class="pill {verdict_class}">{_e(verdict)}</span> <span class="counts">{counts}</span>'
    if prepare_result is not None:  # the findings are the original's; the page's news is the prepared copy
        label, css = _VERIFIED[prepare_result.verified]
        verdicts = (
            f'<span class="pill {verdict_class}">original: {_e(verdict)}</span> <span class="counts">{counts}</span> '
            f'<span class="pill {css}">prepared copy: {label}</span>'
        )
    nav = ['<a href="#rules">Rules</a>', '<a href="#modules">Module tree</a>', '<a href="#findings">Findings</a>']
    if prepare_result is not None:
        nav.append('<a href="#prepare">Prepare</a>')
    return f"""<header class="page">
<div class="page-inner">
<p class="eyebrow">qready report</p>
<h1>{_e(report.model)}</h1>
<p class="verdict">{verdicts}</p>
<div class="coverage" aria-label="coverage">
<div class="coverage-figure">{figure}</div>
<div class="coverage-text">{explained}
<div class="bar" role="img" aria-label="{percent:.1f}% covered"><span style="width:{percent:.1f}%"></span></div></div>
</div>
<nav>{" ".join(nav)}</nav>
</div>
</header>"""


def _rules_section(report: Report) -> str:
    rows = []
    run = set(report.rules_run)
    from qready.rules import RULES

    for rule in RULES:
        findings = report.by_code(rule.code)
        errors = sum(f.severity is Severity.ERROR for f in findings)
        warnings = len(findings) - errors
        if rule.code not in run:
            status, status_class = "not run", "muted"
        elif errors:
            status, status_class = "fail", "error"
        elif warnings:
            status, status_class = "warn", "warning"
        else:
            status, status_class = "pass", "ok"
        name = f'<a href="#rule-{rule.code}">{_e(rule.name)}</a>' if findings else _e(rule.name)
        rows.append(
            f'<tr><td><span class="pill {status_class}">{status}</span></td>'
            f"<td><code>{rule.code}</code></td><td>{name}</td><td>{_e(rule.summary)}</td>"
            f'<td class="num{" error-text" if errors else ""}">{errors if rule.code in run else "&ndash;"}</td>'
            f'<td class="num{" warning-text" if warnings else ""}">{warnings if rule.code in run else "&ndash;"}</td></tr>'
        )
    return f"""<section id="rules">
<h2>Rules</h2>
<table class="rules">
<thead><tr><th></th><th>Code</th><th>Rule</th><th>Checks that</th><th class="num">Errors</th><th class="num">Warnings</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
</section>"""


# -- module tree --------------------------------------------------------------------------------


@dataclass
class _Node:
    path: str
    type_name: str = ""
    children: dict[str, _Node] = field(default_factory=dict)
    findings: list[tuple[int, Finding]] = field(default_factory=list)
    leaf_reason: str = ""

    def subtree_findings(self) -> int:
        return len(self.findings) + sum(child.subtree_findings() for child in self.children.values())


def _tree_section(
    report: Report,
    numbered: list[tuple[int, Finding]],
    module_paths: Iterable[str] | Mapping[str, str] | None,
    prepare_result: PrepareResult | None,
) -> str:
    types: Mapping[str, str] = module_paths if isinstance(module_paths, Mapping) else {}
    paths = list(module_paths) if module_paths is not None else []
    root = _Node("", types.get("", report.model))
    nodes = {"": root}

    def node(path: str) -> _Node:
        if path not in nodes:
            parent_path, _, name = path.rpartition(".")
            parent = node(parent_path)
            nodes[path] = parent.children.setdefault(name, _Node(path, types.get(path, "")))
        return nodes[path]

    for path in paths:
        node(path)
    for number, finding in numbered:
        node(finding.module).findings.append((number, finding))
    if prepare_result is not None:
        for leaf in prepare_result.leaves:
            node(leaf.module).leaf_reason = leaf.reason
        for path in prepare_result.excluded:
            node(path).leaf_reason = "excluded by the user"
    note = (
        ""
        if module_paths is not None
        else '<p class="note">Only modules with findings are shown: the report was written without the model\'s module list.</p>'
    )
    legend = (
        '<p class="note">Each badge is a finding on that module; follow it to the finding. '
        "Subtrees without findings start folded.</p>"
    )
    return f"""<section id="modules">
<h2>Module tree</h2>
{note}{legend}
<ul class="tree">
{_tree_item(root, "", is_root=True)}
</ul>
</section>"""


def _tree_item(node: _Node, name: str, *, is_root: bool = False) -> str:
    if is_root:
        label = f'<span class="mod-name">{_e(node.type_name)}</span> <span class="mod-path">root</span>'
    else:
        label = f'<span class="mod-name">{_e(name)}</span>'
        if node.type_name:
            label += f' <span class="mod-type">{_e(node.type_name)}</span>'
        if "." in node.path:  # the full path, where the name alone is ambiguous (every block has a conv1)
            label += f' <span class="mod-path">{_e(node.path)}</span>'
    by_code: dict[str, list[tuple[int, Finding]]] = {}
    for number, finding in node.findings:
        by_code.setdefault(finding.code, []).append((number, finding))
    for code, group in by_code.items():  # one badge a rule: a root with forty functional calls stays one line
        severity = "error" if any(f.severity is Severity.ERROR for _, f in group) else "warning"
        title = f"{group[0][1].rule}: " + ", ".join(dict.fromkeys(f.op or f.message for _, f in group))
        times = f" &times;{len(group)}" if len(group) > 1 else ""
        label += f' <a class="badge {severity}" href="#finding-{group[0][0]}" title="{_e(title)}">{_e(code)}{times}</a>'
    if node.leaf_reason:
        label += f' <span class="badge leaf" title="{_e(node.leaf_reason)}">left whole</span>'
    flagged = "flagged" if node.findings else "plain"
    if not node.children:
        return f'<li class="{flagged} leaf-row"><span class="row">{label}</span></li>'
    below = node.subtree_findings() - len(node.findings)
    if below:
        label += f' <span class="below">{_plural(below, "finding")} below</span>'
    opened = " open" if is_root or below else ""
    children = "\n".join(_tree_item(child, child_name) for child_name, child in node.children.items())
    return (
        f'<li class="{flagged}"><details{opened}><summary>{label}</summary>'
        f"\n<ul>\n{children}\n</ul></details></li>"
    )


# -- findings -----------------------------------------------------------------------------------


class _Sources:
    """Source files read once each; a missing or unreadable file is simply not shown."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lines: dict[str, list[str] | None] = {}

    def lines(self, file: str) -> list[str] | None:
        if file not in self._lines:
            self._lines[file] = self._read(file)
        return self._lines[file]

    def _read(self, file: str) -> list[str] | None:
        if file.startswith("<"):
            return None
        path = Path(file)
        if not path.is_absolute():
            path = self.root / path
        try:
            if not path.is_file() or path.stat().st_size > _MAX_SOURCE_BYTES:
                return None
            return path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return None


def _remaining_kind(finding: Finding, result: PrepareResult) -> str:
    """Why a finding is still there: the original's own, inside a leaf, or left by prepare."""
    if finding in result.unexpected:
        return "outside the leaves"
    if finding in result.inherited:
        return "the original's too"
    return "inside a leaf" if finding.code in ("QR003", "QR004") else "left after prepare"


def _findings_section(report: Report, numbered: list[tuple[int, Finding]], sources: _Sources) -> str:
    if not report.findings:
        return (
            '<section id="findings"><h2>Findings</h2>'
            f'<p class="empty">No findings from {_e(", ".join(report.rules_run) or "no rules")}.</p></section>'
        )
    blocks = ['<section id="findings">', "<h2>Findings</h2>"]
    from qready.rules import RULES

    rules = {rule.code: rule for rule in RULES}
    for code in dict.fromkeys(f.code for _, f in numbered):
        group = [(n, f) for n, f in numbered if f.code == code]
        rule = rules.get(code)
        name = rule.name if rule else group[0][1].rule
        blocks.append(
            f'<h3 id="rule-{_e(code)}"><code>{_e(code)}</code> {_e(name)} '
            f'<span class="h-count">{_plural(len(group), "finding")}</span></h3>'
        )
        if rule is not None:
            blocks.append(_rule_doc(rule))
        blocks += [_finding_card(number, finding, sources) for number, finding in group]
    blocks.append("</section>")
    return "\n".join(blocks)


def _rule_doc(rule: type[Rule]) -> str:
    sections = rule_sections(rule)
    body = []
    for key, text in sections.items():
        paragraphs = "".join(f"<p>{_inline(p)}</p>" for p in text.split("\n\n"))
        body.append(f"<h4>{_e(SECTION_TITLES[key])}</h4>{paragraphs}")
    examples = []
    for title, code in (("Before", rule.before), ("After", rule.after)):
        if code:
            examples.append(f'<div><h4>{title}</h4><pre class="example">{_e(code)}</pre></div>')
    if examples:
        body.append(f'<div class="before-after">{"".join(examples)}</div>')
    return (
        f'<details class="rule-doc"><summary>About {_e(rule.code)}: {_e(rule.summary)}</summary>'
        f'{"".join(body)}</details>'
    )


def _finding_card(number: int, finding: Finding, sources: _Sources) -> str:
    severity = finding.severity.value
    location = _e(finding.location) if finding.file else "no source line"
    facts = [("Module", f"<code>{_e(finding.module or '(root)')}</code>")]
    if finding.op:
        facts.append(("Op", f"<code>{_e(finding.op)}</code>"))
    if finding.count > 1:
        facts.append(("Times", str(finding.count)))
    facts += _detail_facts(finding)
    fact_list = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in facts)
    fix = f'<p class="fix"><span class="fix-label">Fix</span> {_e(finding.fix)}</p>' if finding.fix else ""
    return f"""<article class="finding {severity}" id="finding-{number}">
<div class="finding-head"><span class="pill {severity}">{severity}</span> <code class="code">{_e(finding.code)}</code>
<span class="rule-name">{_e(finding.rule)}</span> <span class="loc">{location}</span>
<a class="anchor" href="#finding-{number}" aria-label="link to this finding">#{number}</a></div>
<p class="message">{_e(strip_ansi(finding.message))}</p>
{fix}
<dl class="facts">{fact_list}</dl>
{_snippet(finding, sources)}
{_log(finding)}
</article>"""


def _detail_facts(finding: Finding) -> list[tuple[str, str]]:
    facts = []
    details = dict(finding.details)
    sites = details.get("call_sites")
    if sites:
        items = "".join(f"<li><code>{_e(str(site))}</code></li>" for site in sites)
        facts.append(("Called at", f'<ul class="plain-list">{items}</ul>'))
    paths = details.get("paths")
    if paths and len(paths) > 1:
        facts.append(("Registered as", ", ".join(f"<code>{_e(str(p))}</code>" for p in paths)))
    values = details.get("values")
    if values:
        items = "".join(
            f"<li>{_e(str(v.get('side', '')))} <code>{_e(str(v.get('path', '')))}</code>: {_e(str(v.get('description', '')))}</li>"
            if isinstance(v, Mapping)
            else f"<li>{_e(str(v))}</li>"
            for v in values
        )
        facts.append(("Values", f'<ul class="plain-list">{items}</ul>'))
    if details.get("exporter"):
        facts.append(("Exporter", _e(str(details["exporter"]))))
    return facts


def _snippet(finding: Finding, sources: _Sources) -> str:
    if finding.file is None or finding.line is None:
        return ""
    lines = sources.lines(finding.file)
    if lines is None:
        return f'<p class="no-source">Source not available: {_e(finding.file)} is not readable from here.</p>'
    if not 1 <= finding.line <= len(lines):
        return (
            f'<p class="no-source">Line {finding.line} is past the end of {_e(finding.file)} '
            f"({len(lines)} lines): the file changed since the check.</p>"
        )
    others = sorted(
        n for n in _other_sites(finding) if n != finding.line and abs(n - finding.line) <= _MAX_SPAN and n <= len(lines)
    )
    first = max(1, min([finding.line, *others]) - CONTEXT_LINES)
    last = min(len(lines), max([finding.line, *others]) + CONTEXT_LINES)
    shown = [line.expandtabs(4) for line in lines[first - 1 : last]]
    # dedent what is shown: a method body reads better without eight columns of indentation
    indent = min((len(t) - len(t.lstrip()) for t in shown if t.strip()), default=0)
    width = len(str(last))
    rows = []
    for number, text in enumerate(shown, first):
        if number == finding.line:
            css, marker = " hit", "&#9654;"  # a glyph as well as a colour, for readers who can't tell the shades
        elif number in others:
            css, marker = " hit also", "&#9655;"
        else:
            css, marker = "", " "
        rows.append(
            f'<span class="src-line{css}"><span class="gutter">{marker}</span>'
            f'<span class="ln">{number:>{width}}</span><span class="text">{_e(text[indent:]) or " "}</span></span>'
        )
    also = f" (also line{'s' if len(others) > 1 else ''} {', '.join(map(str, others))})" if others else ""
    return (
        f'<figure class="source"><figcaption>{_e(finding.file)}, line {finding.line}{also}</figcaption>'
        f'<pre>{"".join(rows)}</pre></figure>'
    )


def _other_sites(finding: Finding) -> set[int]:
    """Lines of the same file that a finding also names (the other calls of a reused module)."""
    found = set()
    for site in finding.detail("call_sites") or ():
        file, _, line = str(site).rpartition(":")
        if file == finding.file and line.isdigit():
            found.add(int(line))
    return found


def _log(finding: Finding) -> str:
    log = finding.detail("log")
    if not log or not str(log).strip():
        return ""
    text = str(log).strip()
    note = ""
    if len(text) > _LOG_LIMIT:
        note = f" (first {_LOG_LIMIT:,} of {len(text):,} characters; the JSON report has it all)"
        text = text[:_LOG_LIMIT]
    text = strip_ansi(text)
    return f'<details class="log"><summary>Tool output{_e(note)}</summary><pre>{_e(text)}</pre></details>'


# -- prepare ------------------------------------------------------------------------------------


_VERIFIED = {True: ("verified bit-identical", "ok"), False: ("verification failed", "error"), None: ("not verified", "muted")}


def _prepare_section(result: PrepareResult) -> str:
    label, css = _VERIFIED[result.verified]
    ok_label, ok_css = ("complies", "ok") if result.ok else ("needs attention", "error")
    io = []
    io.append(
        "inputs flattened to " + ", ".join(f"<code>{_e(n)}</code>" for n in result.input_names)
        if result.inputs_flattened
        else "inputs already tensors"
    )
    io.append(
        "outputs flattened to " + ", ".join(f"<code>{_e(n)}</code>" for n in result.output_names)
        if result.outputs_flattened
        else "outputs already tensors"
    )
    parts = [
        '<section id="prepare">',
        "<h2>Prepare</h2>",
        f'<p class="verdict"><span class="pill {css}">{label}</span> <span class="pill {ok_css}">{ok_label}</span></p>',
        f'<p class="summary-line">{_e(result.summary())}</p>',
        f"<p>{'; '.join(io)}.</p>",
    ]

    converted = [
        (_where(c.file, c.line), f"<code>{_e(c.op)}</code>", f"<code>{_e(c.module)}</code>", f"<code>{_e(c.module_type)}</code>")
        for c in result.converted
    ]
    parts.append(_table("Converted to modules", ("Where", "Call", "New module", "Type"), converted))
    unrolled = [
        (
            _where(c.file, c.line),
            f"<code>{_e(c.op)}</code>",
            f"<code>{_e(c.module)}</code>",
            "tied" if dict(c.details).get("weights_tied") else "&ndash;",
        )
        for c in result.unrolled
    ]
    parts.append(_table("Reused modules unrolled", ("Where", "Module called again", "New instance", "Weights"), unrolled))
    leaves = [(f"<code>{_e(leaf.module)}</code>", _e(leaf.reason), _where(leaf.file, leaf.line)) for leaf in result.leaves]
    leaves += [(f"<code>{_e(path)}</code>", "excluded by the user", "&ndash;") for path in result.excluded]
    parts.append(_table("Left whole as leaves", ("Module", "Why", "Where"), leaves))

    remaining = [
        (_where(c.file, c.line), f"<code>{_e(c.op)}</code>", "unconverted", _e(str(dict(c.details).get("reason", ""))))
        for c in result.unconverted
    ]
    remaining += [
        (_where(file, line), "branch on a tensor value", "specialized", f"always taken as {_e(str(value))}, the example's value")
        for file, line, value in result.specialized
    ]
    remaining += [
        (
            _e(f.location),
            f'<span class="badge {f.severity.value}">{_e(f.code)}</span> <code>{_e(f.module or "(root)")}</code>',
            _remaining_kind(f, result),
            _e(f.message),
        )
        for f in result.residual + result.unexpected
    ]
    parts.append(_table("What remains", ("Where", "What", "Kind", "Detail"), remaining, empty="Nothing: every finding was fixed."))

    diffs = [
        (
            _e(d.run),
            f"<code>{_e(d.name)}</code>",
            '<span class="ok-text">equal</span>' if d.equal else '<span class="error-text">differs</span>',
            "0" if d.equal else _e(f"{d.max_abs_diff:.3g}"),
        )
        for d in result.diffs
    ]
    parts.append(_table("Verification", ("Input", "Output", "Result", "Max abs diff"), diffs, empty="Not run."))
    parts.append("</section>")
    return "\n".join(parts)


def _table(title: str, columns: tuple[str, ...], rows: Sequence[tuple[str, ...]], *, empty: str = "None.") -> str:
    heading = f'<h3>{_e(title)} <span class="h-count">{len(rows)}</span></h3>'
    if not rows:
        return f'{heading}<p class="empty">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "\n".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'{heading}<table class="data"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>'


# -- helpers ------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _inline(text: str) -> str:
    """Escaped text with `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(text))


def _where(file: str | None, line: int | None) -> str:
    if not file:
        return "&ndash;"
    return f'<span class="loc">{_e(file)}{f":{line}" if line is not None else ""}</span>'


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


_CSS = """
:root {
  --bg: #f6f7f9; --panel: #ffffff; --ink: #1b1f24; --muted: #5b6470; --line: #dde1e6;
  --error: #b42318; --error-bg: #fdecea; --warning: #a15c07; --warning-bg: #fff4e0;
  --ok: #1a7f37; --ok-bg: #e6f4ea; --leaf: #3b5bdb; --leaf-bg: #e7ecff;
  --code-bg: #f2f4f7; --hit-bg: #fff1b8; --hit-also-bg: #fff9de; --hit-bar: #e0a800; --head-bg: #14213d; --head-ink: #f5f7fa;
  --mono: ui-monospace, "SFMono-Regular", "JetBrains Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1216; --panel: #171b21; --ink: #e6e9ed; --muted: #9aa4b0; --line: #2b323b;
    --error: #ff8a80; --error-bg: #3a1d1b; --warning: #ffc266; --warning-bg: #3a2c12;
    --ok: #7ee2a0; --ok-bg: #15301f; --leaf: #9fb4ff; --leaf-bg: #1e2745;
    --code-bg: #1f242b; --hit-bg: #4a3d0c; --hit-also-bg: #2e2710; --hit-bar: #e0a800; --head-bg: #0b1a33;
  }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--ink);
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif;
}
code, pre { font-family: var(--mono); font-size: 0.88em; }
code { background: var(--code-bg); padding: 0.05em 0.35em; border-radius: 4px; }
a { color: inherit; }
header.page { background: var(--head-bg); color: var(--head-ink); }
.page-inner, main, footer { max-width: 1120px; margin: 0 auto; padding: 0 28px; }
header.page .page-inner { padding-top: 26px; padding-bottom: 20px; }
.eyebrow { margin: 0; text-transform: uppercase; letter-spacing: 0.12em; font-size: 0.78rem; opacity: 0.75; }
h1 { margin: 4px 0 10px; font-size: 2.1rem; line-height: 1.2; font-weight: 700; word-break: break-word; }
header.page .counts { font-size: 1.05rem; margin-left: 6px; }
.verdict { margin: 0 0 16px; }
.coverage { display: flex; align-items: center; gap: 18px; max-width: 760px; }
.coverage-figure { font-size: 2.3rem; font-weight: 700; font-variant-numeric: tabular-nums; }
.coverage-text { flex: 1; font-size: 0.95rem; opacity: 0.92; }
.bar { height: 8px; border-radius: 4px; background: rgba(255,255,255,0.22); margin-top: 6px; overflow: hidden; }
.bar span { display: block; height: 100%; background: #5ad18a; }
nav { margin-top: 18px; display: flex; gap: 18px; font-size: 0.92rem; }
nav a { color: var(--head-ink); opacity: 0.85; text-decoration: none; border-bottom: 1px solid rgba(255,255,255,0.35); }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 6px 24px 20px; margin: 24px 0; }
h2 { font-size: 1.35rem; margin: 16px 0 12px; }
h3 { font-size: 1.1rem; margin: 26px 0 8px; padding-top: 6px; border-top: 1px solid var(--line); }
h2 + h3, h2 + .note + h3 { border-top: 0; }
h4 { margin: 14px 0 4px; font-size: 0.95rem; }
.h-count { color: var(--muted); font-weight: 400; font-size: 0.9rem; margin-left: 6px; }
.note, .empty { color: var(--muted); font-size: 0.93rem; margin: 4px 0 10px; }
.pill {
  display: inline-block; padding: 0.1em 0.65em; border-radius: 999px; font-size: 0.8rem; font-weight: 700;
  text-transform: uppercase; letter-spacing: 0.04em; border: 1px solid transparent; vertical-align: 0.1em;
  white-space: nowrap;
}
.pill.error { background: var(--error-bg); color: var(--error); border-color: var(--error); }
.pill.warning { background: var(--warning-bg); color: var(--warning); border-color: var(--warning); }
.pill.ok { background: var(--ok-bg); color: var(--ok); border-color: var(--ok); }
.pill.muted { background: var(--code-bg); color: var(--muted); border-color: var(--line); }
.error-text { color: var(--error); font-weight: 700; }
.warning-text { color: var(--warning); font-weight: 700; }
.ok-text { color: var(--ok); font-weight: 700; }
table { border-collapse: collapse; width: 100%; font-size: 0.94rem; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 0.82rem; text-transform: uppercase; letter-spacing: 0.04em; }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
tbody tr:last-child td { border-bottom: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.rules td:nth-child(3) a { font-weight: 600; }
table.rules td:nth-child(-n+3) { white-space: nowrap; }
table.data td { word-break: break-word; }
.tree, .tree ul { list-style: none; margin: 0; padding-left: 22px; }
.tree { padding-left: 0; font-size: 0.94rem; }
.tree ul { border-left: 1px dashed var(--line); margin-left: 7px; padding-left: 16px; }
.tree li { margin: 2px 0; }
.tree summary { cursor: pointer; }
.tree li.leaf-row > .row { padding-left: 1.05em; }
.mod-name { font-family: var(--mono); font-weight: 600; }
.mod-type { color: var(--muted); }
.mod-path { color: var(--muted); font-family: var(--mono); font-size: 0.8em; }
li.flagged > .row .mod-name, li.flagged > details > summary .mod-name { color: var(--error); }
.tree summary::marker { color: var(--muted); }
.below { color: var(--muted); font-size: 0.82em; font-style: italic; }
.badge {
  display: inline-block; font: 700 0.74rem/1.5 var(--mono); padding: 0 0.45em; border-radius: 4px;
  text-decoration: none; vertical-align: 0.08em; margin-left: 2px;
}
.badge.error { background: var(--error); color: #fff; }
.badge.warning { background: var(--warning); color: #fff; }
.badge.leaf { background: var(--leaf-bg); color: var(--leaf); font-family: inherit; font-weight: 600; }
details.rule-doc { margin: 0 0 12px; font-size: 0.94rem; }
details.rule-doc > summary { cursor: pointer; color: var(--muted); }
details.rule-doc p { margin: 4px 0 8px; max-width: 78ch; }
.before-after { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; }
pre.example { background: var(--code-bg); padding: 10px 12px; border-radius: 6px; overflow-x: auto; margin: 0; }
article.finding {
  border: 1px solid var(--line); border-left: 5px solid var(--error); border-radius: 8px;
  padding: 12px 16px 14px; margin: 12px 0 16px;
}
article.finding.warning { border-left-color: var(--warning); }
.finding-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 8px; }
.finding-head .code { font-weight: 700; }
.rule-name { font-weight: 600; }
.loc { font-family: var(--mono); font-size: 0.88em; color: var(--muted); }
.finding-head .loc { margin-left: auto; }
.anchor { color: var(--muted); font-size: 0.85em; text-decoration: none; }
.message { margin: 8px 0 6px; font-size: 1.02rem; }
.fix { margin: 6px 0 8px; }
.fix-label {
  display: inline-block; background: var(--ok-bg); color: var(--ok); font-weight: 700; font-size: 0.78rem;
  text-transform: uppercase; letter-spacing: 0.05em; padding: 0.05em 0.5em; border-radius: 4px; margin-right: 4px;
}
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0 10px; font-size: 0.92rem; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.plain-list { list-style: none; margin: 0; padding: 0; }
figure.source { margin: 8px 0 0; border: 1px solid var(--line); border-radius: 6px; overflow: hidden; }
figure.source figcaption { font: 0.8rem var(--mono); color: var(--muted); background: var(--code-bg); padding: 4px 12px; border-bottom: 1px solid var(--line); }
figure.source pre { margin: 0; padding: 6px 0; overflow-x: auto; line-height: 1.55; tab-size: 4; }
.src-line { display: block; padding-right: 12px; white-space: pre; border-left: 4px solid transparent; }
.src-line.hit { background: var(--hit-bg); border-left-color: var(--hit-bar); font-weight: 600; }
.src-line.hit.also { background: var(--hit-also-bg); font-weight: 400; }
.gutter { display: inline-block; width: 1.6em; text-align: center; color: var(--hit-bar); font-size: 0.8em; }
.ln { display: inline-block; color: var(--muted); padding-right: 14px; user-select: none; font-variant-numeric: tabular-nums; }
.src-line.hit .ln { color: var(--ink); }
.no-source { color: var(--muted); font-style: italic; font-size: 0.9rem; margin: 8px 0 0; }
details.log { margin-top: 10px; font-size: 0.9rem; }
details.log summary { cursor: pointer; color: var(--muted); }
details.log pre { max-height: 360px; overflow: auto; background: var(--code-bg); padding: 10px 12px; border-radius: 6px; white-space: pre-wrap; word-break: break-word; }
.summary-line { font-family: var(--mono); font-size: 0.9rem; background: var(--code-bg); padding: 8px 12px; border-radius: 6px; }
footer { color: var(--muted); font-size: 0.85rem; padding-top: 4px; padding-bottom: 32px; }
@media (max-width: 720px) {
  .before-after { grid-template-columns: 1fr; }
  .finding-head .loc { margin-left: 0; width: 100%; }
  .coverage { flex-direction: column; align-items: flex-start; }
}
"""
