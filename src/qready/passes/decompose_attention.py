"""Decompose ``nn.MultiheadAttention`` into modules, for toolkits that export ONNX.

In eval mode ``nn.MultiheadAttention`` runs one fused kernel
(``aten::_native_multi_head_attention``) that has no ONNX export, and a
toolkit that exports the float model (AIMET's ``sim.export``) fails on it. This
rewrite replaces each instance, in a model qready owns, by
:class:`DecomposedMultiheadAttention`: four ``nn.Linear`` projections, a
``qready.nn.Mul`` scale, two ``qready.nn.MatMul``, an ``nn.Softmax`` and, with
masks, ``qready.nn.MaskedFill``/``Add``; every value-changing op is a module a
quantizer wraps. The weights are the instance's own, split per projection.

The decomposed path computes in a different order than the fused kernel, so
it is not bit-identical: ``prepare`` measures the difference on the example
and a fresh input and reports it (about 1e-7 for a 64-dim attention).
Configurations it does not cover (``bias_k``/``bias_v``, ``add_zero_attn``,
attention inside an ``nn.TransformerEncoder`` built with nested tensors enabled,
the default) are left as they are. Inside an ``nn.TransformerEncoderLayer`` the
decomposed module makes the layer take its unfused path.

A checkpoint of the original loads into the prepared model: ``load_state_dict``
splits the original's ``in_proj_weight``/``in_proj_bias`` (or takes its
``q_proj_weight``... when the key and value sizes differ) into the three
projections (:func:`keep_packed_keys`). ``state_dict()`` names the tensors the
model has, as its ``named_parameters()`` does: toolkits match the two (AIMET's
export replaces each parameter by its state-dict key).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

import qready.nn as qnn

__all__ = ["DecomposedMultiheadAttention", "PACKED_KEYS", "decomposable", "decompose_attention", "keep_packed_keys", "packed_keys"]


class DecomposedMultiheadAttention(nn.Module):
    """``nn.MultiheadAttention``'s computation as calls of modules; same call signature and outputs."""

    def __init__(self, attention: nn.MultiheadAttention) -> None:
        super().__init__()
        if not decomposable(attention):
            raise ValueError("bias_k/bias_v and add_zero_attn are not decomposed")
        self.embed_dim = attention.embed_dim
        self.num_heads = attention.num_heads
        self.head_dim = attention.head_dim
        self.batch_first = attention.batch_first
        self.scaling = float(self.head_dim) ** -0.5
        # What nn.TransformerEncoderLayer and nn.TransformerEncoder read before they take their own fused
        # kernels: with no packed projection they take their unfused path, which calls this module.
        self._qkv_same_embed_dim = attention._qkv_same_embed_dim
        self.in_proj_weight = None
        self.in_proj_bias = None
        e = attention.embed_dim
        if attention.in_proj_weight is not None:
            packed = attention.in_proj_weight
            weights = packed.detach().split(e)
            sizes = (e, e, e)
            trained = (packed.requires_grad,) * 3  # the pieces train as the packed tensor did
        else:
            weights = (attention.q_proj_weight, attention.k_proj_weight, attention.v_proj_weight)
            sizes = (e, attention.kdim, attention.vdim)
            trained = tuple(w.requires_grad for w in weights)
        biases = attention.in_proj_bias.detach().split(e) if attention.in_proj_bias is not None else (None,) * 3
        self.q_proj, self.k_proj, self.v_proj = (
            _linear(w, b, size, grad) for w, b, size, grad in zip(weights, biases, sizes, trained)
        )
        self.out_proj = _linear(attention.out_proj.weight, attention.out_proj.bias, e, attention.out_proj.weight.requires_grad)
        self.scale = qnn.Mul()
        self.qk_matmul = qnn.MatMul()
        self.attn_mask_fill = qnn.MaskedFill()
        self.padding_mask_fill = qnn.MaskedFill()
        self.mask_add = qnn.Add()
        self.score_add = qnn.Add()
        self.softmax = nn.Softmax(dim=-1)
        self.dropout = nn.Dropout(attention.dropout)
        self.av_matmul = qnn.MatMul()
        self.average = qnn.Mean(dim=1)
        self.train(attention.training)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        batched = query.dim() == 3
        if not batched:  # (L, E): one sequence
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:  # (N, L, E) -> (L, N, E)
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        heads, head_dim = self.num_heads, self.head_dim
        # Shapes by flatten/unflatten only, never by sizes read from the input: the traced graph
        # then takes other batch sizes and lengths. (L, N, E) -> (N*H, L, D):
        q = self.q_proj(query).unflatten(-1, (heads, head_dim)).flatten(1, 2).transpose(0, 1)
        k = self.k_proj(key).unflatten(-1, (heads, head_dim)).flatten(1, 2).transpose(0, 1)
        v = self.v_proj(value).unflatten(-1, (heads, head_dim)).flatten(1, 2).transpose(0, 1)

        mask = None
        if attn_mask is not None:
            mask = self._additive(attn_mask, self.attn_mask_fill, query.dtype)
            if mask.dim() == 2:
                mask = mask.unsqueeze(0)
        if key_padding_mask is not None:  # (N, S) -> (N*H, 1, S)
            padding = self._additive(key_padding_mask, self.padding_mask_fill, query.dtype)
            padding = padding.unsqueeze(1).unsqueeze(1).expand(-1, heads, -1, -1).flatten(0, 1)
            mask = padding if mask is None else self.mask_add(mask, padding)

        scores = self.qk_matmul(self.scale(q, self.scaling), k.transpose(-2, -1))
        if mask is not None:
            scores = self.score_add(scores, mask)
        weights = self.dropout(self.softmax(scores))
        out = self.av_matmul(weights, v)  # (N*H, L, D) -> (L, N, E)
        out = self.out_proj(out.transpose(0, 1).unflatten(1, (-1, heads)).flatten(2))
        if not batched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        weights = weights.unflatten(0, (-1, heads))  # (N, H, L, S)
        if average_attn_weights:
            weights = self.average(weights)
        if not batched:
            weights = weights.squeeze(0)
        return out, weights

    @staticmethod
    def _additive(mask: Tensor, fill: nn.Module, dtype: torch.dtype) -> Tensor:
        """A boolean mask (True: not attended) as 0 / -inf; a float mask as it is."""
        if mask.dtype != torch.bool:
            return mask
        return fill(torch.zeros_like(mask, dtype=dtype), mask, float("-inf"))


def _linear(weight: Tensor, bias: Tensor | None, in_features: int, requires_grad: bool) -> nn.Linear:
    linear = nn.Linear(in_features, weight.shape[0], bias=bias is not None, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if bias is not None:
            linear.bias.copy_(bias)
    linear.requires_grad_(requires_grad)
    return linear


def _under_nested_encoders(model: nn.Module) -> set[str]:
    """Attention inside an ``nn.TransformerEncoder`` that may run its nested-tensor kernel: that kernel reads
    the packed projection and zeroes padded positions on a data-dependent condition, so it stays."""
    paths = set()
    for path, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, nn.TransformerEncoder) and module.use_nested_tensor:
            prefix = f"{path}." if path else ""
            paths |= {prefix + inner for inner, child in module.named_modules() if isinstance(child, nn.MultiheadAttention)}
    return paths


def decomposable(attention: nn.MultiheadAttention) -> bool:
    return attention.bias_k is None and attention.bias_v is None and not attention.add_zero_attn


def decompose_attention(model: nn.Module) -> list[str]:
    """Replace every decomposable ``nn.MultiheadAttention`` in ``model`` (which qready owns), in place.

    Returns the paths replaced. An instance registered under several paths is
    decomposed once, and every path refers to the one replacement.
    """
    replaced: dict[int, nn.Module] = {}
    paths = []
    nested = _under_nested_encoders(model)
    for path, module in list(model.named_modules(remove_duplicate=False)):
        if type(module) is not nn.MultiheadAttention or not decomposable(module) or not path or path in nested:
            continue
        if id(module) not in replaced:
            replaced[id(module)] = DecomposedMultiheadAttention(module)
        model.set_submodule(path, replaced[id(module)])
        paths.append(path)
    return paths


#: Where a prepared model keeps the map from the original's keys to the keys of the tensors they were split into.
PACKED_KEYS = "qready_packed_keys"


def packed_keys(paths: Iterable[str], original_keys: Iterable[str]) -> dict[str, list[str]]:
    """For attention decomposed at ``paths``: each of the original's state-dict keys the decomposition
    split or renamed, and the keys of its parts (concatenated along the first dimension)."""
    keys = set(original_keys)
    out: dict[str, list[str]] = {}
    for path in paths:
        prefix = f"{path}." if path else ""
        layouts = {
            "in_proj_weight": [f"{p}_proj.weight" for p in "qkv"],
            "in_proj_bias": [f"{p}_proj.bias" for p in "qkv"],
            **{f"{p}_proj_weight": [f"{p}_proj.weight"] for p in "qkv"},
        }
        for key, parts in layouts.items():
            if prefix + key in keys:
                out[prefix + key] = [prefix + part for part in parts]
    return out


def keep_packed_keys(model: nn.Module, packed: dict[str, list[str]]) -> None:
    """Let ``load_state_dict()`` of ``model`` take the original's keys for the tensors in ``packed``
    (see :func:`packed_keys`), as well as its own; the map is a plain attribute, saved with the model."""
    if not packed:
        return
    setattr(model, PACKED_KEYS, {key: list(parts) for key, parts in packed.items()})
    model._register_load_state_dict_pre_hook(_split, with_module=True)


def _split(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    for key, parts in getattr(module, PACKED_KEYS, {}).items():
        if prefix + key not in state_dict or any(prefix + part in state_dict for part in parts):
            continue
        packed = state_dict.pop(prefix + key)
        sizes = [_tensor_at(module, part).shape[0] for part in parts]
        for part, piece in zip(parts, packed.split(sizes)):
            state_dict[prefix + part] = piece


def _tensor_at(module: nn.Module, path: str) -> Tensor:
    owner, _, name = path.rpartition(".")
    return getattr(module.get_submodule(owner), name)
