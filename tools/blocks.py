"""Generated blocks in the documentation: the text between `<!-- TAG:NAME -->` and
`<!-- /TAG:NAME -->` in README.md or docs/**/*.md is what a generator makes of committed raw
results, never typed. Each tag has its owner: `bench` (tools/bench/docs.py, the `bench all`
report) and `results` (tools/experiments/docs.py, the results folders). This module finds the
blocks of one tag and rewrites them; a test per tag fails when a block differs from its generator.

A block whose generated text ends in a newline is a block of lines (it starts on the line after
its opening marker); otherwise it is inline, inside a sentence or a table cell.
"""

import re
from collections.abc import Callable
from pathlib import Path

NAME = r"[a-z0-9][a-z0-9/_-]*"


def _marker(tag: str) -> re.Pattern:
    # `<!-- TAG:NAME -->` / `<!-- /TAG:NAME -->`, and the `<!-- TAG all -->` pair
    return re.compile(rf"<!-- (/?){tag}(?::({NAME})| (all)) -->")


def find(text: str, tag: str,
         validate: Callable[[str], None]) -> list[tuple[str, re.Match, re.Match]]:
    """The tag's blocks in a text, (name, opening marker, closing marker) in order; ValueError for
    a malformed, unpaired or nested marker, or from validate(name) for a name it does not know."""
    marks = list(_marker(tag).finditer(text))

    def line(m: re.Match) -> int:
        return text.count("\n", 0, m.start()) + 1

    strict = {m.start() for m in marks}
    for m in re.finditer(rf"<!--\s*/?\s*{tag}\b", text):
        if m.start() not in strict:
            raise ValueError(f"line {line(m)}: a malformed {tag} marker (`<!-- {tag}:NAME -->` "
                             f"and `<!-- /{tag}:NAME -->`, NAME in lower case)")
    found = []
    for i in range(0, len(marks), 2):
        start, end = marks[i], marks[i + 1] if i + 1 < len(marks) else None
        name = start[2] or start[3]
        if start[1]:
            raise ValueError(f"line {line(start)}: `{start[0]}` closes a block that was not "
                             "opened")
        if end is None or not end[1] or end.group(2, 3) != start.group(2, 3):
            raise ValueError(f"line {line(start)}: `{start[0]}` is not followed by its closing "
                             f"marker (`<!-- /{tag}:{name} -->`)")
        try:
            validate(name)
        except ValueError as e:
            raise ValueError(f"line {line(start)}: {e}") from None
        found.append((name, start, end))
    return found


def render(text: str, tag: str, generate: Callable[[str], str],
           validate: Callable[[str], None]) -> str:
    """`text` with every block of `tag` rewritten by generate(name)."""
    pieces, at = [], 0
    for name, start, end in find(text, tag, validate):
        line = text.count("\n", 0, start.start()) + 1
        try:
            content = generate(name)
        except ValueError as e:
            raise ValueError(f"line {line}: {e}") from None
        if not content.endswith("\n") and not text[:start.start()].rsplit("\n", 1)[-1].strip():
            raise ValueError(f"line {line}: the inline block {name!r} starts its line, where "
                             "Markdown reads the marker as an HTML block; put text before it")
        pieces += [text[at:start.end()], "\n" if content.endswith("\n") else "", content]
        at = end.start()
    return "".join(pieces) + text[at:]


def files(root: Path) -> list[Path]:
    """The Markdown files whose blocks are generated: README.md and docs/**/*.md."""
    root = Path(root)
    return [path for path in (root / "README.md", *sorted((root / "docs").rglob("*.md")))
            if path.is_file()]


def render_files(root: Path, tag: str, generate: Callable[[str], str],
                 validate: Callable[[str], None], check: bool = False) -> tuple[int, list[str]]:
    """Rewrite the tag's blocks of every file under `root` (with `check`, write nothing): the
    number of blocks and the files that were (or would be) changed, relative to root. Every
    file is rendered before any is written; errors name the file."""
    root = Path(root)
    rewritten, count = {}, 0
    for path in files(root):
        text = path.read_text(encoding="utf-8")
        try:
            count += len(find(text, tag, validate))
            new = render(text, tag, generate, validate)
        except ValueError as e:
            raise ValueError(f"{path.relative_to(root).as_posix()}: {e}") from None
        if new != text:
            rewritten[path] = new
    for path, new in rewritten.items() if not check else ():
        path.write_text(new, encoding="utf-8")
    return count, [path.relative_to(root).as_posix() for path in rewritten]
