"""Read documents from folders, files or globs: ``.txt``, ``.md``, ``.jsonl`` and ``.html``.

A text or Markdown file is one document; a JSONL row is one document (its ``text`` field,
its ``id`` when present); HTML keeps the visible text of ``<body>`` without scripts, styles
and navigation (selectolax, a C parser, so HTML does not become the bottleneck).
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from paramstack.errors import InvalidInput

SUFFIXES = (".txt", ".md", ".jsonl", ".html", ".htm")
_DROP_TAGS = ("script", "style", "noscript", "nav", "header", "footer", "aside", "form")
_BLOCK_TAGS = ("p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "br", "pre", "td")


@dataclass(frozen=True)
class Doc:
    id: str
    text: str
    source: str


def expand(inputs: Sequence[str]) -> list[Path]:
    """Files named by ``inputs`` (files, folders searched recursively, or glob patterns), in a
    stable order; a name that matches nothing is an error, not an empty corpus."""
    files: list[Path] = []
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            found = [p for p in sorted(path.rglob("*")) if p.suffix.lower() in SUFFIXES]
        elif path.is_file():
            found = [path]
        else:
            found = [Path(p) for p in sorted(glob.glob(spec, recursive=True))]
            found = [p for p in found if p.is_file() and p.suffix.lower() in SUFFIXES]
        if not found:
            raise InvalidInput(f"no .txt/.md/.jsonl/.html files found at {spec!r}", param="input")
        if path.is_file() and path.suffix.lower() not in SUFFIXES:
            raise InvalidInput(f"{path} is not one of {', '.join(SUFFIXES)}", param="input")
        files.extend(found)
    return list(dict.fromkeys(files))


def html_text(html: str) -> str:
    """Visible text of an HTML page, one block element per line."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    tree.strip_tags(list(_DROP_TAGS))
    root = tree.body or tree.root
    if root is None:
        return ""
    for tag in _BLOCK_TAGS:
        for node in root.css(tag):
            node.insert_after("\n")
    return str(root.text(separator="", deep=True))


def _jsonl(path: Path) -> Iterator[Doc]:
    """One document per row, read line by line (JSONL files can be larger than memory)."""
    with path.open(encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path}:{n}: not JSON ({exc.msg})", param="input") from exc
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise InvalidInput(f"{path}:{n}: a row needs a string 'text' field", param="input")
            yield Doc(str(row.get("id", f"{path.stem}:{n}")), row["text"], str(path))


def read_file(path: Path) -> Iterator[Doc]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from _jsonl(path)
        return
    raw = path.read_text(encoding="utf-8", errors="replace")
    if suffix in (".html", ".htm"):
        yield Doc(path.stem, html_text(raw), str(path))
    else:
        yield Doc(path.stem, raw, str(path))


def read_all(files: Sequence[Path]) -> Iterator[Doc]:
    for path in files:
        yield from read_file(path)
