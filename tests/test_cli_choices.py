"""The CLI's choices are the registries' keys: a new emitter or exporter is offered on the command line."""

from __future__ import annotations

import argparse

from qready.cli import CHECK_FORMATS, build_parser
from qready.reporting import EMITTERS
from qready.exporters import EXPORTERS


def _choices(command: str, option: str) -> tuple[str, ...]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return tuple(next(a for a in sub._actions if option in a.option_strings).choices)


def test_check_formats_are_the_emitter_registry() -> None:
    assert CHECK_FORMATS == tuple(EMITTERS)
    assert _choices("check", "--format") == tuple(EMITTERS)


def test_onnx_exporter_choices_are_the_exporters_qr001_runs() -> None:
    assert _choices("check", "--onnx-exporter") == EXPORTERS
