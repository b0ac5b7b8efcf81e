"""Text and JSON output of ``qready prepare``."""

from __future__ import annotations

import json
from typing import TextIO

from qready.findings import shown_path
from qready.prepared import PrepareResult
from qready.reporting.text_format import format_finding

__all__ = ["emit_prepare_text", "emit_prepare_json"]


def emit_prepare_text(result: PrepareResult, stream: TextIO, color: bool = False) -> None:
    for change in result.changes:
        where = f"{shown_path(change.file)}:{change.line}" if change.file else "<unknown>"
        if change.kind == "functional":
            stream.write(f"{where}  converted   {change.op} -> {change.module} ({change.module_type})\n")
        elif change.kind == "dispatched":
            stream.write(f"{where}  dispatched  {change.op} -> {change.module} (at run time, inside a leaf)\n")
        elif change.kind == "unrolled":
            tied = ", weights tied" if dict(change.details).get("weights_tied") else ""
            stream.write(f"{where}  unrolled    {change.op} -> {change.module}{tied}\n")
        elif change.kind == "decomposed":
            details = dict(change.details)
            stream.write(
                f"<target>  decomposed  {change.module} ({change.op}): {details['reason']}; "
                f"max |difference| from the original {details['max_abs_diff']:.3g}\n"
            )
        elif change.kind == "tupled":
            stream.write(f"<target>  tupled      {change.module} returns its list as a tuple: {dict(change.details)['reason']}\n")
        else:
            stream.write(f"{where}  unconverted {change.op}: {dict(change.details).get('reason', '')}\n")
    for leaf in result.leaves:
        where = f"{shown_path(leaf.file)}:{leaf.line}" if leaf.file else "<unknown>"
        stream.write(f"{where}  leaf        {leaf.module} left whole: {leaf.reason}\n")
    for path in result.excluded:
        stream.write(f"<exclude>  leaf        {path} left whole: excluded by the user\n")
    for file, line, value in result.specialized:
        stream.write(f"{file}:{line}  specialized a branch on a tensor value to {value} (the example's)\n")
    for file, line in result.fixed_sizes if result.shape_bound else ():
        stream.write(f"{file}:{line}  fixed size  a size read from a tensor is fixed to the example's here\n")
    for bound in result.shape_bound:
        stream.write(f"<shapes>  fixed size  {bound}\n")
    for finding in result.residual + result.unexpected:
        stream.write("residual  " + format_finding(finding, color) + "\n")
    stream.write(result.summary() + "\n")


def emit_prepare_json(result: PrepareResult, stream: TextIO, color: bool = False) -> None:
    stream.write(json.dumps(result.to_dict(), indent=2) + "\n")
