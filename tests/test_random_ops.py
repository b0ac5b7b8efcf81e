"""Forwards that draw random numbers: prepared and verified from one random state, or refused."""

from __future__ import annotations

import io
import random

import pytest
import torch

import qready
from qready.cli import main
from qready.errors import ModelError
from tests.models.leafy import Counting, Noisy


def test_a_forward_that_draws_random_numbers_is_verified_under_one_seed() -> None:
    torch.manual_seed(0)
    model, x = Noisy().eval(), torch.randn(4, 8)
    state, python_state = torch.get_rng_state(), random.getstate()
    prepared = qready.prepare(model, (x,))
    assert torch.equal(torch.get_rng_state(), state) and random.getstate() == python_state  # the user's, untouched
    assert prepared.prepare_result.verified
    assert {"randn_like", "dropout", "rand"} & {str(getattr(n.target, "__name__", n.target)) for n in prepared.graph.nodes}
    assert "dropout" in {c.op.rpartition(".")[2] for c in prepared.prepare_result.converted}
    other = torch.randn(6, 8)
    torch.manual_seed(7)
    want = model(other)
    torch.manual_seed(7)
    got = prepared(other)
    assert torch.equal(got, want)  # the same draws in the same order, bit for bit
    assert not torch.equal(prepared(other), got)  # and still random from one call to the next
    assert qready.check(prepared, (other,), select=["QR003"]).findings == ()


def test_check_of_a_random_forward_leaves_the_random_state_alone() -> None:
    model, x = Noisy().eval(), torch.randn(4, 8)
    state = torch.get_rng_state()
    first = qready.check(model, (x,), select=["QR003"])
    assert torch.equal(torch.get_rng_state(), state)
    assert first == qready.check(model, (x,), select=["QR003"])


def test_a_forward_that_differs_under_the_same_seed_is_refused_in_one_line() -> None:
    model, x = Counting(), torch.randn(2, 8)
    with pytest.raises(ModelError, match=r"^Counting is not deterministic: two runs .* differ") as raised:
        qready.prepare(model, (x,))
    assert "please report" not in str(raised.value) and "\n" not in str(raised.value)


def test_the_cli_refuses_it_with_exit_code_2(tmp_path) -> None:
    err = io.StringIO()
    code = main(["prepare", "tests/models/leafy.py:Counting", "--input", "2x8", "-o", str(tmp_path / "out")], stdout=io.StringIO(), stderr=err)
    assert code == 2 and "is not deterministic" in err.getvalue() and not (tmp_path / "out").exists()
