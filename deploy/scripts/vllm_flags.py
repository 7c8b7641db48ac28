"""Extract the ``vllm serve`` flags of one vLLM release from its wheel, without importing vLLM
(it needs CUDA): the literal ``--flags`` of the engine's argument parser, the OpenAI frontend's
dataclass fields (vLLM turns each into ``--field-name``), and the choices we rely on.

    pip download --no-deps --only-binary :all: --python-version 3.11 \\
        --platform manylinux_2_31_x86_64 vllm==0.19.1 -d /tmp/vllm
    python deploy/scripts/vllm_flags.py /tmp/vllm/vllm-0.19.1-*.whl \\
        > src/paramstack/deploy/vllm_flags.json
"""

from __future__ import annotations

import ast
import json
import sys
import zipfile
from typing import Any


def literal_values(tree: ast.Module, name: str) -> list[Any]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            sub = node.value
            assert isinstance(sub, ast.Subscript)
            elts = sub.slice.elts if isinstance(sub.slice, ast.Tuple) else [sub.slice]
            return [ast.literal_eval(e) for e in elts]
    raise KeyError(name)


def parser_flags(tree: ast.Module) -> set[str]:
    return {
        arg.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "add_argument"
        for arg in node.args
        if isinstance(arg, ast.Constant) and str(arg.value).startswith("--")
    }


def dataclass_flags(tree: ast.Module, classes: set[str]) -> set[str]:
    return {
        "--" + stmt.target.id.replace("_", "-")
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name in classes
        for stmt in node.body
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
    }


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as zf:
        version = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        version = version.split("/")[0].removesuffix(".dist-info").split("-")[1]

        def parse(path: str) -> ast.Module:
            return ast.parse(zf.read(path).decode())

        engine = parse("vllm/engine/arg_utils.py")
        frontend = parse("vllm/entrypoints/openai/cli_args.py")
        cache, lora = parse("vllm/config/cache.py"), parse("vllm/config/lora.py")
    flags = parser_flags(engine) | parser_flags(frontend)
    flags |= dataclass_flags(frontend, {"BaseFrontendArgs", "FrontendArgs"})
    out = {
        "vllm": version,
        "flags": sorted(flags),
        "choices": {
            "--kv-cache-dtype": literal_values(cache, "CacheDType"),
            "--max-lora-rank": literal_values(lora, "MaxLoRARanks"),
        },
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
