"""qready on the models of AIMET's own preparer and validator tests, side by side with AIMET.

AIMET's test suite holds the models its authors wrote to exercise ``prepare_model``
and ``ModelValidator``: functional ops, ``*inputs`` forwards, reused modules,
static branches, custom functions. This benchmark reads them from a local AIMET
checkout (nothing of it is copied here) and measures each one like an outside
model (``outside_models.run_set``: one subprocess per case, records cached for
``--resume``).

    git clone https://github.com/quic/aimet /tmp/aimet
    python benchmarks/aimet_test_models.py --aimet-src /tmp/aimet
    python benchmarks/aimet_test_models.py --aimet-src /tmp/aimet --list      # the cases found, nothing run

How a case is found, without running AIMET's tests: in each ``test_*`` function of
``test_model_preparer.py`` and ``test_model_validator.py``, the model is the first
argument of the first ``prepare_model(...)``, ``validate_*(...)`` or
``get_ops_with_missing_modules(...)`` call, and the example is what the test calls
that model (or its prepared copy) with, else the validator's (or graph walk's) input. The test's own statements that build them (class definitions,
assignments) are run; statements that use AIMET, assert or write files are not.
``.cuda()`` is dropped: the cases run on the CPU. Tests that build the same model
class on the same input shapes count once.

Writes the "AIMET test models" section of ``BENCHMARKS.md`` when run over every case.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import importlib
import io
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine  # noqa: E402
from outside_models import add_arguments, report, run_set, work  # noqa: E402
from zoo_models import ZooModel  # noqa: E402

from qready.example_inputs import Example  # noqa: E402

TESTS = Path("TrainingExtensions/torch/test/python")
FILES = ("test_model_preparer.py", "test_model_validator.py")
# where a test makes no call that names its inputs, the variable that holds them (``model(*inputs)``)
INPUT_NAMES = ("input_tensor", "dummy_input", "dummy_inp", "rand_inp", "inp")
# a case's model is the first argument of the first call to one of these
ENTRY_CALLS = {
    "prepare_model", "validate_model", "validate_for_missing_modules", "validate_for_reused_modules",
    "_get_filtered_ops_with_missing_modules",
    # the validator's graph walk: the nn.Transformer test hands it its model and inputs, no prepare_model
    "get_ops_with_missing_modules",
}
# statements naming any of these are AIMET's side of the test, or its checks and files: not run
SKIP_NAMES = {
    "prepare_model", "prepare_pt_transformer_for_quantsim", "QuantizationSimModel", "ModelValidator",
    "validation_checks", "connectedgraph_utils", "fold_all_batch_norms", "equalize_model", "Adaround",
    "bias_correction", "onnx_utils", "tempfile", "utils", "symbolic_trace", "_find_functional_name_for_node",
    "create_fake_data_loader", "print", "evaluate", "sim", "quant_sim",
}


@dataclass(frozen=True)
class Case:
    name: str  # file::test
    file: Path
    test: str


def _aimet_v1_alias() -> None:
    """The test tree imports ``aimet_torch.v1.nn.modules.custom``; newer AIMET releases keep the
    same elementwise modules in ``aimet_torch.nn.modules.custom``. Alias them when only that exists."""
    try:
        importlib.import_module("aimet_torch.v1.nn.modules.custom")
        return
    except ImportError:
        pass
    try:
        custom = importlib.import_module("aimet_torch.nn.modules.custom")
    except ImportError:
        return  # no AIMET: the cases that build AIMET's modules are reported as not built
    for name in ("aimet_torch.v1", "aimet_torch.v1.nn", "aimet_torch.v1.nn.modules"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["aimet_torch.v1.nn.modules.custom"] = custom


def _names(node: ast.AST) -> set[str]:
    found = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    return found | {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


class _NoCuda(ast.NodeTransformer):
    """``x.cuda()`` -> ``x``: the cases run on the CPU."""

    def visit_Call(self, node: ast.Call) -> Any:
        self.generic_visit(node)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "cuda" and not node.args:
            return node.func.value
        return node


def _run_each(statements: list[ast.stmt], namespace: dict[str, Any], filename: str) -> None:
    """Run each statement on its own; one that fails (an import of a missing package, say) is skipped."""
    for statement in statements:
        module = ast.fix_missing_locations(ast.Module(body=[_NoCuda().visit(statement)], type_ignores=[]))
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(module, filename, "exec"), namespace)
        except Exception:  # the test file's own statement failed here: what it defines stays undefined
            continue


def _module_namespace(path: Path, tests: Path) -> dict[str, Any]:
    _aimet_v1_alias()
    if str(tests) not in sys.path:
        sys.path.insert(0, str(tests))
    namespace: dict[str, Any] = {"__name__": f"aimet_tests_{path.stem}", "__file__": str(path)}
    tree = ast.parse(path.read_text())
    top = [s for s in tree.body if not isinstance(s, ast.ClassDef) or not s.name.startswith("Test")]
    _run_each(top, namespace, str(path))
    return namespace


def _tests(path: Path) -> list[tuple[ast.FunctionDef, dict[str, ast.FunctionDef]]]:
    """Each ``test_*`` function, with the other methods of its test class (its helpers)."""
    tree = ast.parse(path.read_text())
    found = []
    for node in tree.body:
        members = node.body if isinstance(node, ast.ClassDef) and node.name.startswith("Test") else [node]
        methods = {m.name: m for m in members if isinstance(m, ast.FunctionDef)}
        found += [(m, methods) for m in methods.values() if m.name.startswith("test_")]
    return found


def _calls(function: ast.FunctionDef) -> list[ast.Call]:
    calls = [n for n in ast.walk(function) if isinstance(n, ast.Call)]
    return sorted(calls, key=lambda c: (c.lineno, c.col_offset))


def _entry(function: ast.FunctionDef) -> tuple[str, str | None] | None:
    """(the model's variable, the prepared copy's variable or None), from the first entry call."""
    for call in _calls(function):
        if _call_name(call) in ENTRY_CALLS and call.args and isinstance(call.args[0], ast.Name):
            prepared = None
            for statement in ast.walk(function):
                if isinstance(statement, ast.Assign) and statement.value is call and isinstance(statement.targets[0], ast.Name):
                    prepared = statement.targets[0].id
            return call.args[0].id, prepared
    return None


def _evaluate_args(call: ast.Call, namespace: dict[str, Any], skip: int = 0) -> Example:
    args: list[Any] = []
    for node in call.args[skip:]:
        value = eval(compile(ast.Expression(_NoCuda().visit(node.value if isinstance(node, ast.Starred) else node)),
                             "<case>", "eval"), namespace)
        args += list(value) if isinstance(node, ast.Starred) else [value]
    kwargs = {k.arg: eval(compile(ast.Expression(k.value), "<case>", "eval"), namespace) for k in call.keywords if k.arg}
    return Example(tuple(args), kwargs)


def _run_body(function: ast.FunctionDef, namespace: dict[str, Any], filename: str) -> None:
    body = [s for s in function.body if not (_names(s) & SKIP_NAMES) and not isinstance(s, (ast.Assert, ast.Expr, ast.With))]
    _run_each(body, namespace, filename)


def _through_helper(
    function: ast.FunctionDef, methods: dict[str, ast.FunctionDef], namespace: dict[str, Any]
) -> ast.FunctionDef | None:
    """A test that hands its model class to a helper method (``self.verify(Model)``): the helper,
    its parameters bound in ``namespace``."""
    for call in _calls(function):
        func = call.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
            helper = methods.get(func.attr)
            if helper is not None and _entry(helper) is not None:
                example = _evaluate_args(call, namespace)
                namespace.update(zip([a.arg for a in helper.args.args[1:]], example.args))
                namespace.update(example.kwargs)
                return helper
    return None


def build(case: Case, tests: Path) -> tuple[torch.nn.Module, Example]:
    """Run the test's own statements that build its model and inputs; return both."""
    namespace = _module_namespace(case.file, tests)
    [(function, methods)] = [(f, m) for f, m in _tests(case.file) if f.name == case.test]
    torch.manual_seed(0)
    _run_body(function, namespace, str(case.file))
    if _entry(function) is None:
        function = _through_helper(function, methods, namespace) or function
        _run_body(function, namespace, str(case.file))
    entry = _entry(function)
    if entry is None:
        raise LookupError("no prepare_model/validate_* call on a named model")
    model_name, prepared_name = entry
    model = namespace.get(model_name)
    if not isinstance(model, torch.nn.Module):
        raise LookupError(f"{model_name!r} is not built by the test's own statements")
    callers = {model_name, prepared_name} - {None}
    for call in _calls(function):
        try:
            # (with arguments: ``model = model().eval()`` in a helper is the class, built)
            if isinstance(call.func, ast.Name) and call.func.id in callers and (call.args or call.keywords):
                return model, _evaluate_args(call, namespace)
        except Exception:  # that call's arguments are made by a statement not run here: try the next
            continue
    for call in _calls(function):
        if _call_name(call) in ENTRY_CALLS - {"prepare_model"} and len(call.args) >= 2:
            return model, _as_positional(eval(compile(ast.Expression(call.args[1]), "<case>", "eval"), namespace))
    for name in INPUT_NAMES:
        if isinstance(namespace.get(name), (torch.Tensor, tuple, list)):
            return model, _as_positional(namespace[name])
    raise LookupError("the test builds no input for its model")


def _as_positional(value: Any) -> Example:
    """What AIMET's tools do with a ``dummy_input``: a tuple or list is ``model(*inputs)``."""
    return Example(tuple(value) if isinstance(value, (tuple, list)) else (value,))


def cases(src: Path) -> list[Case]:
    tests = src / TESTS
    return [Case(f"{name}::{f.name}", tests / name, f.name) for name in FILES for f, _ in _tests(tests / name)]


def _shapes(example: Example) -> str:
    def one(value: Any) -> str:
        if isinstance(value, torch.Tensor):
            return "x".join(map(str, value.shape))
        if isinstance(value, (tuple, list)):
            return "[" + ",".join(one(v) for v in value) + "]"
        return type(value).__name__

    return ";".join([one(v) for v in example.args] + [f"{k}={one(v)}" for k, v in example.kwargs.items()])


def survey(src: Path) -> list[tuple[Case, str | None, str]]:
    """Each test: its case, why it is not measured (None: measured), and a key that is the same for
    tests building the same model class (same source) on the same input shapes."""
    import inspect

    out = []
    for case in cases(src):
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                model, example = build(case, src / TESTS)
            try:
                source = inspect.getsource(type(model))
            except (OSError, TypeError):
                source = type(model).__qualname__
            key = hashlib.sha1(f"{source}|{_shapes(example)}".encode()).hexdigest()[:12]
            out.append((case, None, key))
        except Exception as error:  # a test this reader cannot take apart: listed with the reason
            out.append((case, f"not extracted: {type(error).__name__}: {error}"[:150], case.name))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aimet-src", type=Path, required=True, help="the root of an AIMET checkout")
    parser.add_argument("--list", action="store_true", help="list the cases found and exit")
    add_arguments(parser, ROOT / "benchmarks" / "results" / "aimet_test_models.json")
    args = parser.parse_args(argv)
    src = args.aimet_src.resolve()
    if not (src / TESTS).is_dir():
        parser.error(f"{src} holds no {TESTS}: give the root of an AIMET checkout")
    if args.worker:
        [case] = [c for c in cases(src) if c.name == args.worker]
        model, example = build(case, src / TESTS)
        # the measuring code takes positional inputs as a tuple (AIMET's tests pass no keywords)
        inputs = example.args if not example.kwargs else example
        entry = ZooModel(case.name, "aimet-tests", lambda: model, lambda: inputs)
        return work(entry, args.worker_out, not args.no_aimet)

    found = survey(src)
    seen: dict[str, str] = {}
    todo: list[tuple[str, str | None]] = []
    for case, missing, key in found:
        if missing is None and key in seen:
            missing = f"same model and input shapes as {seen[key].split('::')[1]}"
        seen.setdefault(key, case.name)
        todo.append((case.name, missing))
    if args.list:
        for name, missing in todo:
            print(f"{name}: {missing or 'measured'}")
        return 0
    rows, passed, measured = run_set(Path(__file__).resolve(), todo, args, extra=["--aimet-src", str(src)])
    command = "python benchmarks/aimet_test_models.py --aimet-src AIMET" + "".join(
        f" {a}" for a in (argv or sys.argv[1:]) if a != str(args.aimet_src) and a != "--aimet-src"
    )
    intro = (
        f"`{command}` on {machine()}. The models of AIMET's own `test_model_preparer.py` and "
        f"`test_model_validator.py`, read from an AIMET checkout: {len(found)} tests, {measured} distinct "
        "cases measured (same class and input shapes count once), one subprocess each, measured as the "
        "outside models are. Rows without numbers say why the test is not a case."
    )
    report(args, "aimet-test-models", "AIMET test models", intro, rows, passed, measured)
    return 0


if __name__ == "__main__":
    sys.exit(main())
