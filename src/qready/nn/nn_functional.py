"""``torch.nn.functional`` layers whose tensors are forward arguments.

``F.linear(x, self.weight)`` uses a weight that belongs to some other module
(tied embeddings, shared projections). These modules never own or copy it: the
weight, bias and running statistics come in as forward arguments, so the
prepared model keeps the very same ``Parameter`` objects. ``training`` flags
are forward arguments too, because ``nn.Module.training`` already means
something else and ``model.eval()`` must not change what the call computes.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from qready.nn._base import OpModule

__all__ = [
    "FunctionalBatchNorm",
    "FunctionalConv1d",
    "FunctionalConv2d",
    "FunctionalConv3d",
    "FunctionalConvTranspose1d",
    "FunctionalConvTranspose2d",
    "FunctionalConvTranspose3d",
    "FunctionalDropout",
    "FunctionalEmbedding",
    "FunctionalGroupNorm",
    "FunctionalInstanceNorm",
    "FunctionalLayerNorm",
    "FunctionalLinear",
    "FunctionalRMSNorm",
    "Normalize",
    "ScaledDotProductAttention",
]

_IntOrTuple = int | tuple[int, ...]


class FunctionalLinear(OpModule):
    """``F.linear(input, weight, bias)``; unlike ``nn.Linear`` it owns no weight."""

    def forward(self, input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        return F.linear(input, weight, bias)


class _FunctionalConv(OpModule):
    __constants__ = ("stride", "padding", "dilation", "groups")

    def __init__(
        self,
        stride: _IntOrTuple = 1,
        padding: _IntOrTuple | str = 0,
        dilation: _IntOrTuple = 1,
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups


class FunctionalConv1d(_FunctionalConv):
    """``F.conv1d(input, weight, bias, stride, padding, dilation, groups)``."""

    def forward(self, input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        return F.conv1d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class FunctionalConv2d(_FunctionalConv):
    """``F.conv2d(input, weight, bias, stride, padding, dilation, groups)``."""

    def forward(self, input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        return F.conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class FunctionalConv3d(_FunctionalConv):
    """``F.conv3d(input, weight, bias, stride, padding, dilation, groups)``."""

    def forward(self, input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        return F.conv3d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class _FunctionalConvTranspose(OpModule):
    __constants__ = ("stride", "padding", "output_padding", "groups", "dilation")

    def __init__(
        self,
        stride: _IntOrTuple = 1,
        padding: _IntOrTuple = 0,
        output_padding: _IntOrTuple = 0,
        groups: int = 1,
        dilation: _IntOrTuple = 1,
    ) -> None:
        super().__init__()
        self.stride = stride
        self.padding = padding
        self.output_padding = output_padding
        self.groups = groups
        self.dilation = dilation


class FunctionalConvTranspose1d(_FunctionalConvTranspose):
    """``F.conv_transpose1d(input, weight, bias, stride, padding, output_padding, groups, dilation)``."""

    def forward(self, input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        return F.conv_transpose1d(
            input, weight, bias, self.stride, self.padding, self.output_padding, self.groups,
            self.dilation,
        )


class FunctionalConvTranspose2d(_FunctionalConvTranspose):
    """``F.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation)``."""

    def forward(self, input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        return F.conv_transpose2d(
            input, weight, bias, self.stride, self.padding, self.output_padding, self.groups,
            self.dilation,
        )


class FunctionalConvTranspose3d(_FunctionalConvTranspose):
    """``F.conv_transpose3d(input, weight, bias, stride, padding, output_padding, groups, dilation)``."""

    def forward(self, input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        return F.conv_transpose3d(
            input, weight, bias, self.stride, self.padding, self.output_padding, self.groups,
            self.dilation,
        )


class FunctionalBatchNorm(OpModule):
    """``F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)``.

    With ``training=True`` torch updates ``running_mean``/``running_var`` in
    place, exactly as the original call did. A ``training`` flag known when the
    model is prepared is the constant ``batch_statistics`` (``nn.Module.training``
    means something else: ``model.eval()`` must not change what the call computes).
    """

    __constants__ = ("momentum", "eps", "batch_statistics")

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5, batch_statistics: bool = False) -> None:
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        self.batch_statistics = batch_statistics

    def forward(
        self,
        input: Tensor,
        running_mean: Tensor | None = None,
        running_var: Tensor | None = None,
        weight: Tensor | None = None,
        bias: Tensor | None = None,
        training: bool | None = None,
    ) -> Tensor:
        return F.batch_norm(
            input, running_mean, running_var, weight, bias,
            self.batch_statistics if training is None else training, self.momentum, self.eps,
        )


class FunctionalInstanceNorm(OpModule):
    """``F.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, ...)``."""

    __constants__ = ("use_input_stats", "momentum", "eps")

    def __init__(
        self, use_input_stats: bool = True, momentum: float = 0.1, eps: float = 1e-5
    ) -> None:
        super().__init__()
        self.use_input_stats = use_input_stats
        self.momentum = momentum
        self.eps = eps

    def forward(
        self,
        input: Tensor,
        running_mean: Tensor | None = None,
        running_var: Tensor | None = None,
        weight: Tensor | None = None,
        bias: Tensor | None = None,
    ) -> Tensor:
        return F.instance_norm(
            input, running_mean, running_var, weight, bias, self.use_input_stats, self.momentum,
            self.eps,
        )


class FunctionalGroupNorm(OpModule):
    """``F.group_norm(input, num_groups, weight, bias, eps)``."""

    __constants__ = ("num_groups", "eps")

    def __init__(self, num_groups: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_groups = num_groups
        self.eps = eps

    def forward(
        self, input: Tensor, weight: Tensor | None = None, bias: Tensor | None = None
    ) -> Tensor:
        return F.group_norm(input, self.num_groups, weight, bias, self.eps)


class FunctionalLayerNorm(OpModule):
    """``F.layer_norm(input, normalized_shape, weight, bias, eps)``."""

    __constants__ = ("normalized_shape", "eps")

    def __init__(self, normalized_shape: tuple[int, ...], eps: float = 1e-5) -> None:
        super().__init__()
        self.normalized_shape = normalized_shape
        self.eps = eps

    def forward(
        self, input: Tensor, weight: Tensor | None = None, bias: Tensor | None = None
    ) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, weight, bias, self.eps)


class FunctionalRMSNorm(OpModule):
    """``F.rms_norm(input, normalized_shape, weight, eps)``."""

    __constants__ = ("normalized_shape", "eps")

    def __init__(self, normalized_shape: tuple[int, ...], eps: float | None = None) -> None:
        super().__init__()
        self.normalized_shape = normalized_shape
        self.eps = eps

    def forward(self, input: Tensor, weight: Tensor | None = None) -> Tensor:
        return F.rms_norm(input, self.normalized_shape, weight, self.eps)


class Normalize(OpModule):
    """``F.normalize(input, p, dim, eps)``: divide by the ``p``-norm along ``dim``."""

    __constants__ = ("p", "dim", "eps")

    def __init__(self, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> None:
        super().__init__()
        self.p = p
        self.dim = dim
        self.eps = eps

    def forward(self, input: Tensor) -> Tensor:
        return F.normalize(input, self.p, self.dim, self.eps)


class FunctionalEmbedding(OpModule):
    """``F.embedding(input, weight, padding_idx, max_norm, ...)`` with the table as an argument.

    With ``max_norm`` torch renormalizes rows of ``weight`` in place, exactly as
    the original call did.
    """

    __constants__ = ("padding_idx", "max_norm", "norm_type", "scale_grad_by_freq", "sparse")

    def __init__(
        self,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> None:
        super().__init__()
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse

    def forward(self, input: Tensor, weight: Tensor) -> Tensor:
        return F.embedding(
            input, weight, self.padding_idx, self.max_norm, self.norm_type,
            self.scale_grad_by_freq, self.sparse,
        )


class FunctionalDropout(OpModule):
    """``F.dropout(input, p, training, inplace)``.

    ``nn.Dropout`` would take its mode from ``module.training``; the original
    call used whatever flag it was given, and so does this module: the constant
    ``active`` when the flag was known when the model was prepared, else the
    forward argument ``training``.
    """

    __constants__ = ("p", "inplace", "active")

    def __init__(self, p: float = 0.5, inplace: bool = False, active: bool = True) -> None:
        super().__init__()
        self.p = p
        self.inplace = inplace
        self.active = active

    def forward(self, input: Tensor, training: bool | None = None) -> Tensor:
        return F.dropout(input, self.p, self.active if training is None else training, self.inplace)


class ScaledDotProductAttention(OpModule):
    """``F.scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, ...)``."""

    __constants__ = ("dropout_p", "is_causal", "scale", "enable_gqa")

    def __init__(
        self,
        dropout_p: float = 0.0,
        is_causal: bool = False,
        scale: float | None = None,
        enable_gqa: bool = False,
    ) -> None:
        super().__init__()
        self.dropout_p = dropout_p
        self.is_causal = is_causal
        self.scale = scale
        self.enable_gqa = enable_gqa

    def forward(
        self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None
    ) -> Tensor:
        return F.scaled_dot_product_attention(
            query, key, value, attn_mask, self.dropout_p, self.is_causal, scale=self.scale,
            enable_gqa=self.enable_gqa,
        )
