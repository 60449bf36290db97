"""The repository files that name every resolve or package, and how a new one is added to each.

Each edit is a small text insertion at a marked place, so comments and formatting stay as they are;
each result is parsed back to check it.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

PANTS_TOML = Path("pants.toml")
MACROS = Path("build-support/macros.py")
PYPROJECT = Path("pyproject.toml")
REQUIREMENTS_DIR = Path("3rdparty/python")


class RegistryError(RuntimeError):
    """A repository file is not shaped the way the scaffold expects."""


def resolves(root: Path) -> dict[str, str]:
    """``[python.resolves]`` of ``pants.toml``: name -> lockfile path."""
    config = tomllib.loads((root / PANTS_TOML).read_text(encoding="utf-8"))
    table = config.get("python", {}).get("resolves", {})
    if not isinstance(table, dict):
        raise RegistryError(f"{root / PANTS_TOML} has no [python.resolves] table.")
    return {str(key): str(value) for key, value in table.items()}


def first_party_packages(root: Path) -> list[str]:
    """Isort's ``known_first_party`` list in ``pyproject.toml``."""
    config = tomllib.loads((root / PYPROJECT).read_text(encoding="utf-8"))
    packages = config.get("tool", {}).get("isort", {}).get("known_first_party", [])
    return [str(package) for package in packages]


def requirement_names(root: Path) -> set[str]:
    """Every distribution named in ``3rdparty/python/*.txt``, normalised to an import-style name
    (``scikit-learn`` -> ``scikit_learn``)."""
    names = set()
    for path in sorted((root / REQUIREMENTS_DIR).glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
            if match and not line.lstrip().startswith("#"):
                names.add(re.sub(r"[-.]+", "_", match.group(1)).lower())
    return names


def add_resolve_to_pants_toml(text: str, name: str) -> str:
    """``name = "3rdparty/python/<name>.lock"`` at the end of the project
    resolves in ``[python.resolves]`` (before the tool resolves' comment
    when there is one)."""
    lines = text.splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "[python.resolves]")
    except StopIteration:
        raise RegistryError("pants.toml has no [python.resolves] section.") from None
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines)
    )
    insert_at = next(
        (i for i in range(start + 1, end) if lines[i].lstrip().startswith("# Tool resolves")),
        None,
    )
    if insert_at is None:
        insert_at = end
        while insert_at > start + 1 and not lines[insert_at - 1].strip():
            insert_at -= 1
    entry = f'{name} = "{REQUIREMENTS_DIR.as_posix()}/{name}.lock"\n'
    result = "".join(lines[:insert_at] + [entry] + lines[insert_at:])
    parsed = tomllib.loads(result)["python"]["resolves"]
    if parsed.get(name) != f"{REQUIREMENTS_DIR.as_posix()}/{name}.lock":
        raise RegistryError("could not add the resolve to pants.toml's [python.resolves].")
    return result


def add_resolve_to_macros(text: str, name: str, capabilities: tuple[str, ...]) -> str:
    """A row for ``name`` at the end of ``PROJECT_RESOLVES`` in the BUILD prelude."""
    match = re.search(r"^PROJECT_RESOLVES = \(\n(?P<body>.*?)^\)\n", text, flags=re.M | re.S)
    if match is None:
        raise RegistryError(f"{MACROS} has no `PROJECT_RESOLVES = (...)` table.")
    row = "(" + ", ".join(f'"{item}"' for item in (name, *capabilities))
    row += ",)" if not capabilities else ")"
    result = text[: match.end("body")] + f"    {row},\n" + text[match.end("body") :]
    tree = ast.parse(result)
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and getattr(node.targets[0], "id", "") == "PROJECT_RESOLVES"
        ):
            rows = ast.literal_eval(node.value)
            if rows[-1] == (name, *capabilities):
                return result
    raise RegistryError(f"could not add the resolve to PROJECT_RESOLVES in {MACROS}.")


def add_first_party_package(text: str, package: str) -> str:
    """``package`` appended to isort's ``known_first_party`` list."""
    match = re.search(r"^known_first_party = \[(?P<items>[^\]]*)\]", text, flags=re.M)
    if match is None:
        raise RegistryError(f"{PYPROJECT} has no one-line `known_first_party = [...]`.")
    items = match.group("items").rstrip().rstrip(",").rstrip()
    separator = ", " if items.strip() else ""
    result = (
        text[: match.start("items")]
        + items
        + f'{separator}"{package}"'
        + text[match.end("items") :]
    )
    packages = tomllib.loads(result)["tool"]["isort"]["known_first_party"]
    if package not in packages:
        raise RegistryError(f"could not add {package} to known_first_party in {PYPROJECT}.")
    return result
