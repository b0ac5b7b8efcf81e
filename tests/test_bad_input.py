"""Bad input gets one clear line and leaves nothing behind, through the CLI and the Python API.

Every case: exit code 2 with one ``qready: error:`` line on stderr and nothing
on stdout (CLI), or a ``qready.QreadyError`` whose message is one line naming
the object and what to do (API); the user's model is as before; no output
directory or temporary directory is left. test_cli.py has the first CLI cases
(missing file or attribute, bad shapes and dtypes, bad --kwargs); these extend them.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

import qready
from invariants import assert_unchanged, snapshot
from qready.cli import main
from qready.serialize import FORMAT_VERSION

BAD_MODELS = '''
import torch
from torch import nn

NOT_A_MODEL = 42


def raising_factory():
    raise RuntimeError("no weights here")


class NoneOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        self.lin(x)
        return None


class StrOutput(nn.Module):
    def forward(self, x):
        return "done"


class RaisesHalfWay(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        x = self.lin(x)
        raise ValueError("half-way")


class Wrap(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


def deep_nesting():
    model = nn.ReLU()
    for _ in range(2000):
        model = Wrap(model)
    return model


def empty_module():
    return nn.Module()


def empty_sequential():
    return nn.Sequential()


def linear():
    return nn.Linear(4, 4)


def bare_tensor():
    return torch.randn(1, 4)


def list_of_tensors():
    return [torch.randn(1, 4)]


def raising_inputs():
    raise KeyError("image")
'''


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of a file of bad models, for SPECs: ``f"{bad}:NoneOutput"``."""
    path = tmp_path_factory.mktemp("bad") / "bad_models.py"
    path.write_text(BAD_MODELS)
    (path.parent / "broken.py").write_text("import torch\nraise ImportError('needs a GPU build')\n")
    return str(path)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, out: str, err: str, message: str) -> None:
    assert code == 2 and out == "", (code, out, err)
    assert err.startswith("qready: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err, err


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- the CLI ------------------------------------------------------------------------------------

CLI_CASES = [
    ("{bad}:NOT_A_MODEL", ["--input", "1x4"], "is an int, not an nn.Module class or factory; name the model class"),
    ("{bad}:raising_factory", ["--input", "1x4"], "raised RuntimeError: no weights here (at "),
    ("{dir}/broken.py:Model", ["--input", "1x4"], "raised ImportError: needs a GPU build (at "),
    ("{bad}:NoneOutput", ["--input", "1x4"], "forward of NoneOutput returned None; return the model's output tensor(s)"),
    ("{bad}:StrOutput", ["--input", "1x4"], "forward of StrOutput returned 'done' (str), no tensor"),
    ("{bad}:RaisesHalfWay", ["--input", "1x4"], "forward of RaisesHalfWay raised ValueError: half-way (at "),
    ("{bad}:linear", ["--input", "1x4x"], "shape '1x4x' is not like 1x3x224x224"),
    ("{bad}:linear", ["--input", "1x4:float32"], "the dtype comes first; write float32:1x4"),
    ("{bad}:linear", ["--input", "99999999x99999999x9"], "cannot allocate a tensor of that shape"),
    ("{bad}:linear", ["--input", "2x3x5"], "forward of Linear raised RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
    ("{bad}:linear", ["--inputs", "{bad}:bare_tensor"], "returned a Tensor; return a tuple of positional arguments, e.g. (x,)"),
    ("{bad}:linear", ["--inputs", "{bad}:list_of_tensors"], "returned a list; return a tuple of positional arguments"),
    ("{bad}:linear", ["--inputs", "{bad}:raising_inputs"], "raised KeyError: 'image'"),
    ("{bad}:linear", ["--inputs", "{bad}:nothing_here"], "has no attribute 'nothing_here'"),
    ("{bad}:empty_module", ["--input", "1x4"], "Module has no forward method, so there is nothing to run"),
    ("{bad}:empty_sequential", ["--input", "1x4"], "Sequential is empty: it has no layers to check or prepare"),
    ("{bad}:deep_nesting", ["--input", "1x4"], "Wrap nests submodules 2000 deep, too deep for Python's recursion limit"),
]


@pytest.mark.parametrize("command", ["check", "prepare"])
@pytest.mark.parametrize("spec, options, message", CLI_CASES)
def test_cli_bad_input_is_one_line_exit_two_and_writes_nothing(
    bad: str, tmp_path: Path, command: str, spec: str, options: list[str], message: str
) -> None:
    fill = {"bad": bad, "dir": str(Path(bad).parent)}
    argv = [command, spec.format(**fill), *(o.format(**fill) for o in options)]
    if command == "prepare":
        argv += ["-o", str(tmp_path / "out")]
    assert_one_line_error(*run(*argv), message)
    assert leftovers(tmp_path) == []


def test_debug_adds_the_traceback_to_a_model_error(bad: str) -> None:
    code, out, err = run("--debug", "check", f"{bad}:NoneOutput", "--input", "1x4")
    assert code == 2 and "Traceback" in err and err.rstrip().endswith("or dict of tensors")


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod does not stop root from writing, so nothing is read-only")
    directory = tmp_path / "read_only"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        yield directory
    finally:
        directory.chmod(0o700)


def test_prepare_into_a_read_only_directory_is_one_line_and_leaves_nothing(bad: str, read_only: Path) -> None:
    code, out, err = run("prepare", f"{bad}:linear", "--input", "1x4", "-o", str(read_only / "out"), "--format", "json")
    assert code == 2 and err.startswith("qready: error: cannot write in") and "choose a writable directory" in err
    assert err.count("\n") == 1 and leftovers(read_only) == []


def test_check_report_into_a_read_only_directory_is_one_line_and_leaves_nothing(bad: str, read_only: Path) -> None:
    code, out, err = run("check", f"{bad}:linear", "--input", "1x4", "--select", "QR003", "-o", str(read_only / "r.json"))
    assert code == 2 and err.startswith("qready: error: cannot write in") and leftovers(read_only) == []


def test_prepare_under_a_file_is_one_line_and_leaves_nothing(bad: str, tmp_path: Path) -> None:
    (tmp_path / "model.txt").write_text("mine")
    code, out, err = run("prepare", f"{bad}:linear", "--input", "1x4", "-o", str(tmp_path / "model.txt" / "out"), "--format", "json")
    assert code == 2 and f"'{tmp_path / 'model.txt'}' is a file, not a directory; choose an output directory" in err
    assert err.count("\n") == 1 and leftovers(tmp_path) == ["model.txt"]


def test_prepare_into_an_existing_directory_leaves_it_as_it_was(bad: str, tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    assert_one_line_error(*run("prepare", f"{bad}:linear", "--input", "1x4", "-o", str(target)), "holds files qready did not write (keep.txt)")
    assert leftovers(tmp_path) == ["out"] and leftovers(target) == ["keep.txt"]


# -- the Python API -----------------------------------------------------------------------------


class NoneOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> None:
        self.lin(x)


class DictWithoutTensors(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> dict[str, int]:
        return {"n": int(self.lin(x).numel())}


class RaisesHalfWay(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.lin(x))
        raise ValueError("half-way")


API_CASES = [
    (lambda: nn.Linear(4, 4), lambda: torch.randn(1, 4), qready.InputError, r"example_inputs is a bare Tensor; wrap it in a tuple: \(x,\)"),
    (lambda: nn.Linear(4, 4), lambda: [torch.randn(1, 4)], qready.InputError, "example_inputs is a list; pass a tuple"),
    (lambda: nn.Linear(4, 4), lambda: 3, qready.InputError, "example_inputs is an int; pass a tuple of positional arguments"),
    (lambda: nn.Linear(4, 4), lambda: (torch.randn(1, 5),), qready.ModelError, r"forward of Linear raised RuntimeError: mat1 and mat2 .* check that the example inputs \(float32\[1x5\]\) fit the model"),
    (lambda: nn.Conv2d(3, 3, 1), lambda: (torch.randn(1, 4),), qready.ModelError, "forward of Conv2d raised RuntimeError: Expected 3D"),
    (lambda: RaisesHalfWay(), lambda: (torch.randn(1, 4),), qready.ModelError, r"forward of RaisesHalfWay raised ValueError: half-way \(at .*test_bad_input.py:\d+\)"),
    (lambda: NoneOutput(), lambda: (torch.randn(1, 4),), qready.ModelError, "forward of NoneOutput returned None; return the model's output tensor"),
    (lambda: DictWithoutTensors(), lambda: (torch.randn(1, 4),), qready.ModelError, r"returned \{'n': 4\} \(dict\), no tensor"),
    (lambda: nn.Module(), lambda: (torch.randn(1, 4),), qready.ModelError, "Module has no forward method"),
    (lambda: nn.Sequential(), lambda: (torch.randn(1, 4),), qready.ModelError, "Sequential is empty: it has no layers"),
    (lambda: nn.ModuleList([nn.ReLU()]), lambda: (torch.randn(1, 4),), qready.ModelError, "ModuleList has no forward method"),
    (lambda: "resnet18", lambda: (torch.randn(1, 4),), qready.InputError, "model is a str, not a torch.nn.Module; pass the model instance"),
]


@pytest.mark.parametrize("operation", ["check", "check-exporters", "prepare"])
@pytest.mark.parametrize("make_model, make_inputs, error, message", API_CASES)
def test_api_bad_input_raises_one_line_and_leaves_the_model_alone(
    operation: str, make_model, make_inputs, error: type[qready.QreadyError], message: str
) -> None:
    model, inputs = make_model(), make_inputs()
    before = snapshot(model) if isinstance(model, nn.Module) else None
    with pytest.raises(error, match=message) as info:
        if operation == "check":
            qready.check(model, inputs, select=["QR003", "QR004", "QR005"])
        elif operation == "check-exporters":  # no instrumented forward: the model still runs first
            qready.check(model, inputs, select=["QR002"])
        else:
            qready.prepare(model, inputs)
    assert "\n" not in str(info.value)
    if before is not None:
        assert_unchanged(model, before)


def test_a_flat_sequential_of_3000_layers_works() -> None:
    model = nn.Sequential(*[nn.ReLU() if i % 2 else nn.Linear(4, 4) for i in range(3000)]).eval()
    x = torch.randn(1, 4)
    before = snapshot(model)
    report = qready.check(model, (x,), select=["QR003", "QR004", "QR005"])
    assert report.ok and report.coverage.total == 3000
    prepared = qready.prepare(model, (x,))
    assert prepared.prepare_result.verified and prepared.prepare_result.ok
    assert_unchanged(model, before)


class Wrap(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def nest(depth: int) -> nn.Module:
    model: nn.Module = nn.ReLU()
    for _ in range(depth):
        model = Wrap(model)
    return model


def deepest_that_runs(x: torch.Tensor) -> int:
    """The deepest nesting whose plain forward runs here, at this recursion limit."""
    low, high = 1, sys.getrecursionlimit()
    while low < high:
        middle = (low + high + 1) // 2
        try:
            with torch.no_grad():
                nest(middle)(x)
            low = middle
        except RecursionError:
            high = middle - 1
    return low


def training_flags(model: nn.Module) -> list[bool]:
    flags = []
    while isinstance(model, Wrap):
        flags.append(model.training)
        model = model.inner
    return flags


@pytest.mark.filterwarnings("ignore:module forward hook with ``always_call=True`` raised an exception")
@pytest.mark.parametrize("operation", ["check", "prepare"])
def test_nesting_as_deep_as_python_allows_works_or_says_how_to_raise_the_limit(operation: str) -> None:
    x = torch.randn(1, 4)
    for depth in (deepest_that_runs(x), 3000):  # 3000: even the plain forward fails
        model = nest(depth)
        model.inner.training = False  # mixed flags: they must come back as they were (eval() itself recurses)
        flags = training_flags(model)
        try:
            if operation == "check":
                qready.check(model, (x,), select=["QR003", "QR004", "QR005"])
            else:
                qready.prepare(model, (x,))
        except qready.ModelError as error:
            message = str(error)
            assert "\n" not in message
            assert message.startswith(f"Wrap nests submodules {depth} deep, too deep for Python's recursion limit")
            assert "sys.setrecursionlimit(" in message
        assert training_flags(model) == flags


def test_the_advised_recursion_limit_is_enough() -> None:
    x = torch.randn(1, 4)
    model = nest(deepest_that_runs(x))
    try:
        qready.prepare(model, (x,))
        return  # deep enough here already
    except qready.ModelError as error:
        limit = int(str(error).split("sys.setrecursionlimit(")[1].split(")")[0])
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        assert qready.prepare(model, (x,)).prepare_result.verified
    finally:
        sys.setrecursionlimit(previous)


def test_save_refuses_an_existing_directory_and_a_file_parent(tmp_path: Path) -> None:
    prepared = qready.prepare(nn.Sequential(nn.Linear(4, 4), nn.ReLU()).eval(), (torch.randn(1, 4),))
    (tmp_path / "taken").mkdir()
    with pytest.raises(qready.SaveError, match="'.*taken' already exists; choose a new directory"):
        qready.save(prepared, tmp_path / "taken")
    (tmp_path / "file").write_text("")
    with pytest.raises(qready.SaveError, match="is a file, not a directory"):
        qready.save(prepared, tmp_path / "file" / "out")
    assert leftovers(tmp_path) == ["file", "taken"] and leftovers(tmp_path / "taken") == []


def test_save_into_a_read_only_directory_leaves_nothing(read_only: Path) -> None:
    prepared = qready.prepare(nn.Sequential(nn.Linear(4, 4), nn.ReLU()).eval(), (torch.randn(1, 4),))
    with pytest.raises(qready.SaveError, match="cannot write in .*; choose a writable directory"):
        qready.save(prepared, read_only / "out")
    assert leftovers(read_only) == []


# -- qready.load --------------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU()).eval()
    directory = tmp_path / "saved"
    qready.save(qready.prepare(model, (torch.randn(1, 4),)), directory)
    return directory


def test_load_of_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(qready.LoadError, match="'.*nowhere' is not a directory; give the OUT_DIR that qready prepare wrote"):
        qready.load(tmp_path / "nowhere")


def test_load_of_an_incomplete_directory(saved: Path) -> None:
    (saved / "weights.safetensors").unlink()
    with pytest.raises(qready.LoadError, match="has no weights.safetensors; it is not a complete qready save, run qready prepare again"):
        qready.load(saved)


def test_load_of_a_truncated_weights_file_names_the_file(saved: Path) -> None:
    weights = saved / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(qready.LoadError, match="weights.safetensors in '.*saved' does not match its checksum; it was changed or truncated"):
        qready.load(saved)


@pytest.mark.parametrize("name", ["weights.safetensors", "model.py"])
def test_a_tampered_file_is_rejected_naming_the_file(saved: Path, name: str) -> None:
    path = saved / name
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01  # one bit of a weight, or of the code
    path.write_bytes(bytes(data))
    with pytest.raises(qready.LoadError, match=f"{name} in '.*saved' does not match its checksum; .* run qready prepare again"):
        qready.load(saved)


def test_a_manifest_with_another_format_version_is_rejected(saved: Path) -> None:
    manifest = json.loads((saved / "manifest.json").read_text())
    manifest["format_version"] = 99
    (saved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(qready.LoadError, match=f"has format version 99, this qready reads {FORMAT_VERSION}; prepare the model again"):
        qready.load(saved)


def test_a_manifest_that_is_not_json_is_rejected(saved: Path) -> None:
    (saved / "manifest.json").write_text("{not json")
    with pytest.raises(qready.LoadError, match="manifest.json' is not valid JSON .*; the save is damaged"):
        qready.load(saved)


def test_load_never_unpickles(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import _pickle

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("qready.load unpickled something")

    for module in (pickle, _pickle):
        for name in ("load", "loads", "Unpickler"):
            monkeypatch.setattr(module, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(torch.serialization, "load", refuse)
    loaded = qready.load(saved)
    x = torch.randn(1, 4)
    assert loaded(x).shape == (1, 4)


def test_a_directory_that_refuses_writes_is_one_line_also_as_root(
    bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the read-only tests check, with the refusal simulated: it runs under root too."""
    import qready.files
    import qready.serialize

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(qready.serialize.tempfile, "mkdtemp", refuse)
    monkeypatch.setattr(qready.files.tempfile, "mkstemp", refuse)
    code, out, err = run("prepare", f"{bad}:linear", "--input", "1x4", "-o", str(tmp_path / "out"), "--format", "json")
    assert code == 2 and err == f"qready: error: cannot write in '{tmp_path}' (Permission denied); choose a writable directory\n"
    code, out, err = run("check", f"{bad}:linear", "--input", "1x4", "--select", "QR003", "-o", str(tmp_path / "r.json"))
    assert code == 2 and err == f"qready: error: cannot write in '{tmp_path}' (Permission denied); choose a writable place\n"
    assert leftovers(tmp_path) == []


def test_a_disk_that_fills_up_while_saving_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors.torch

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    prepared = qready.prepare(nn.Sequential(nn.Linear(4, 4), nn.ReLU()).eval(), (torch.randn(1, 4),))
    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(qready.SaveError, match=r"cannot write '.*out' \(No space left on device\); free space or choose another place"):
        qready.save(prepared, tmp_path / "out")
    assert leftovers(tmp_path) == []


class RecursesForever(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self(self.lin(x))


def test_a_forward_that_recurses_is_the_forwards_error_not_the_nesting() -> None:
    with pytest.raises(qready.ModelError, match=r"forward of RecursesForever raised RecursionError: .* \(at .*test_bad_input.py:\d+\)"):
        qready.prepare(RecursesForever(), (torch.randn(1, 4),))
