from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from scaffold.cli import NewProjectConfig, ScaffoldError, main, plan, run

CONFIG_FILES = ("pants.toml", "pyproject.toml", "build-support/macros.py")


def _build_root() -> Path:
    # Pants runs tests in a sandbox holding the repo-config files at their repository paths.
    for candidate in (Path.cwd(), *Path.cwd().parents):
        if (candidate / "pants.toml").exists() and (candidate / "build-support").exists():
            return candidate
    raise AssertionError("the repository's config files are not in the test sandbox")


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A copy of the files the scaffold reads and edits, plus BUILD_ROOT."""
    source = _build_root()
    for relative in CONFIG_FILES:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / relative, tmp_path / relative)
    shutil.copytree(source / "3rdparty/python", tmp_path / "3rdparty/python")
    for directory in ("projects/mnist", "services/kv-serve"):
        (tmp_path / directory).mkdir(parents=True)
    (tmp_path / "BUILD_ROOT").write_text("")
    return tmp_path


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    } | {str(path.relative_to(root)) + "/": "" for path in root.rglob("*") if path.is_dir()}


def test_registers_the_resolve_in_every_place_that_names_one(repo: Path) -> None:
    config = NewProjectConfig("style-transfer", lm=True, image=True, root=repo, lock=False)
    project = run(config)
    assert project == Path("projects/style-transfer")
    resolves = tomllib.loads((repo / "pants.toml").read_text())["python"]["resolves"]
    assert resolves["style-transfer"] == "3rdparty/python/style-transfer.lock"
    assert "mnist" in resolves and "pytest" in resolves
    macros = (repo / "build-support/macros.py").read_text()
    assert '    ("style-transfer", "torch", "lm"),\n)' in macros
    isort = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["isort"]
    assert isort["known_first_party"][-1] == "style_transfer"
    requirements = (repo / "3rdparty/python/style-transfer.txt").read_text()
    assert "torch==2.13.0+cpu" in requirements and "transformers" in requirements
    build = (repo / "projects/style-transfer/BUILD").read_text()
    assert 'resolve="style-transfer"' in build and "pex_docker_image(" in build
    assert 'entry_point="style_transfer.cli:main"' in build
    assert (repo / "projects/style-transfer/tests/test_style_transfer_cli.py").exists()


@pytest.mark.parametrize(
    ("kind", "torch", "lm", "expected"),
    [
        ("project", False, False, {"cli.py", "core.py"}),
        ("service", True, False, {"cli.py", "core.py", "app.py"}),
        ("service", False, True, {"cli.py", "core.py", "app.py"}),
    ],
)
def test_every_variant_is_valid_python(
    repo: Path, kind: str, torch: bool, lm: bool, expected: set[str]
) -> None:
    config = NewProjectConfig(
        "demo", kind=kind, torch=torch, lm=lm, root=repo, lock=False  # type: ignore[arg-type]
    )
    steps = plan(config, repo)
    sources = {path.name for path in steps.new_files if path.parent.name == "demo"}
    assert expected <= sources
    for path, text in steps.new_files.items():
        if path.suffix == ".py":
            compile(text, str(path), "exec")
        assert "$" not in text.replace("$(git", ""), f"unfilled placeholder in {path}"
    service = kind == "service"
    requirements = steps.new_files[Path("3rdparty/python/demo.txt")]
    assert ("fastapi" in requirements) is service
    assert ("torch==" in requirements) is (torch or lm)


@pytest.fixture()
def importable(repo: Path) -> Iterator[None]:
    yield
    for name in [module for module in sys.modules if module.split(".")[0] == "plain_demo"]:
        del sys.modules[name]
    sys.path[:] = [entry for entry in sys.path if not entry.startswith(str(repo))]


@pytest.mark.usefixtures("importable")
def test_the_generated_project_runs_and_its_cli_validates(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(NewProjectConfig("plain-demo", root=repo, lock=False))
    sys.path.insert(0, str(repo / "projects/plain-demo/src"))
    cli = importlib.import_module("plain_demo.cli")
    out = tmp_path / "run"
    assert cli.main(["--out", str(out), "--samples", "50"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["slope"] == pytest.approx(3.0, abs=0.2)
    assert (out / "fit.png").read_bytes()[:4] == b"\x89PNG"
    assert cli.main(["--samples", "-3"]) == 2
    assert "--samples: must be positive" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["Few_Shot"], "NAME: 'Few_Shot' is not a valid name"),
        (["2fast"], "NAME: '2fast' is not a valid name"),
        (["json"], "NAME: 'json' is a Python keyword or standard-library module"),
        (["mnist"], "projects/mnist already exists"),
        (["kv-serve"], "services/kv-serve already exists"),
        (["torch"], "'torch' is the name of a third-party requirement"),
        (["demo", "--kind", "batch"], "argument --kind: invalid choice: 'batch'"),
        (["demo", "--gpu"], "unrecognized arguments: --gpu"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(
    repo: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(repo)
    assert main([*argv, "--root", str(repo), "--no-lock"]) == 2
    error = capsys.readouterr().err
    assert message in error
    assert "Traceback" not in error
    assert _snapshot(repo) == before


def test_a_failed_lockfile_generation_rolls_back_every_file(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(repo)
    config = NewProjectConfig(
        "doomed", kind="service", torch=True, image=True, root=repo, pants=("false",)
    )
    failed = "`false generate-lockfiles --resolve=doomed fmt update-build-files services/doomed::`"
    with pytest.raises(ScaffoldError, match=failed + " failed"):
        run(config)
    assert _snapshot(repo) == before


def test_a_missing_tool_also_rolls_back(repo: Path) -> None:
    before = _snapshot(repo)
    config = NewProjectConfig("doomed", root=repo, pants=(str(repo / "no-such-pants"),))
    with pytest.raises(ScaffoldError, match="could not run"):
        run(config)
    assert _snapshot(repo) == before
