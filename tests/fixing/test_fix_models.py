"""`fix` over realistic model files: the diff a person would write, and the same model afterwards."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import torch

from qready.example_inputs import Example
from qready.fixing import fix
from tests.fixing.conftest import assert_same_model, build

RESNET_DIFF = '''\
--- a/resnet_block.py
+++ b/resnet_block.py
@@ -3,11 +3,15 @@
 import torch
 import torch.nn.functional as F
 from torch import nn
+import qready.nn
 
 
 class BasicBlock(nn.Module):
     def __init__(self, channels: int) -> None:
         super().__init__()
+        self.relu = nn.ReLU()
+        self.add_identity = qready.nn.Add()
+        self.relu_1 = nn.ReLU()
         self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
         self.bn1 = nn.BatchNorm2d(channels)
         self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
@@ -15,21 +19,22 @@
 
     def forward(self, x: torch.Tensor) -> torch.Tensor:
         identity = x
-        out = F.relu(self.bn1(self.conv1(x)))
+        out = self.relu(self.bn1(self.conv1(x)))
         out = self.bn2(self.conv2(out))
-        out = out + identity
-        return F.relu(out)
+        out = self.add_identity(out, identity)
+        return self.relu_1(out)
 
 
 class ResNet(nn.Module):
     def __init__(self, num_classes: int = 10) -> None:
         super().__init__()
+        self.relu = nn.ReLU()
         self.stem = nn.Conv2d(3, 8, 3, padding=1)
         self.layer1 = nn.Sequential(BasicBlock(8), BasicBlock(8))
         self.pool = nn.AdaptiveAvgPool2d(1)
         self.fc = nn.Linear(8, num_classes)
 
     def forward(self, x: torch.Tensor) -> torch.Tensor:
-        x = F.relu(self.stem(x))
+        x = self.relu(self.stem(x))
         x = self.layer1(x)
         return self.fc(torch.flatten(self.pool(x), 1))
'''

TRANSFORMER_DIFF = '''\
--- a/transformer_block.py
+++ b/transformer_block.py
@@ -5,11 +5,17 @@
 import torch
 import torch.nn.functional as F
 from torch import nn
+import qready.nn
 
 
 class Attention(nn.Module):
     def __init__(self, dim: int, heads: int) -> None:
         super().__init__()
+        self.einsum = qready.nn.Einsum("bhqd,bhkd->bhqk")
+        self.div_scores = qready.nn.Div()
+        self.masked_fill_scores = qready.nn.MaskedFill()
+        self.softmax_attn = nn.Softmax(dim=-1)
+        self.einsum_1 = qready.nn.Einsum("bhqk,bhkd->bhqd")
         self.heads = heads
         self.qkv = nn.Linear(dim, dim * 3)
         self.proj = nn.Linear(dim, dim)
@@ -17,16 +23,20 @@
     def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
         b, n, d = x.shape
         q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
-        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(d // self.heads)
-        scores = scores.masked_fill(mask, float("-inf"))
-        attn = F.softmax(scores, dim=-1)
-        out = torch.einsum("bhqk,bhkd->bhqd", attn, v)
+        scores = self.div_scores(self.einsum(q, k), math.sqrt(d // self.heads))
+        scores = self.masked_fill_scores(scores, mask, float("-inf"))
+        attn = self.softmax_attn(scores)
+        out = self.einsum_1(attn, v)
         return self.proj(out.transpose(1, 2).reshape(b, n, d))
 
 
 class Block(nn.Module):
     def __init__(self, dim: int = 16, heads: int = 2) -> None:
         super().__init__()
+        self.cat = qready.nn.Cat(dim=1)
+        self.add = qready.nn.Add()
+        self.gelu = nn.GELU(approximate="tanh")
+        self.add_1 = qready.nn.Add()
         self.norm1 = nn.LayerNorm(dim)
         self.attn = Attention(dim, heads)
         self.norm2 = nn.LayerNorm(dim)
@@ -35,7 +45,7 @@
         self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
 
     def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
-        x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
-        x = x + self.attn(self.norm1(x), mask)
-        hidden = F.gelu(self.fc1(self.norm2(x)), approximate="tanh")
-        return x + self.fc2(hidden)
+        x = self.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens])
+        x = self.add(x, self.attn(self.norm1(x), mask))
+        hidden = self.gelu(self.fc1(self.norm2(x)))
+        return self.add_1(x, self.fc2(hidden))
'''

REUSED_DIFF = '''\
--- a/reused_relu.py
+++ b/reused_relu.py
@@ -10,8 +10,10 @@
         self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
         self.conv3 = nn.Conv2d(4, 4, 3, padding=1)
         self.relu = nn.ReLU(inplace=True)
+        self.relu2 = nn.ReLU(inplace=True)
+        self.relu3 = nn.ReLU(inplace=True)
 
     def forward(self, x):
         x = self.relu(self.conv1(x))
-        x = self.relu(self.conv2(x))
-        return self.relu(self.conv3(x))
+        x = self.relu2(self.conv2(x))
+        return self.relu3(self.conv3(x))
'''

MESSY_DIFF = '''\
--- a/messy.py
+++ b/messy.py
@@ -3,18 +3,21 @@
 import torch
 import torch.nn.functional as F
 from torch import nn  # the usual alias
+import qready.nn
 
 
 class Messy( nn.Module ):
     """Docstring kept."""
     def __init__( self ,width = 4 ):
         super( ).__init__( )   # base first
+        self.leaky_relu = nn.LeakyReLU(negative_slope=0.2)
+        self.mul = qready.nn.Mul(other=2.0)
+        self.cat = qready.nn.Cat(dim=1)
         # the only layer
         self.conv=nn.Conv2d(3,width,1)
 
     def forward(self,x):
         y=self.conv( x )  # conv
-        y = F.leaky_relu(y,   0.2)   # keep this comment
-        z = (y
-             * 2.0)  # a scaled copy
-        return torch.cat( ( y , z ), 1 )  # joined
+        y = self.leaky_relu(y)   # keep this comment
+        z = self.mul(y)  # a scaled copy
+        return self.cat( ( y , z ) )  # joined
'''


def _fix_and_compare(copy_model: Callable[[str], Path], name: str, cls: str, example: Example, expected: str) -> Path:
    path = copy_model(name)
    spec = f"{name}:{cls}"
    original = build(spec)
    result = fix(spec, example)
    assert result.failure is None
    assert result.not_fixed == []
    assert result.diff == expected
    assert result.written == [name]
    assert_same_model(original, build(spec), example)
    again = fix(spec, example)  # idempotent: nothing left to fix, nothing written
    assert (again.changed, again.written, again.not_fixed) == (False, [], [])
    return path


def test_resnet_block_functional_relu_and_residual_add(copy_model: Callable[[str], Path]) -> None:
    _fix_and_compare(copy_model, "resnet_block.py", "ResNet", Example((torch.randn(2, 3, 8, 8),)), RESNET_DIFF)


def test_transformer_block_softmax_gelu_masked_fill_einsum_cat(copy_model: Callable[[str], Path]) -> None:
    mask = torch.rand(1, 1, 6, 6) > 0.7
    _fix_and_compare(
        copy_model, "transformer_block.py", "Block", Example((torch.randn(2, 5, 16), mask)), TRANSFORMER_DIFF
    )


def test_one_relu_reused_across_stages_gets_one_per_call(copy_model: Callable[[str], Path]) -> None:
    _fix_and_compare(copy_model, "reused_relu.py", "Stages", Example((torch.randn(1, 3, 8, 8),)), REUSED_DIFF)


def test_comments_and_odd_formatting_survive_outside_the_changed_lines(copy_model: Callable[[str], Path]) -> None:
    before = (Path(__file__).parent / "models" / "messy.py").read_bytes()
    path = _fix_and_compare(copy_model, "messy.py", "Messy", Example((torch.randn(1, 3, 4, 4),)), MESSY_DIFF)
    after = path.read_bytes()
    changed = {b"        y = F.leaky_relu(y,   0.2)   # keep this comment", b"        z = (y",
               b"             * 2.0)  # a scaled copy", b"        return torch.cat( ( y , z ), 1 )  # joined"}
    kept = [line for line in before.split(b"\n") if line not in changed]
    lines = after.split(b"\n")
    position = 0
    for line in kept:  # every other line, byte for byte and in order
        position = lines.index(line, position) + 1


PACKAGE_BLOCKS_DIFF = """\
--- a/twofiles/blocks.py
+++ b/twofiles/blocks.py
@@ -1,11 +1,14 @@
 import torch.nn.functional as F
 from torch import nn
+from . import ops
 
 
 class Block(nn.Module):
     def __init__(self, width):
         super().__init__()
+        self.silu = nn.SiLU()
+        self.add = ops.Add()
         self.conv = nn.Conv2d(width, width, 1)
 
     def forward(self, x):
-        return F.silu(self.conv(x)) + x
+        return self.add(self.silu(self.conv(x)), x)
"""


def test_a_package_of_two_files_with_an_ops_module(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(Path(__file__).parent / "models" / "twofiles", workdir / "twofiles")
    monkeypatch.syspath_prepend(str(workdir))
    example = Example((torch.randn(1, 4, 4, 4),))
    original = build("twofiles.net:Net")
    result = fix("twofiles.net:Net", example, ops_module="twofiles/ops.py")
    assert (result.failure, result.not_fixed) == (None, [])
    assert result.written == ["twofiles/blocks.py", "twofiles/net.py", "twofiles/ops.py"]
    assert result.diffs["twofiles/blocks.py"] == PACKAGE_BLOCKS_DIFF
    assert "from . import ops\n" in (workdir / "twofiles" / "net.py").read_text()
    assert "        self.cat = ops.Cat(dim=1)\n" in (workdir / "twofiles" / "net.py").read_text()
    for name in list(sys.modules):  # the package as it is on disk now
        if name.startswith("twofiles"):
            monkeypatch.delitem(sys.modules, name)
    assert_same_model(original, build("twofiles.net:Net"), example)
    assert not fix("twofiles.net:Net", example, ops_module="twofiles/ops.py").changed


def test_a_copy_of_torchvision_resnet_becomes_the_users_own_fixed_source(workdir: Path) -> None:
    torchvision = pytest.importorskip("torchvision", reason="the source of a real model comes from torchvision")
    text = Path(torchvision.models.resnet.__file__).read_text()
    text = re.sub(r"^from \.\.([\w.]*) import", r"from torchvision.\1 import", text, flags=re.MULTILINE)
    text = re.sub(r"^from \.([\w.]*) import", r"from torchvision.models.\1 import", text, flags=re.MULTILINE)
    text = text.replace("@register_model()\n", "")  # torchvision's registry holds these names already
    (workdir / "resnet.py").write_text(text)
    example = Example((torch.randn(1, 3, 32, 32),))
    original = build("resnet.py:resnet18")
    result = fix("resnet.py:resnet18", example)
    assert (result.failure, result.not_fixed, result.written) == (None, [], ["resnet.py"])
    diff = result.diffs["resnet.py"]
    for line in (
        "+        self.add_identity = qready.nn.Add(inplace=True)\n",  # after super().__init__() in BasicBlock
        "+        self.relu2 = nn.ReLU(inplace=True)\n",
        "-        out += identity\n-        out = self.relu(out)\n",
        "+        out = self.add_identity(out, identity)\n+        out = self.relu2(out)\n",
    ):
        assert line in diff
    assert diff.count("\n+") - diff.count("\n+++") == 5  # an import, two modules, two call sites: nothing else
    assert_same_model(original, build("resnet.py:resnet18"), example)


SUBCLASS_DIFF = '''\
--- a/subclass.py
+++ b/subclass.py
@@ -12,5 +12,9 @@
 
 class OnlyForward(Base):
     """Squashes the base's features."""
+    def __init__(self, *args, **kwargs):
+        super().__init__(*args, **kwargs)
+        self.tanh = nn.Tanh()
+
     def forward(self, x):
-        return torch.tanh(self.conv(x))
+        return self.tanh(self.conv(x))
'''


def test_a_class_without_init_gets_one_that_passes_its_arguments_on(copy_model: Callable[[str], Path]) -> None:
    copy_model("subclass.py")
    original = build("subclass.py:OnlyForward", width=5)
    example = Example((torch.randn(1, 3, 4, 4),))
    result = fix("subclass.py:OnlyForward", example, kwargs={"width": 5})
    assert (result.failure, result.not_fixed, result.diff) == (None, [], SUBCLASS_DIFF)
    assert_same_model(original, build("subclass.py:OnlyForward", width=5), example)
