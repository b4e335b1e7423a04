"""Flame graphs from collapsed stacks (``frame;frame;frame count`` per line, as ``py-spy record
--format raw`` writes them): the functions with the most samples of their own, and a
self-contained SVG (no script, nothing fetched) where each box is a function and its width the
share of samples spent in it and what it called."""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape

# py-spy frames: "function (path/to/file.py:123)"; with --subprocesses each stack starts with
# 'process 123:"command line"' frames, one per process level
_LINE = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::\d+)?\)$")
_PROCESS = re.compile(r'^process \d+:".*"$')

Stacks = dict[tuple[str, ...], int]


def frame_name(frame: str) -> str:
    """'handler (photos/app.py:138)' -> 'handler (photos/app.py)': one box per function."""
    found = _LINE.match(frame)
    return f"{found['func']} ({found['file']})" if found else frame


def parse(lines: Iterable[str]) -> Stacks:
    """Collapsed stacks, root first, merged by function (line numbers dropped, process frames too)."""
    stacks: Stacks = {}
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = tuple(frame_name(f) for f in stack.split(";") if f and not _PROCESS.match(f))
        if frames:
            stacks[frames] = stacks.get(frames, 0) + int(count)
    return stacks


def top_own(stacks: Stacks, n: int = 10) -> list[tuple[str, int, float]]:
    """The ``n`` functions with the most samples of their own (the leaf of a stack): (function,
    samples, share of all samples)."""
    own: dict[str, int] = {}
    for frames, count in stacks.items():
        own[frames[-1]] = own.get(frames[-1], 0) + count
    total = sum(stacks.values()) or 1
    return [(name, count, count / total) for name, count in sorted(own.items(), key=lambda kv: -kv[1])[:n]]


@dataclass
class _Node:
    name: str
    total: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def _tree(stacks: Stacks) -> _Node:
    root = _Node("all")
    for frames, count in stacks.items():
        root.total += count
        node = root
        for name in frames:
            node = node.children.setdefault(name, _Node(name))
            node.total += count
    return root


def _colour(name: str) -> str:
    """Warm colours, stable per module: the same file keeps its hue across graphs."""
    module = name.rpartition("(")[2]
    h = zlib.crc32(module.encode())
    return f"rgb({205 + h % 50},{80 + (h >> 8) % 130},{30 + (h >> 16) % 50})"


def _fit(name: str, width: float, char: float = 6.6) -> str:
    """As much of ``name`` as fits a box ``width`` pixels wide (11 px monospace), or nothing."""
    room = int((width - 6) / char)
    if len(name) <= room:
        return name
    return name[: room - 2] + ".." if room >= 5 else ""


def svg(stacks: Stacks, title: str, *, width: int = 1200, row: int = 17, max_depth: int = 80) -> str:
    """The flame graph: the root at the bottom, callees above their callers."""
    root = _tree(stacks)
    total = root.total or 1
    boxes: list[tuple[float, int, float, _Node]] = []  # x, depth, width, node

    def walk(node: _Node, x: float, depth: int) -> int:
        deepest = depth
        boxes.append((x, depth, node.total / total * width, node))
        if depth < max_depth:
            for child in sorted(node.children.values(), key=lambda c: c.name):
                if child.total / total * width >= 0.5:
                    deepest = max(deepest, walk(child, x, depth + 1))
                x += child.total / total * width
        return deepest

    depth = walk(root, 0.0, 0)
    height = (depth + 1) * row + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="#fffdf7"/>',
        f'<text x="6" y="18" font-size="14">{escape(title)}</text>',
    ]
    for x, d, w, node in boxes:
        y = height - (d + 1) * row - 4
        label = f"{node.name} ({node.total:,} samples, {node.total / total * 100:.1f}%)"
        text = _fit(node.name, w)
        out.append(
            f'<g><title>{escape(label)}</title><rect x="{x:.1f}" y="{y}" width="{max(w - 0.5, 0.1):.1f}" height="{row - 1}" '
            f'fill="{"#e5e7eb" if d == 0 else _colour(node.name)}" rx="2"/>'
            + (f'<text x="{x + 3:.1f}" y="{y + row - 5}">{escape(text)}</text>' if text else "")
            + "</g>"
        )
    out.append("</svg>")
    return "\n".join(out)
