"""Turn off the fused eval kernels of torch.nn's transformer modules, in a copy qready owns.

``nn.TransformerEncoderLayer`` and ``nn.TransformerEncoder`` are not leaves: a
quantizer has no definition of them, so ``prepare`` walks into them and their
functional activations and residual adds become modules. In eval mode (and
without grad) eager PyTorch runs them through one fused kernel
(``torch._transformer_encoder_layer_fwd``) instead, and an encoder built with
nested tensors drops the padded positions, computes on the rest and writes
zeros there. The graph ``prepare`` records is the unfused path, the one a
quantizer sees; here the copy is made to compute that path too, so the
prepared model can be compared with it bit for bit:

- each encoder layer's fused kernel is switched off (the flag it reads only
  decides between the two paths; the unfused path computes the same sums in
  another order, ~1e-7 apart);
- an encoder that would take the nested-tensor path keeps its result: the
  layers see the padding mask, the padded positions become zeros before the
  final norm, as the nested path leaves them.

What this does not reproduce: eager runs with grad enabled, which take the
plain path (this one still writes zeros at the padded positions).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["UnfusedTransformerEncoder", "unfuse_transformers"]


class UnfusedTransformerEncoder(nn.TransformerEncoder):
    """``nn.TransformerEncoder`` that computes its nested-tensor result without nested tensors."""

    def forward(
        self,
        src: Tensor,
        mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool | None = None,
    ) -> Tensor:
        nested = self.qready_nested and not self.layers[0].training and src.dim() == 3 and mask is None
        padding = src_key_padding_mask if nested else None
        if padding is None:
            return super().forward(src, mask, src_key_padding_mask, is_causal)
        norm = self.norm
        self.norm = None  # the zeros go in before the norm, as in the nested path
        try:
            output = super().forward(src, mask, src_key_padding_mask, is_causal)
        finally:
            self.norm = norm
        padded = padding.ne(0).unsqueeze(-1)
        if getattr(self, "mask_check", True):
            # eager takes the nested path only when each row's padding is at its end: asked of the
            # values, not of Python, so that the graph holds the same choice for every input
            kept = padding.eq(0).to(torch.int8)
            padded = padded & kept.cummin(dim=1).values.eq(kept).all()
        output = output.masked_fill(padded, 0.0)
        return output if norm is None else norm(output)


def unfuse_transformers(model: nn.Module) -> dict[str, tuple[str, str]]:
    """Make ``model`` (which qready owns) compute the unfused path of its transformer modules, in place.

    Returns, for each module whose eval computation changed, its path -> (its torch.nn class, what
    computes it now).
    """
    changed = {}
    for path, module in model.named_modules():
        if type(module) is nn.TransformerEncoderLayer and module.activation_relu_or_gelu:
            module.activation_relu_or_gelu = 0  # read only to choose the fused kernel
            changed[path] = ("torch.nn.TransformerEncoderLayer", "torch.nn.TransformerEncoderLayer")
        elif type(module) is nn.TransformerEncoder:
            nested: Any = getattr(module, "use_nested_tensor", False)
            module.__class__ = UnfusedTransformerEncoder
            vars(module)["qready_nested"] = bool(nested)  # a plain attribute, not a tensor or module
            module.use_nested_tensor = False
            if nested:
                changed[path] = ("torch.nn.TransformerEncoder", f"{__name__}.UnfusedTransformerEncoder")
    return changed
