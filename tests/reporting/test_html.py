"""The HTML report: one self-contained, escaped page, checked by parsing it (and by a real browser when there is one)."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from qready.cli import main
from qready.reporting import emit
from qready.reporting.html import render_html

from .fixture import DATA, MODULE_TYPES, clean_report, fixture_prepare_result, fixture_report

ROOT = Path(__file__).resolve().parents[2]
VOID = {"meta", "br", "img", "link", "input", "hr", "wbr", "source"}


class Element:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element] = []
        self.parts: list[str] = []

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        return "".join(self.parts) + "".join(child.text() for child in self.children)

    def iter(self, tag: str | None = None, cls: str | None = None):  # type: ignore[no-untyped-def]
        for child in self.children:
            if (tag is None or child.tag == tag) and (cls is None or cls in child.classes):
                yield child
            yield from child.iter(tag, cls)


class Tree(HTMLParser):
    """A small DOM: enough to assert structure, and it fails on mismatched tags."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.current = self.root
        self.doctype = ""
        self.feed(source)
        self.close()
        assert self.current is self.root, f"<{self.current.tag}> never closed"

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_endtag(self, tag: str) -> None:
        assert self.current.tag == tag, f"</{tag}> closes <{self.current.tag}>"
        assert self.current.parent is not None
        self.current = self.current.parent

    def handle_data(self, data: str) -> None:
        self.current.parts.append(data)

    def by_id(self, id_: str) -> Element:
        found = [e for e in self.root.iter() if e.attrs.get("id") == id_]
        assert len(found) == 1, f"{len(found)} elements with id {id_!r}"
        return found[0]


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(
        fixture_report(), module_paths=MODULE_TYPES, prepare_result=fixture_prepare_result(), source_root=DATA
    )


@pytest.fixture(scope="module")
def tree(page: str) -> Tree:
    return Tree(page)


def test_one_self_contained_file(page: str, tree: Tree) -> None:
    assert tree.doctype.lower() == "doctype html"
    tags = {e.tag for e in tree.root.iter()}
    assert "script" not in tags and "link" not in tags and "img" not in tags and "iframe" not in tags
    assert len(list(tree.root.iter("style"))) == 1
    for element in tree.root.iter():
        for attr in ("src", "href", "action"):
            value = element.attrs.get(attr)
            assert value is None or value.startswith("#"), f"<{element.tag} {attr}={value!r}> leaves the page"
    assert "url(" not in page and "@import" not in page


def test_header_has_model_verdict_rules_and_coverage(tree: Tree) -> None:
    header = next(tree.root.iter("header", "page"))
    assert next(header.iter("h1")).text() == "SampleNet"
    assert "original: not ready" in header.text() and "7 errors, 2 warnings" in header.text()
    # the findings are the original's; the page also says what became of the prepared copy
    assert "prepared copy: verification failed" in header.text()  # the fixture's prepare failed verification
    alone = Tree(render_html(fixture_report(), module_paths=MODULE_TYPES, source_root=DATA))
    assert "prepared copy" not in next(alone.root.iter("header", "page")).text()
    assert "70.0%" in header.text() and "7 of 10" in header.text()
    rows = list(tree.by_id("rules").iter("tr"))[1:]
    cells = {r.children[1].text(): [c.text() for c in r.children] for r in rows}
    from qready.rules import RULES

    assert list(cells) == [rule.code for rule in RULES]  # every rule, those the report did not run too
    assert cells["QR003"][0] == "fail" and cells["QR003"][4:] == ["4", "0"]
    assert cells["QR002"][0] == "warn" and cells["QR002"][4:] == ["0", "1"]


def test_module_tree_marks_each_finding_on_its_module(tree: Tree) -> None:
    modules = tree.by_id("modules")
    names = [e.text() for e in modules.iter("span", "mod-name")]
    assert names[0] == "SampleNet" and sorted(names[1:]) == sorted(p.rsplit(".", 1)[-1] for p in MODULE_TYPES if p)
    badges = list(modules.iter("a", "badge"))
    counted = 0
    for badge in badges:  # one badge per rule and module, "QR003 ×2" when it found more than one
        code, _, times = badge.text().partition(" \u00d7")
        counted += int(times or 1)
        assert code in tree.by_id(badge.attrs["href"][1:]).text()  # every badge leads to a finding of its rule
    assert counted == len(fixture_report().findings)
    # the badge sits on the row of the module the finding names
    row_of = {}
    for li in modules.iter("li"):
        row = li.children[0] if li.children[0].tag == "span" else li.children[0].children[0]
        path = next(iter(row.iter("span", "mod-path")), None)
        row_of[path.text() if path else next(row.iter("span", "mod-name")).text()] = row
    assert [b.text() for b in row_of["blocks.0.act"].iter("a", "badge")] == ["QR004"]
    assert [b.text() for b in row_of["aux"].iter("a", "badge")] == ["QR005"]
    root_badges = {b.text(): b.classes for b in row_of["root"].iter("a", "badge")}
    assert root_badges == {  # QR005 holds only a warning at the root, QR003 one error
        "QR001": {"badge", "error"}, "QR002": {"badge", "warning"}, "QR003": {"badge", "error"},
        "QR005": {"badge", "warning"},
    }
    assert "left whole" in row_of["head"].text()  # excluded by the user in the prepare result


def test_each_finding_shows_its_source_with_the_line_highlighted(tree: Tree) -> None:
    cards = list(tree.by_id("findings").iter("article", "finding"))
    assert len(cards) == len(fixture_report().findings)
    reused = next(c for c in cards if "QR004" in c.text())
    hits = list(reused.iter("span", "hit"))
    primary = [h for h in hits if "also" not in h.classes]
    assert len(primary) == 1 and "return self.act(y + x)" in primary[0].text()
    assert "16" in next(primary[0].iter("span", "ln")).text()
    assert [h for h in hits if "also" in h.classes][0].text().strip().endswith("y = self.act(self.conv(x))")
    relu = next(c for c in cards if "torch.nn.functional.relu" in c.text())
    assert "x = F.relu(self.stem(x))" in next(relu.iter("span", "hit")).text()
    assert "error" in relu.classes and "warning" in next(c for c in cards if "QR002" in c.text()).classes


def test_missing_source_and_missing_location_are_said_plainly(tree: Tree) -> None:
    cards = list(tree.by_id("findings").iter("article", "finding"))
    aux = next(c for c in cards if "AuxHead" in c.text())
    assert not list(aux.iter("figure")) and "Source not available" in aux.text()
    onnx = next(c for c in cards if "QR001" in c.text())
    assert "no source line" in onnx.text() and "guard <u0> & friends" in next(onnx.iter("details", "log")).text()


def test_everything_is_escaped(page: str, tree: Tree) -> None:
    assert "<extra>" not in page and "<u0>" not in page and "<getitem>" not in page
    assert "&lt;extra&gt;" in page
    assert not any(e.tag in {"extra", "u0", "getitem"} for e in tree.root.iter())
    text = tree.by_id("findings").text()
    assert "dict with keys 'logits', '<extra>' & \"more\"" in text  # and it reads back as written


def test_prepare_section_lists_changes_leaves_and_what_remains(tree: Tree) -> None:
    section = tree.by_id("prepare")
    headings = {h.text().rsplit(" ", 1)[0]: h.text().rsplit(" ", 1)[1] for h in section.iter("h3")}
    assert headings == {
        "Converted to modules": "2",
        "Reused modules unrolled": "1",
        "Left whole as leaves": "2",
        "What remains": "3",
        "Verification": "2",
    }
    text = section.text()
    assert "verification failed" in text and "needs attention" in text
    assert "blocks.0.add" in text and "blocks.0.act_1" in text and "excluded by the user" in text
    assert "no module for <getitem> & friends" in text and "differs" in text and "0.125" in text


def test_registry_emitter_and_a_clean_report() -> None:
    stream = io.StringIO()
    emit(clean_report(), "html", stream)
    tree = Tree(stream.getvalue())
    assert "ready" in next(tree.root.iter("span", "pill")).text()
    assert "No findings" in tree.by_id("findings").text()
    assert "Only modules with findings are shown" in tree.by_id("modules").text()
    assert not any(e.attrs.get("id") == "prepare" for e in tree.root.iter())


def test_cli_html_needs_an_output_file_and_writes_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    argv = ["check", "examples/every_rule.py:EveryRule", "--input", "1x3x16x16", "--select", "QR003,QR004,QR005"]
    err = io.StringIO()
    assert main([*argv, "--format", "html"], stdout=io.StringIO(), stderr=err) == 2
    assert "pass -o report.html" in err.getvalue()
    target = tmp_path / "report.html"
    out = io.StringIO()
    assert main([*argv, "--format", "html", "-o", str(target)], stdout=out, stderr=io.StringIO()) == 1
    assert out.getvalue() == ""
    tree = Tree(target.read_text(encoding="utf-8"))
    types = [e.text() for e in tree.by_id("modules").iter("span", "mod-type")]
    assert types == ["Conv2d", "Conv2d", "ReLU", "Head", "AdaptiveAvgPool2d", "Linear"]  # the whole tree, from the model
    hits = [e.text() for e in tree.by_id("findings").iter("span", "hit")]
    assert any("x = F.relu(x + y)" in h for h in hits)


def test_cli_prepare_writes_the_html_report_with_its_prepare_section(tmp_path: Path) -> None:
    target = tmp_path / "prepare.html"
    seed = ROOT / "tests" / "models" / "seed.py"
    err = io.StringIO()
    code = main(
        ["prepare", f"{seed}:ReusedRelu", "--input", "1x3x8x8", "--input", "1x3x8x8", "-o", str(tmp_path / "out"),
         "--html", str(target)],
        stdout=io.StringIO(), stderr=err,
    )
    assert code == 0, err.getvalue()
    tree = Tree(target.read_text(encoding="utf-8"))
    assert "QR004" in tree.by_id("findings").text()
    section = tree.by_id("prepare")
    assert "verified bit-identical" in section.text() and "Reused modules unrolled 1" in section.text()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not on PATH (apt-get install chromium)")
def test_renders_in_headless_chromium(page: str, tmp_path: Path) -> None:
    html_file = tmp_path / "report.html"
    html_file.write_text(page, encoding="utf-8")
    png = tmp_path / "report.png"
    subprocess.run(
        [
            "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1280,1600",
            html_file.as_uri(),
        ],
        check=True, capture_output=True, timeout=120,
    )
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 1600)
    assert len(data) > 50_000  # a blank page compresses to a few kilobytes


def test_coverage_of_nothing_observed_is_not_shown_as_full() -> None:
    from qready.findings import Coverage, Report

    tree = Tree(render_html(Report("Net", (), Coverage(0, 0), ("QR003",))))  # QR003 ran, the model has no op
    header = next(tree.root.iter("header", "page"))
    assert "100" not in header.text() and "no value-changing op call was observed" in header.text()
