"""Files, folders and globs → :class:`Document` (.txt, .md, .html, .pdf, .jsonl).

A document id is its path relative to the root it was found under (or the ``id`` field of a
JSONL row), so re-ingesting an edited file replaces the same document; its version is the
sha256 of the normalised text, so an unchanged file is skipped (dedup, and resumable runs).
"""

from __future__ import annotations

import glob
import hashlib
import html.parser
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from paramstack.errors import InvalidInput
from paramstack.rag.textproc import normalise
from paramstack.rag.types import Document

SUFFIXES = {".txt", ".md", ".html", ".htm", ".pdf", ".jsonl"}


class _HTMLText(html.parser.HTMLParser):
    """Visible text of an HTML page (scripts and styles dropped, block tags become lines)."""

    _SKIP = {"script", "style", "noscript", "template"}
    _BLOCK = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section"}

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skip:
            self._skip -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_text(raw: str) -> str:
    parser = _HTMLText()
    parser.feed(raw)
    return "".join(parser.parts)


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def version_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def make_document(
    doc_id: str, text: str, source: str, metadata: dict[str, Any] | None = None
) -> Document:
    """A :class:`Document` from raw text (normalised; version = content hash)."""
    if not doc_id or len(doc_id) > 512:
        raise InvalidInput("document id must be 1-512 characters", param="doc_id")
    clean = normalise(text)
    return Document(doc_id, clean, source, version_of(clean), dict(metadata or {}))


def expand(patterns: list[str]) -> list[tuple[Path, Path]]:
    """(file, root) pairs for files, folders (recursive) and globs, in a stable order."""
    found: dict[Path, Path] = {}
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file() and f.suffix.lower() in SUFFIXES:
                    found.setdefault(f, path)
        elif path.is_file():
            found.setdefault(path, path.parent)
        else:
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                raise InvalidInput(f"no file matches {pattern!r}", param="paths")
            for m in matches:
                if Path(m).is_file():
                    found.setdefault(Path(m), Path(glob.escape(pattern)).parent)
    for f in found:
        if f.suffix.lower() not in SUFFIXES:
            raise InvalidInput(f"unsupported file type {f.suffix!r}: {f}", param="paths")
    return list(found.items())


def load(patterns: list[str]) -> Iterator[Document]:
    """Documents from ``patterns``; a JSONL file gives one document per row (``id``, ``text``)."""
    for file, root in expand(patterns):
        try:
            rel = file.relative_to(root).as_posix()
        except ValueError:
            rel = file.name
        suffix = file.suffix.lower()
        if suffix == ".jsonl":
            yield from _jsonl(file, rel)
            continue
        if suffix == ".pdf":
            text = pdf_text(file)
        else:
            raw = file.read_text(encoding="utf-8", errors="replace")
            text = html_text(raw) if suffix in {".html", ".htm"} else raw
        yield make_document(rel, text, file.name)


def _jsonl(file: Path, rel: str) -> Iterator[Document]:
    with file.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text = row["text"]
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidInput(f"{file}:{n}: need a JSON object with 'text'") from exc
            meta = {k: v for k, v in row.items() if k not in {"id", "text"}}
            yield make_document(str(row.get("id", f"{rel}:{n}")), text, file.name, meta)
