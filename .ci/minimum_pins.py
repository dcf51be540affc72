"""Print ``name==version`` for the lowest version each named pyproject extra admits.

.ci/minimum-versions installs these as constraints, so the tests run against exactly the
minimums pyproject.toml declares. Extras that name this package itself are followed.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

LOWER_BOUND = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)")


def minimums(extras: list[str], pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    optional, name = project["optional-dependencies"], project["name"]
    pins, todo, seen = [], list(extras), set()
    while todo:
        extra = todo.pop(0)
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in optional[extra]:
            own = re.fullmatch(rf"{re.escape(name)}\[([^\]]+)\]", requirement)
            if own:
                todo += [e.strip() for e in own.group(1).split(",")]
                continue
            match = LOWER_BOUND.match(requirement)
            if not match:
                raise SystemExit(f"{pyproject}: {requirement!r} in [{extra}] has no >= minimum to prove")
            pins.append(f"{match.group(1)}=={match.group(2)}")
    return pins


if __name__ == "__main__":
    print("\n".join(minimums(sys.argv[1:], Path(__file__).parents[1] / "pyproject.toml")))
