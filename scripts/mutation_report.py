"""Write the score and the surviving mutants of the last `mutmut run` to a Markdown file
(`make mutation` calls it): python scripts/mutation_report.py docs/mutation.md

Everything from the line `<!-- notes -->` on is kept as it is, so the judgement on each survivor
(equivalent, or a test still to write) survives a new run."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

MARKER = "<!-- notes -->"
MUTMUT = str(Path(sys.executable).with_name("mutmut"))


def _mutmut(*args: str) -> str:
    return subprocess.run([MUTMUT, *args], capture_output=True, text=True, check=True).stdout  # noqa: S603


def _module(mutant: str) -> str:
    name = mutant.split("__mutmut_")[0]
    return re.sub(r"\.x(ǁ.*|_.*)$", "", name)


def main(target: Path) -> None:
    statuses: dict[str, str] = {}
    for line in _mutmut("results", "--all", "true").splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name:
            statuses[name] = status
    per_module: dict[str, Counter[str]] = defaultdict(Counter)
    for name, status in statuses.items():
        per_module[_module(name)][status] += 1
    total = Counter(statuses.values())
    decided = total["killed"] + total["survived"] + total["timeout"]
    score = 100 * (total["killed"] + total["timeout"]) / decided if decided else 0.0
    lines = [
        "# Mutation testing",
        "",
        "`make mutation` (mutmut, `--max-children 2`; configuration in pyproject.toml `[tool.mutmut]`) mutates",
        "quota/, tasks/lifecycle.py, tasks/creation.py and aimodel/runninghub.py and runs, for each mutant,",
        "the tests that reach the mutated function. This file is written by scripts/mutation_report.py.",
        "",
        f"**Score: {score:.1f} % killed** ({total['killed'] + total['timeout']} of {decided} decided mutants;"
        f" {total['not checked']} not checked, {total['no tests']} without a test reaching them).",
        "",
        "| module | killed | timeout | survived | no tests | not checked | score |",
        "|---|---|---|---|---|---|---|",
    ]
    for module in sorted(per_module):
        c = per_module[module]
        done = c["killed"] + c["timeout"] + c["survived"]
        module_score = f"{100 * (c['killed'] + c['timeout']) / done:.1f} %" if done else "-"
        lines.append(
            f"| {module} | {c['killed']} | {c['timeout']} | {c['survived']} | {c['no tests']} |"
            f" {c['not checked']} | {module_score} |"
        )
    lines += ["", "## Surviving mutants", ""]
    for name in sorted(n for n, s in statuses.items() if s == "survived"):
        diff = _mutmut("show", name).strip()
        lines += [f"### {name}", "", "```diff", diff, "```", ""]
    previous = target.read_text(encoding="utf-8") if target.exists() else ""
    notes = previous[previous.index(MARKER) :] if MARKER in previous else f"{MARKER}\n"
    target.write_text("\n".join(lines) + "\n" + notes, encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
