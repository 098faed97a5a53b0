"""Print benchmark tables and keep BENCHMARKS.md up to date, one section per benchmark."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

BENCHMARKS_FILE = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
ORDER = ("upload", "detect", "e2e", "idle", "scale", "agent-rss")
HEADER = """# Benchmarks

Measured with `python -m bench upload|detect|e2e|idle|scale|agent-rss|all`
(`pip install -e '.[bench]'` first; `python -m bench --help` lists the flags for quicker
runs). Every contender runs in the same invocation on the same machine, each in a process
of its own, and the figures that matter are the ratios between them; absolute numbers only
hold for the machine shown under each section. A section is rewritten each time its
benchmark runs.
"""


@dataclass
class Section:
    """One benchmark's results: a title, a table, goals and notes, ready to print."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    goals: list[tuple[str, bool | None, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machine: list[tuple[str, str]] = field(default_factory=list)

    def markdown(self) -> str:
        """Return the section as Markdown: heading, machine, table, goals, notes."""
        lines = [f"## {self.name}: {self.title}", ""]
        lines.append("Machine: " + "; ".join(f"{label} {value}" for label, value in self.machine))
        lines += ["", *table(self.columns, self.rows), ""]
        if self.goals:
            lines.append("| goal | result | figures |")
            lines.append("| --- | --- | --- |")
            for goal, met, figures in self.goals:
                verdict = "pending" if met is None else ("met" if met else "NOT met")
                lines.append(f"| {goal} | {verdict} | {figures} |")
            lines.append("")
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"


def table(columns: list[str], rows: list[list[str]]) -> list[str]:
    """Given column names and rows of text cells, return a Markdown table, one line each."""
    widths = [
        max(len(str(cell)) for cell in column) for column in zip(columns, *rows, strict=False)
    ]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return [line(columns), "| " + " | ".join("-" * w for w in widths) + " |", *map(line, rows)]


def write_section(section: Section, path: Path = BENCHMARKS_FILE) -> None:
    """Given a section, replace its block in BENCHMARKS.md (creating the file if needed)
    and keep the other benchmarks' blocks as they were, in the fixed order."""
    text = path.read_text() if path.exists() else HEADER
    blocks = {
        match.group(1): match.group(0)
        for match in re.finditer(r"<!-- bench:([\w-]+) -->.*?<!-- /bench:\1 -->\n", text, re.S)
    }
    head = text.split("<!-- bench:", 1)[0].rstrip() + "\n"
    blocks[section.name] = (
        f"<!-- bench:{section.name} -->\n{section.markdown()}<!-- /bench:{section.name} -->\n"
    )
    body = "\n".join(blocks[name] for name in ORDER if name in blocks)
    path.write_text(f"{head}\n{body}")
