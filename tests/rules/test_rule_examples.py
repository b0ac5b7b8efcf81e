"""Every rule's own examples: the flagged ones are flagged where they say, the others pass."""

from __future__ import annotations

import pytest
import torch

import qready
from qready.rules import RULES, get_rule

EXAMPLES = [pytest.param(rule, example, id=f"{rule.code}-{example.name}") for rule in RULES for example in rule.examples()]


@pytest.mark.parametrize("rule, example", EXAMPLES)
def test_rule_example(rule, example) -> None:
    if example.target == "aimet":
        pytest.importorskip("aimet_torch", reason="a toolkit rule's example runs under --target aimet: pip install -e '.[interop]'")
    report = qready.check(example.model(), example.inputs(), select=[rule.code], target=example.target)
    findings = report.by_code(rule.code)
    if not example.flagged:
        assert findings == (), [f.message for f in findings]
        return
    assert findings, f"{example.name} was not flagged"
    assert all(f.fix for f in findings), [f.message for f in findings if not f.fix]  # the rule's own, or more precise
    for module, op in example.expect:
        assert any(f.module == module and (op is None or f.op == op) for f in findings), (
            module, op, [(f.module, f.op) for f in findings],
        )
    if example.message:
        module, op = example.expect[0]
        first = next(f for f in findings if f.module == module and (op is None or f.op == op))
        assert example.message in first.message, (example.message, first.message)


PREPARED = [pytest.param(rule, example, id=f"{rule.code}-{example.name}")
            for rule in RULES for example in rule.examples() if example.prepare_fixes]


@pytest.mark.parametrize("rule, example", PREPARED)
def test_prepare_fixes_the_examples_it_says_it_fixes(rule, example) -> None:
    """Fixit's expected_replacement, for prepare: the flagged example, prepared, is clean and computes the same."""
    model, inputs = example.model().eval(), example.inputs()
    prepared = qready.prepare(model, inputs)
    args, kwargs = prepared.arguments_for(*inputs)
    report = qready.check(prepared, args, example_kwargs=kwargs, select=[rule.code])
    assert report.by_code(rule.code) == (), [f.message for f in report.findings]
    assert torch.equal(prepared(*args, **kwargs), model(*inputs))


def test_every_rule_that_prepare_fixes_has_an_example_that_shows_it() -> None:
    assert {rule.code for rule, *_ in (p.values for p in PREPARED)} >= {"QR003", "QR004"}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_is_documented_and_has_both_kinds_of_example(rule) -> None:
    doc = rule.documentation()
    assert rule.code.startswith("QR") and rule.name == rule.name.lower()
    assert "Fix by hand:" in doc and "Prepare:" in doc
    assert rule.fix and "\n" not in rule.fix  # the one-line fix a finding suggests when it knows no better
    bare = rule().finding("message")
    assert bare.fix == rule.fix and bare.code == rule.code
    assert {e.flagged for e in rule.examples()} == {True, False}
    assert get_rule(rule.code) is rule and get_rule(rule.name) is rule


def test_rule_codes_and_names_are_the_public_ones() -> None:
    assert [(r.code, r.name) for r in RULES] == [
        ("QR001", "onnx-export"),
        ("QR002", "jit-trace"),
        ("QR003", "functional-op"),
        ("QR004", "reused-module"),
        ("QR005", "non-tensor-io"),
        ("QR006", "unquantizable-module"),
    ]
