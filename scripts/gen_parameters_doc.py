"""Prints docs/parameters.md, generated from the code that defines the parameters.

    .venv/bin/python scripts/gen_parameters_doc.py > docs/parameters.md

Sources, so the page cannot drift from them (tests/unit/test_docs.py regenerates
it and compares):

- the channel inputs: `EmbeddingIndexValidatorSpec.INPUTS` in spec.py (read with
  `ast`, so that TFX is not imported), each meaning from the `Args:` section of
  `EmbeddingIndexValidator.__init__`'s docstring;
- the parameters: the fields of `ValidatorOptions` (run/options.py), in order,
  with their defaults, each meaning from the dataclass's `Attributes:` docstring;
- the CLI flag of each: `CLI_FLAGS` (run/options.py), kept only when
  `embedding-guard check`'s parser really has that flag.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "components" / "embedding_guard"
COMMAND = ".venv/bin/python scripts/gen_parameters_doc.py > docs/parameters.md"


def _docstring_section(doc: str, header: str) -> dict[str, str]:
    """name -> text of a Google-style docstring section ("Args:", "Attributes:")."""
    lines = doc.expandtabs().splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == header)
    except StopIteration:
        raise SystemExit(f"error: no {header!r} section in the docstring") from None
    entries: dict[str, list[str]] = {}
    entry_indent = None
    current = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if entry_indent is None:
            entry_indent = indent
        if indent < entry_indent:
            break
        if indent == entry_indent:
            name, sep, text = line.strip().partition(":")
            if not sep:
                break
            current = name.strip()
            entries[current] = [text.strip()]
        elif current is not None:
            entries[current].append(line.strip())
    return {name: " ".join(part for part in parts if part) for name, parts in entries.items()}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _channel_inputs() -> list[tuple[str, str, bool]]:
    """(key, artifact type, optional) of each input of the spec, in order."""
    tree = ast.parse((PACKAGE / "spec.py").read_text(encoding="utf-8"))
    constants = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    spec_class = next(
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name == "EmbeddingIndexValidatorSpec"
    )
    inputs = next(
        node.value
        for node in spec_class.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "INPUTS" for t in node.targets)
    )
    if not isinstance(inputs, ast.Dict):
        raise SystemExit("error: spec.py's INPUTS is not a dict literal")
    result = []
    for key, value in zip(inputs.keys, inputs.values, strict=True):
        if not (isinstance(key, ast.Name) and isinstance(value, ast.Call)):
            raise SystemExit("error: spec.py's INPUTS: expected KEY: ChannelParameter(...)")
        keywords = {keyword.arg: keyword.value for keyword in value.keywords}
        artifact = keywords.get("type")
        if not isinstance(artifact, ast.Attribute):
            raise SystemExit(f"error: spec.py's INPUTS[{key.id}]: expected type=module.Artifact")
        optional = keywords.get("optional")
        is_optional = isinstance(optional, ast.Constant) and optional.value is True
        result.append((constants[key.id], artifact.attr, is_optional))
    return result


def _component_args() -> dict[str, str]:
    tree = ast.parse((PACKAGE / "component" / "__init__.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "EmbeddingIndexValidator":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    return _docstring_section(ast.get_docstring(item) or "", "Args:")
    raise SystemExit("error: EmbeddingIndexValidator.__init__ not found in component/__init__.py")


def _check_flags() -> set[str]:
    from embedding_guard.cli.main import build_parser

    parser = build_parser()
    for action in parser._actions:  # argparse keeps its subparsers nowhere public
        if isinstance(action, argparse._SubParsersAction):
            check = action.choices["check"]
            return {flag for sub in check._actions for flag in sub.option_strings}
    raise SystemExit("error: the CLI's parser has no `check` command")


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "required"
    if isinstance(value, str):
        return f"`{json.dumps(value)}`"
    return f"`{value!r}`"


def render() -> str:
    sys.path.insert(0, str(ROOT / "components"))
    from embedding_guard.run.options import CLI_FLAGS, ValidatorOptions

    flags = _check_flags()
    fields = dataclasses.fields(ValidatorOptions)
    meanings = _docstring_section(ValidatorOptions.__doc__ or "", "Attributes:")
    field_names = [field.name for field in fields]
    undocumented = sorted(set(field_names) - set(meanings))
    unknown = sorted(set(meanings) - set(field_names))
    if undocumented or unknown:
        raise SystemExit(
            "error: ValidatorOptions' Attributes docstring does not match its fields: "
            f"undocumented {undocumented}, not fields {unknown}"
        )
    channels = _channel_inputs()
    args = _component_args()
    missing = [key for key, _, _ in channels if key not in args]
    if missing:
        raise SystemExit(f"error: EmbeddingIndexValidator's Args docstring lacks {missing}")

    out = [
        "# Parameters",
        "",
        f"<!-- Generated by `{COMMAND}`; do not edit. -->",
        "",
        "Generated from the code: the channels from `EmbeddingIndexValidatorSpec.INPUTS`",
        "(`spec.py`) and `EmbeddingIndexValidator`'s docstring, the parameters from",
        "`ValidatorOptions` (`run/options.py`), its docstring and `CLI_FLAGS`.",
        "`tests/unit/test_docs.py` fails when this page is out of date.",
        "",
        "## Channel inputs",
        "",
        "| input | artifact type | required | meaning | CLI flag |",
        "|---|---|---|---|---|",
    ]
    for key, artifact, optional in channels:
        flag = "--" + key.replace("_", "-")
        out.append(
            f"| `{key}` | `{artifact}` | {'no' if optional else 'yes'} | {_cell(args[key])} | "
            f"{f'`{flag}`' if flag in flags else 'none'} |"
        )
    out += [
        "",
        "The output is one channel, `anomalies` (`ExampleAnomalies`).",
        "",
        "## Parameters",
        "",
        "One `ValidatorOptions` object holds them for the component, the CLI and",
        "`embedding_guard.check`; it checks them when the pipeline is built. Names that",
        "only the data can check (a `baseline_split` the examples lack, a per-feature",
        "threshold for a feature that is not checked) fail when the run starts.",
        "",
        "| parameter | default | meaning | CLI flag |",
        "|---|---|---|---|",
    ]
    without_flag = []
    for field in fields:
        flag = CLI_FLAGS.get(field.name)
        if flag not in flags:
            without_flag.append(field.name)
        shown = f"`{flag}`" if flag in flags else "none"
        out.append(
            f"| `{field.name}` | {_default(field)} | {_cell(meanings[field.name])} | {shown} |"
        )
    out += ["", "A CLI flag of `none`: `embedding-guard check` has no such flag."]
    if "fail_on_block" in without_flag:
        out.append("`check` exits 1 whenever a split is blocked, so it needs no `fail_on_block`.")
    out.append("")
    return "\n".join(out)


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
