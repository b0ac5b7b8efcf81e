"""Attribute names for added modules: readable, and never a clash."""

from __future__ import annotations

from qready.fixing.names import NameAllocator, context_name


def test_op_names_count_up_from_the_bare_op() -> None:
    names = NameAllocator({"conv", "relu"})
    assert [names.op_name("relu"), names.op_name("relu"), names.op_name("softmax")] == ["relu_1", "relu_2", "softmax"]


def test_a_named_value_gives_a_readable_name_once() -> None:
    names = NameAllocator(set())
    assert names.op_name("add", "residual") == "add_residual"
    assert names.op_name("add", "residual") == "add"  # the readable one is taken: fall back, never clash
    assert names.op_name("add", "residual") == "add_1"


def test_nothing_nn_module_has_is_ever_shadowed() -> None:
    names = NameAllocator(set())
    assert names.op_name("float") == "float_1"  # nn.Module.float()
    assert names.op_name("to") == "to_1"
    assert names.op_name("add_module") == "add_module_1"


def test_copies_follow_the_guidelines_spelling() -> None:
    names = NameAllocator({"relu", "relu2", "act1"})
    assert names.copy_name("relu") == "relu3"
    assert names.copy_name("act1") == "act1_2"


def test_generic_variable_names_say_nothing() -> None:
    assert context_name("out", "x", "identity") == "identity"
    assert context_name("hidden_states", None) is None
    assert context_name("attn_weights") == "attn_weights"
    assert context_name("Scores") == "scores"
