"""What qready must never change on a user's model, as a snapshot and a comparison."""

from __future__ import annotations

import torch


def snapshot(model: torch.nn.Module) -> dict:
    """Everything about a model that qready must not change."""
    return {
        "tensors": {
            name: (id(t), t.detach().clone(), t.requires_grad)
            for name, t in list(model.named_parameters(remove_duplicate=False))
            + list(model.named_buffers(remove_duplicate=False))
        },
        "training": {name: m.training for name, m in model.named_modules()},
        "hooks": {
            name: (
                list(m._forward_hooks),
                list(m._forward_pre_hooks),
                list(m._backward_hooks),
            )
            for name, m in model.named_modules()
        },
        "modules": [(name, id(m), type(m)) for name, m in model.named_modules(remove_duplicate=False)],
        "class": type(model),
        "grad_enabled": torch.is_grad_enabled(),
    }


def assert_unchanged(model: torch.nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert after["class"] is before["class"]
    assert after["modules"] == before["modules"]
    assert after["training"] == before["training"]
    assert after["hooks"] == before["hooks"]
    assert after["grad_enabled"] == before["grad_enabled"]
    assert after["tensors"].keys() == before["tensors"].keys()
    for name, (ident, value, requires_grad) in before["tensors"].items():
        now_ident, now_value, now_requires_grad = after["tensors"][name]
        assert now_ident == ident, f"{name} was replaced"
        assert torch.equal(now_value, value), f"{name} changed value"
        assert now_requires_grad == requires_grad, f"{name} changed requires_grad"
    from torch.overrides import _get_current_function_mode_stack

    assert not _get_current_function_mode_stack(), "a torch function mode was left active"
