"""The README's code snippets, for the tests that run them line for line."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def snippet_lines(section: str) -> list[str]:
    """The non-blank lines of the ```python blocks in README section `<!-- section: <section> ... -->`."""
    text = README.read_text()
    start = text.index(f"<!-- section: {section} ")
    end = text.find("<!-- section: ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end if end > 0 else None], re.S)
    return [line.rstrip() for block in blocks for line in block.splitlines() if line.strip()]


def missing_from(section: str, source: Path) -> list[str]:
    """README lines of `section` that `source` does not contain (indentation and `# noqa` aside)."""
    have = {re.sub(r"\s+# noqa: \w+$", "", line).strip() for line in source.read_text().splitlines()}
    return [line for line in snippet_lines(section) if line.strip() not in have]
