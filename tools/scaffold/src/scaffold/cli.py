"""``new-project``: add a project or service to the repository in one command.

./pants run tools/scaffold:new-project -- <name> [--kind service] [--torch] [--lm] [--image]

Writes ``projects/<name>/`` (or ``services/<name>/``) with a typed command line, a test, a README
and BUILD files; writes ``3rdparty/python/<name>.txt``; registers the resolve in pants.toml and
build-support/macros.py and the package in pyproject.toml; generates the lockfile; formats what it
wrote. Bad input writes nothing; a failure half-way undoes every change.
"""

from __future__ import annotations

import dataclasses
import keyword
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Literal

from scaffold import registry, templates

from ml_core.atomic import atomic_output
from ml_core.cli import Command, ConfigError, make_main, option, positional, require

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
MAX_NAME_LENGTH = 30
# Directory names that are not packages a team would want to import as their own.
RESERVED = {"test", "tests", "src", "lib", "libs", "tools", "scaffold", "build", "dist"}


class ScaffoldError(RuntimeError):
    """The project cannot be made (bad name, name taken, a step failed)."""


@dataclasses.dataclass(frozen=True)
class NewProjectConfig:
    """Add a project or service with its own resolve."""

    name: str = positional(help="directory and resolve name, e.g. few-shot (package few_shot)")
    kind: Literal["project", "service"] = "project"
    """A batch project under projects/ or an HTTP service under services/"""

    torch: bool = False
    """Put the CPU build of torch in its resolve (a small torch model as the example)"""

    lm: bool = False
    """Use libs/lm (implies --torch; transformers in its resolve, a preset LM as the example)"""

    image: bool = False
    """Add a docker_image made by the shared pex_docker_image macro."""

    description: str = ""
    """One line for the README and docstrings (default: derived from the name)"""

    root: Path | None = None
    """Repository root (default: the nearest parent directory with a BUILD_ROOT file)"""

    lock: bool = True
    """Generate the lockfile (--no-lock leaves it to you: nothing builds until you do)"""

    pants: tuple[str, ...] = option(("./pants",), cli=False)

    def __post_init__(self) -> None:
        require(
            bool(NAME_PATTERN.fullmatch(self.name)),
            "name",
            f"{self.name!r} is not a valid name: use lower-case letters and digits in "
            "words joined by single hyphens, starting with a letter (e.g. few-shot)",
        )
        require(
            len(self.name) <= MAX_NAME_LENGTH,
            "name",
            f"{self.name!r} is longer than {MAX_NAME_LENGTH} characters",
        )
        require(
            not keyword.iskeyword(self.package) and self.package not in sys.stdlib_module_names,
            "name",
            f"{self.package!r} is a Python keyword or standard-library module; pick another name",
        )
        require(self.name not in RESERVED, "name", f"{self.name!r} is reserved; pick another name")
        require(
            "\n" not in self.description and '"' not in self.description,
            "description",
            "must be one line without double quotes",
        )

    @property
    def package(self) -> str:
        return self.name.replace("-", "_")

    @property
    def uses_torch(self) -> bool:
        return self.torch or self.lm

    @property
    def location(self) -> str:
        return "services" if self.kind == "service" else "projects"


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the scaffold writes: new files, and the new text of existing files it edits."""

    new_files: dict[Path, str]
    edits: dict[Path, str]
    project_dir: Path


def find_root(start: Path) -> Path:
    for candidate in (start, *start.parents):
        if (candidate / "BUILD_ROOT").exists() and (candidate / "pants.toml").exists():
            return candidate
    raise ScaffoldError(
        f"no repository root (a directory with BUILD_ROOT and pants.toml) above {start}"
    )


def check_available(config: NewProjectConfig, root: Path) -> None:
    """Refuse names that are taken anywhere they would need to be unique."""
    for location in ("projects", "services"):
        if (root / location / config.name).exists():
            raise ScaffoldError(f"{location}/{config.name} already exists; pick another name.")
    if config.name in registry.resolves(root):
        raise ScaffoldError(f"a resolve named {config.name!r} already exists in pants.toml.")
    if (root / registry.REQUIREMENTS_DIR / f"{config.name}.txt").exists():
        raise ScaffoldError(f"3rdparty/python/{config.name}.txt already exists.")
    if config.package in registry.first_party_packages(root):
        raise ScaffoldError(f"a first-party package named {config.package!r} already exists.")
    if config.package.lower() in registry.requirement_names(root):
        raise ScaffoldError(
            f"{config.package!r} is the name of a third-party requirement; a package of that "
            "name would shadow it. Pick another name."
        )


def _description(config: NewProjectConfig) -> str:
    if config.description:
        return config.description.rstrip(".")
    kind = "An HTTP service" if config.kind == "service" else "A project"
    return f"{kind} made by new-project (describe it here)"


def plan(config: NewProjectConfig, root: Path) -> Plan:
    """Every file to write and edit, computed before anything is touched."""
    description = _description(config)
    values = {
        "name": config.name,
        "package": config.package,
        "location": config.location,
        "description": description,
        "env_prefix": config.package.upper() + "_",
    }
    directory = Path(config.location) / config.name
    source = directory / "src" / config.package
    tests = directory / "tests"
    service = config.kind == "service"
    files: dict[Path, str] = {}

    if config.image:
        cmd = (
            '["--host", "0.0.0.0", "--port", "8000"]' if service else '["--out", "/home/app/runs"]'
        )
        expose = "\n    expose=8000," if service else ""
        binary = templates.IMAGE_TARGET.substitute(values, cmd=cmd, expose=expose)
    else:
        binary = templates.PEX_TARGET.substitute(values)
    files[directory / "BUILD"] = templates.BUILD_ROOT_FILE.substitute(values, binary=binary)
    files[source / "BUILD"] = templates.SOURCES_BUILD
    files[tests / "BUILD"] = templates.TESTS_BUILD

    if config.lm:
        core, exports = templates.CORE_LM, ["complete", "load"]
    elif config.torch:
        core, exports = templates.CORE_TORCH, ["Model", "make_data", "train"]
    else:
        core, exports = templates.CORE_PLAIN, ["Model", "fit", "make_data"]
    files[source / "core.py"] = core
    files[source / "__init__.py"] = templates.INIT.substitute(
        values, exports=", ".join(exports), all=", ".join(f'"{name}"' for name in exports)
    )

    if service:
        files[source / "cli.py"] = _serve(config, values)
        if config.lm:
            app = templates.APP_LM.substitute(values)
        elif config.torch:
            app = templates.APP_PREDICT.substitute(
                values,
                core_imports="Model, make_data, train",
                default_model=templates.TORCH_DEFAULT_MODEL,
            )
        else:
            app = templates.APP_PREDICT.substitute(
                values,
                core_imports="Model, fit, make_data",
                default_model=templates.PLAIN_DEFAULT_MODEL,
            )
        files[source / "app.py"] = app
        files[tests / f"test_{config.package}_app.py"] = _service_test(config, values)
    else:
        cli = (
            templates.CLI_LM
            if config.lm
            else templates.CLI_TORCH if config.torch else templates.CLI_PLAIN
        )
        files[source / "cli.py"] = cli.substitute(values)
        test = (
            templates.TEST_PROJECT_LM
            if config.lm
            else templates.TEST_PROJECT_TORCH if config.torch else templates.TEST_PROJECT_PLAIN
        )
        files[tests / f"test_{config.package}_cli.py"] = test.substitute(values)

    files[directory / "README.md"] = _readme(config, values)
    files[registry.REQUIREMENTS_DIR / f"{config.name}.txt"] = _requirements(config, values)

    capabilities = ("torch", "lm") if config.lm else ("torch",) if config.torch else ()
    edits = {
        registry.PANTS_TOML: registry.add_resolve_to_pants_toml(
            (root / registry.PANTS_TOML).read_text(encoding="utf-8"), config.name
        ),
        registry.MACROS: registry.add_resolve_to_macros(
            (root / registry.MACROS).read_text(encoding="utf-8"), config.name, capabilities
        ),
        registry.PYPROJECT: registry.add_first_party_package(
            (root / registry.PYPROJECT).read_text(encoding="utf-8"), config.package
        ),
    }
    return Plan(new_files=files, edits=edits, project_dir=directory)


def _serve(config: NewProjectConfig, values: dict[str, str]) -> str:
    if config.lm:
        imports = "\nfrom lm import ModelLoadError"
        imports += (
            f"\nfrom {config.package}.app import create_app\nfrom {config.package}.core import load"
        )
        fields = (
            '\n    model: str | None = None\n    """save_pretrained directory, lm preset or Hub id'
            ' (default: runs/lm-tiny, else tiny)"""\n    seed: int = 0'
        )
        create_app = "create_app(load(config.model, config.seed))"
        user_errors = ", user_errors=(ModelLoadError,)"
    else:
        imports = f"\nfrom {config.package}.app import create_app"
        fields, create_app, user_errors = "", "create_app()", ""
    return templates.SERVE.substitute(
        values,
        serve_imports=imports,
        serve_fields=fields,
        create_app=create_app,
        user_errors=user_errors,
    )


def _service_test(config: NewProjectConfig, values: dict[str, str]) -> str:
    package = config.package
    if config.lm:
        imports = f"\nfrom {package}.app import create_app\nfrom {package}.cli import main\n"
        imports += f"from {package}.core import load\n"
        app, body = 'create_app(load("tiny", seed=0))', templates.TEST_SERVICE_LM
    else:
        imports = f"\nfrom {package}.app import create_app\nfrom {package}.cli import main\n"
        app, body = "create_app()", templates.TEST_SERVICE_PREDICT
    return templates.TEST_SERVICE.substitute(
        values, test_imports=imports, test_app=app, test_body=body
    )


def _requirements(config: NewProjectConfig, values: dict[str, str]) -> str:
    parts = [templates.REQUIREMENTS_HEADER.substitute(values)]
    if config.uses_torch:
        parts.append(templates.REQUIREMENTS_TORCH)
    if config.lm:
        parts.append(templates.REQUIREMENTS_LM)
    parts.append(templates.REQUIREMENTS_BASE)
    if config.kind == "service":
        parts.append(templates.REQUIREMENTS_SERVICE)
    parts.append(templates.REQUIREMENTS_TAIL)
    return "".join(parts)


def _readme(config: NewProjectConfig, values: dict[str, str]) -> str:
    flags = [config.name]
    if config.kind == "service":
        flags.append("--kind service")
    flags += [flag for flag, on in (("--torch", config.torch), ("--lm", config.lm)) if on]
    flags += ["--image"] if config.image else []
    target = f"{config.location}/{config.name}:{config.name}"
    if config.kind == "service":
        commands = f"./pants run {target} -- --port 8000          # serve on 127.0.0.1:8000"
    else:
        commands = f"./pants run {target} -- --out runs/{config.name}   # writes metrics.json"
    commands += f"\n./pants run {target} -- --help                 # every option"
    package_line = ""
    if config.image:
        package_line = (
            f"\nGIT_COMMIT=$$(git rev-parse --short HEAD) ./pants package {config.location}/"
            f"{config.name}:{config.name}-image"
        )
    model_note = ""
    if config.lm:
        model_note = (
            "\nThe `tiny` preset has random weights, so its completions are noise until you point "
            "`--model` at a trained model\n(e.g. `./pants run libs/lm:pretrain -- --out "
            "runs/lm-tiny`).\n"
        )
    return templates.README.substitute(
        values,
        args=" ".join(flags),
        commands=commands,
        package_line=package_line.replace("$$", "$"),
        model_note=model_note,
    )


class Transaction:
    """Writes files and remembers how to undo each write."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.created: list[Path] = []
        self.created_dirs: list[Path] = []
        self.originals: dict[Path, bytes] = {}

    def write(self, relative: Path, text: str) -> None:
        path = self.root / relative
        if path.exists() and path not in self.originals and path not in self.created:
            self.originals[path] = path.read_bytes()
        elif not path.exists():
            missing = [parent for parent in reversed(path.parents) if not parent.exists()]
            self.created_dirs.extend(missing)
            self.created.append(path)
        with atomic_output(path) as temporary:
            temporary.write_text(text, encoding="utf-8")

    def track(self, relative: Path) -> None:
        """A file another program is about to create (the lockfile)."""
        path = self.root / relative
        if path.exists():
            self.originals.setdefault(path, path.read_bytes())
        else:
            self.created.append(path)

    def rollback(self) -> None:
        for path, content in self.originals.items():
            with atomic_output(path) as temporary:
                temporary.write_bytes(content)
        for path in reversed(self.created):
            path.unlink(missing_ok=True)
        for directory in sorted(self.created_dirs, key=lambda p: len(p.parts), reverse=True):
            for leftover in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                # Only what a tool made inside our own new directories (e.g. __pycache__).
                if leftover.is_dir():
                    leftover.rmdir()
                else:
                    leftover.unlink()
            if directory.exists():
                directory.rmdir()


def _pants(config: NewProjectConfig, root: Path, *arguments: str) -> None:
    command = [*config.pants, *arguments]
    print(f"new-project: {' '.join(command)}", flush=True)
    # This command usually runs inside `./pants run`, which holds pantsd: run beside it.
    environment = {**os.environ, "PANTS_CONCURRENT": "True"}
    try:
        completed = subprocess.run(command, cwd=root, env=environment, check=False)
    except OSError as error:
        raise ScaffoldError(f"could not run {command[0]}: {error}") from error
    if completed.returncode != 0:
        raise ScaffoldError(f"`{' '.join(command)}` failed with exit code {completed.returncode}")


def run(config: NewProjectConfig) -> Path:
    """Make the project; returns its directory (relative to the root).

    Raises :class:`ScaffoldError` with nothing written when the name is taken, and after undoing
    every change when a step fails.
    """
    root = (config.root or find_root(Path.cwd())).resolve()
    check_available(config, root)
    steps = plan(config, root)
    transaction = Transaction(root)
    try:
        for relative, text in steps.new_files.items():
            transaction.write(relative, text)
        for relative, text in steps.edits.items():
            transaction.write(relative, text)
        print(f"new-project: wrote {steps.project_dir}/ and registered the resolve {config.name!r}")
        if config.lock:
            transaction.track(registry.REQUIREMENTS_DIR / f"{config.name}.lock")
            # Then black/isort/docformatter and BUILD formatting exactly as the repository's lint
            # wants. One Pants run for both goals: a run beside `./pants run` has no pantsd, so
            # each builds the repository's graph from scratch (about 50 s with CI's image builds
            # beside it).
            _pants(
                config,
                root,
                "generate-lockfiles",
                f"--resolve={config.name}",
                "fmt",
                "update-build-files",
                f"{steps.project_dir}::",
            )
    except BaseException as error:
        transaction.rollback()
        if isinstance(error, ScaffoldError):
            raise ScaffoldError(f"{error}; every file it wrote or edited was restored") from error
        raise
    print(_next_steps(config, steps.project_dir))
    return steps.project_dir


def _next_steps(config: NewProjectConfig, directory: Path) -> str:
    lines = [
        f"new-project: made {directory}/ (resolve {config.name!r}, "
        f"package {config.package!r}). Next:",
        f"  ./pants test {directory}::",
        f"  ./pants run {directory}:{config.name} -- --help",
    ]
    if config.image:
        lines.append(f"  ./pants package {directory}:{config.name}-image")
    if not config.lock:
        lines.append(f"  ./pants generate-lockfiles --resolve={config.name}   (skipped: --no-lock)")
    return "\n".join(lines)


main = make_main(
    Command(NewProjectConfig, run),
    prog="new-project",
    description=__doc__,
    user_errors=(ScaffoldError, registry.RegistryError),
)

__all__ = ["ConfigError", "NewProjectConfig", "ScaffoldError", "main", "plan", "run"]
