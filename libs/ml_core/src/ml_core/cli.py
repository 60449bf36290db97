"""One shape for every command line in the repository.

An entry point is three things:

1. a frozen, typed config dataclass whose fields are the options, each
   documented by a docstring under the field (or ``option(help=...)``);
2. a ``run(config)`` function usable from Python, which writes its outputs
   and returns a result;
3. a ``main()`` generated here: ``main = make_main(Command(Config, run), prog="train")``.

The generated ``main`` turns each field into a flag (``learning_rate`` ->
``--learning-rate``; booleans get ``--x/--no-x``; ``Literal`` types get
choices; ``tuple[T, ...]`` takes several values; ``X | None`` defaults to
None), optionally reads defaults from environment variables
(``env_prefix``), names the flag in every validation error, and maps
outcomes to exit codes: 0 ok, 1 a check or alert failed
(:class:`CheckFailed`), 2 a usage error (bad flag or value, invalid
config, or one of the ``user_errors`` a command declares, such as a
missing input file).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import enum
import inspect
import json
import math
import os
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

from ml_core.threads import configure_threads

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

ConfigT = TypeVar("ConfigT")


class Main(Protocol):
    """A generated ``main``: parse ``argv`` (default ``sys.argv[1:]``), run, return the exit
    code."""

    def __call__(self, argv: Sequence[str] | None = None) -> int: ...


class CheckFailed(Exception):
    """``run`` finished and wrote its outputs, but a check it was asked to make failed (a missed
    benchmark target, a fired alert): exit code 1."""


class ConfigError(ValueError):
    """An invalid config value; ``field`` names the dataclass field, so the command line can name
    the flag."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str | None = None,
    flag: str | None = None,
    cli: bool = True,
    default_factory: Callable[[], Any] | None = None,
    secret: bool = False,
) -> Any:
    """A dataclass field with command-line metadata.

    ``flag`` replaces the flag name derived from the field name; ``cli=False`` keeps a field out of
    the command line (set from Python only); ``secret=True`` (an API key) keeps a value taken from
    the environment out of ``--help``.
    """
    metadata = {"help": help, "flag": flag, "cli": cli, "secret": secret}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def positional(default: Any = dataclasses.MISSING, *, help: str | None = None) -> Any:
    """A dataclass field given as a positional argument, not a flag."""
    return dataclasses.field(default=default, metadata={"help": help, "positional": True})


# --- validation that names the field ------------------------------------------------------


def require(condition: bool, field: str, message: str) -> None:
    """Raise :class:`ConfigError` for ``field`` unless ``condition``."""
    if not condition:
        raise ConfigError(field, message)


def require_positive(config: Any, *fields: str) -> None:
    """Each named numeric field is a finite number above zero."""
    for name in fields:
        value = getattr(config, name)
        if value is None:
            continue
        require(_finite(value) and value > 0, name, f"must be positive, got {value!r}")


def require_non_negative(config: Any, *fields: str) -> None:
    """Each named numeric field is a finite number of at least zero."""
    for name in fields:
        value = getattr(config, name)
        if value is None:
            continue
        require(_finite(value) and value >= 0, name, f"must be zero or more, got {value!r}")


def require_fraction(config: Any, *fields: str, allow_zero: bool = False) -> None:
    """Each named field is in (0, 1], or [0, 1] with ``allow_zero``."""
    for name in fields:
        value = getattr(config, name)
        if value is None:
            continue
        low_ok = value >= 0 if allow_zero else value > 0
        interval = "[0, 1]" if allow_zero else "(0, 1]"
        require(
            _finite(value) and low_ok and value <= 1, name, f"must be in {interval}, got {value!r}"
        )


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- configs as JSON --------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """``value`` with paths as strings, tuples as lists and dataclasses as dicts, ready for
    ``json.dumps``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(item) for item in value]
    return value


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a JSON-ready dict (recorded beside every run's metrics)."""
    result = jsonable(config)
    assert isinstance(result, dict), f"{config!r} is not a dataclass instance"
    return result


# --- the parser -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Command(Generic[ConfigT]):
    """A config dataclass and the function that runs it."""

    config: type[ConfigT]
    run: Callable[[ConfigT], Any]
    help: str | None = None


@dataclasses.dataclass(frozen=True)
class _Option:
    field: dataclasses.Field[Any]
    dest: str
    flag: str | None  # None for a positional
    kind: Any
    converter: Callable[[str], Any]
    many: bool
    choices: tuple[Any, ...] | None
    env_var: str | None


def field_docs(cls: type[Any]) -> dict[str, str]:
    """The docstring under each field of a dataclass, read from its source (base classes first, so a
    subclass can override)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body
        if not body or not isinstance(body[0], ast.ClassDef):
            continue
        statements = body[0].body
        for current, following in zip(statements, statements[1:]):
            if (
                isinstance(current, ast.AnnAssign)
                and isinstance(current.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[current.target.id] = " ".join(following.value.value.split())
    return docs


def _strip_optional(hint: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        arguments = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(arguments) == 1 and len(typing.get_args(hint)) == 2:
            return arguments[0], True
    return hint, False


def _converter(kind: Any) -> tuple[Callable[[str], Any], tuple[Any, ...] | None]:
    """How to turn one command-line word into a value of ``kind``, and the allowed values if there
    is a fixed set."""
    if typing.get_origin(kind) is Literal:
        values = typing.get_args(kind)
        value_type = type(values[0])
        return value_type, values
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        members = tuple(kind)

        def to_member(text: str) -> Any:
            for member in members:
                if text in (member.name, str(member.value)):
                    return member
            raise ValueError(text)

        to_member.__name__ = kind.__name__
        return to_member, members
    if kind is float:
        return _finite_float, None
    if kind in (int, str, Path):
        return kind, None
    raise TypeError(f"ml_core.cli cannot make a flag of type {kind!r}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


_finite_float.__name__ = "float"


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


_boolean.__name__ = "boolean"


def _options(cls: type[Any], env_prefix: str | None) -> list[_Option]:
    if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    result: list[_Option] = []
    for field in dataclasses.fields(cls):
        if not field.init or not field.metadata.get("cli", True):
            continue
        kind, _ = _strip_optional(hints[field.name])
        many = typing.get_origin(kind) in (tuple, list)
        if many:
            arguments = [arg for arg in typing.get_args(kind) if arg is not Ellipsis]
            kind = arguments[0] if arguments else str
        if kind is bool and not many:
            converter: Callable[[str], Any] = _boolean
            choices = None
        else:
            converter, choices = _converter(kind)
        positional_field = bool(field.metadata.get("positional"))
        flag = (
            None if positional_field else field.metadata.get("flag") or field.name.replace("_", "-")
        )
        env_var = None
        if env_prefix is not None and not positional_field:
            env_var = env_prefix + field.name.upper()
        result.append(
            _Option(
                field, field.name, flag and "--" + flag, kind, converter, many, choices, env_var
            )
        )
    return result


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def _show(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, (tuple, list)):
        return " ".join(_show(item) for item in value) or "(none)"
    return str(value)


class _Repeatable(argparse.Action):
    """``--x a b --x c`` gives ``(a, b, c)``: the first use replaces the default, later ones add to
    it, so no value is dropped silently."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        seen: set[str] = getattr(namespace, "_repeatable_seen", set())
        current = list(getattr(namespace, self.dest)) if self.dest in seen else []
        setattr(namespace, self.dest, current + list(values))
        seen.add(self.dest)
        setattr(namespace, "_repeatable_seen", seen)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that knows its config class, for error messages that name a flag."""

    config_cls: type[Any]
    options: list[_Option]


def build_parser(
    cls: type[Any],
    *,
    prog: str,
    description: str | None = None,
    env_prefix: str | None = None,
    env: Mapping[str, str] | None = None,
    usage: str | None = None,
) -> argparse.ArgumentParser:
    """An argparse parser with one argument per field of ``cls``."""
    environment = os.environ if env is None else env
    parser = _Parser(
        prog=prog,
        usage=usage,
        description=description or inspect.getdoc(cls),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.config_cls = cls
    parser.options = _options(cls, env_prefix)
    docs = field_docs(cls)
    for opt in parser.options:
        default = _default(opt.field)
        help_text = opt.field.metadata.get("help") or docs.get(opt.field.name) or ""
        if opt.env_var and opt.env_var in environment:
            default = _from_env(parser, opt, environment[opt.env_var])
        extras = []
        if opt.choices is not None:
            extras.append("one of: " + ", ".join(_show(choice) for choice in opt.choices))
        if opt.field.metadata.get("secret") and opt.env_var and opt.env_var in environment:
            extras.append("default: set by the environment, not shown")
        elif default is not dataclasses.MISSING and opt.kind is not bool:
            extras.append(f"default: {_show(default)}")
        if opt.env_var:
            extras.append(f"env: {opt.env_var}")
        full_help = (help_text + (" (" + "; ".join(extras) + ")" if extras else "")).replace(
            "%", "%%"
        )
        keywords: dict[str, Any] = {"help": full_help}
        if opt.choices is not None:
            keywords["choices"] = opt.choices
        if opt.flag is None:
            keywords["type"] = opt.converter
            keywords["metavar"] = opt.field.name.upper()
            if opt.many:
                keywords["nargs"] = "*" if default is not dataclasses.MISSING else "+"
            elif default is not dataclasses.MISSING:
                keywords["nargs"] = "?"
            if default is not dataclasses.MISSING:
                keywords["default"] = default
            parser.add_argument(opt.dest, **keywords)
            continue
        keywords["dest"] = opt.dest
        if opt.kind is bool and not opt.many:
            keywords["action"] = argparse.BooleanOptionalAction
        else:
            keywords["type"] = opt.converter
            keywords["metavar"] = (
                "{" + ",".join(_show(c) for c in opt.choices) + "}"
                if opt.choices is not None
                else opt.field.name.upper()
            )
            if opt.many:
                keywords["nargs"] = "*"
                keywords["action"] = _Repeatable
        if default is dataclasses.MISSING:
            keywords["required"] = True
        else:
            keywords["default"] = default
        parser.add_argument(opt.flag, **keywords)
    return parser


def _from_env(parser: argparse.ArgumentParser, opt: _Option, text: str) -> Any:
    try:
        values = [opt.converter(part) for part in text.split()] if opt.many else None
        value = tuple(values) if values is not None else opt.converter(text)
    except (TypeError, ValueError):
        parser.error(f"environment variable {opt.env_var}: invalid value {text!r}")
    if opt.choices is not None and value not in opt.choices and not opt.many:
        parser.error(
            f"environment variable {opt.env_var}: {text!r} is not one of "
            + ", ".join(_show(choice) for choice in opt.choices)
        )
    return value


def config_from_namespace(parser: argparse.ArgumentParser, namespace: argparse.Namespace) -> Any:
    """Build the parser's config from parsed arguments; an invalid value exits with code 2 and a
    message naming its flag."""
    assert isinstance(parser, _Parser), "use ml_core.cli.build_parser"
    values = {}
    for opt in parser.options:
        value = getattr(namespace, opt.dest)
        if opt.many and isinstance(value, list):
            value = tuple(value)
        values[opt.dest] = value
    try:
        return parser.config_cls(**values)
    except ConfigError as error:
        parser.error(f"{_flag_name(parser, error.field)}: {error.message}")
    except (TypeError, ValueError) as error:
        parser.error(str(error))


def _flag_name(parser: argparse.ArgumentParser, field: str) -> str:
    for opt in parser.options if isinstance(parser, _Parser) else ():
        if opt.dest == field:
            return opt.flag or opt.field.name.upper()
    return "--" + field.replace("_", "-")


def parse_config(
    cls: type[ConfigT],
    argv: Sequence[str] | None = None,
    *,
    prog: str,
    env_prefix: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ConfigT:
    """Parse ``argv`` into a ``cls`` (exits 2 on a usage error)."""
    parser = build_parser(cls, prog=prog, env_prefix=env_prefix, env=env)
    namespace = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    config: ConfigT = config_from_namespace(parser, namespace)
    return config


def make_main(
    commands: Command[Any] | Mapping[str, Command[Any]],
    *,
    prog: str,
    description: str | None = None,
    default: str | None = None,
    env_prefix: str | None = None,
    user_errors: tuple[type[BaseException], ...] = (),
    show: Callable[[Any], str | None] | None = None,
) -> Main:
    """The ``main(argv=None) -> exit code`` of one command or of several sub- commands.

    With a mapping, the first argument picks the sub-command; ``default`` names the one that runs
    when the first argument is not a sub-command. ``user_errors`` are exception types that mean bad
    input (a missing file, an unloadable model): their message is printed without a traceback and
    the exit code is 2. ``show`` turns the result into the line(s) printed at the end (nothing when
    it returns None).
    """
    table: Mapping[str, Command[Any]] = (
        {prog: commands} if isinstance(commands, Command) else commands
    )
    single = isinstance(commands, Command)
    if default is not None and default not in table:
        raise ValueError(f"default sub-command {default!r} is not one of {sorted(table)}")

    def overview() -> str:
        lines = [description or ""] if description else []
        width = max(len(name) for name in table)
        lines.append("sub-commands:")
        for name, command in table.items():
            summary = command.help or (inspect.getdoc(command.config) or "").split("\n")[0]
            lines.append(f"  {name.ljust(width)}  {summary}")
        lines.append(f"`{prog} SUB-COMMAND --help` lists a sub-command's options.")
        return "\n".join(lines)

    def main(argv: Sequence[str] | None = None) -> int:
        arguments = list(sys.argv[1:] if argv is None else argv)
        if single:
            name, rest = prog, arguments
        elif arguments and arguments[0] in table:
            name, rest = arguments[0], arguments[1:]
        elif default is not None and not (arguments and arguments[0] in ("-h", "--help")):
            name, rest = default, arguments
        else:
            if arguments and arguments[0] in ("-h", "--help"):
                print(f"usage: {prog} SUB-COMMAND [options]\n\n{overview()}")
                return EXIT_OK
            got = f"unknown sub-command {arguments[0]!r}" if arguments else "no sub-command"
            print(f"usage: {prog} SUB-COMMAND [options]", file=sys.stderr)
            print(f"{prog}: error: {got}; choose one of: {', '.join(table)}", file=sys.stderr)
            return EXIT_USAGE
        command = table[name]
        command_description = description if single else command.help
        if not single and default is not None and name == default:
            command_description = overview()
        try:
            # Building the parser reads environment defaults, which can be invalid too.
            parser = build_parser(
                command.config,
                prog=prog if single or name == default else f"{prog} {name}",
                description=command_description or inspect.getdoc(command.config),
                env_prefix=env_prefix,
            )
            own_threads_flag = not any(
                opt.dest == "threads" for opt in getattr(parser, "options", ())
            )
            if own_threads_flag:
                parser.add_argument(
                    "--threads",
                    type=int,
                    default=None,
                    metavar="N",
                    help="compute threads for torch and BLAS (default: $ML_THREADS, else "
                    "$OMP_NUM_THREADS, else half the CPUs this process may use)",
                )
            namespace = parser.parse_args(rest)
            config = config_from_namespace(parser, namespace)
            configure_threads(namespace.threads if own_threads_flag else None)
        except SystemExit as exit_:
            return int(exit_.code) if isinstance(exit_.code, int) else EXIT_USAGE
        except ValueError as error:  # an unusable --threads, $ML_THREADS or $OMP_NUM_THREADS
            print(f"{parser.prog}: error: {error}", file=sys.stderr)
            return EXIT_USAGE
        try:
            result = command.run(config)
        except CheckFailed as failure:
            print(f"{parser.prog}: check failed: {failure}", file=sys.stderr)
            return EXIT_FAILED
        except ConfigError as error:  # a value found unusable only at run time (a device)
            flag = _flag_name(parser, error.field)
            print(f"{parser.prog}: error: {flag}: {error.message}", file=sys.stderr)
            return EXIT_USAGE
        except user_errors as error:
            print(f"{parser.prog}: error: {error}", file=sys.stderr)
            return EXIT_USAGE
        if show is not None:
            text = show(result)
            if text:
                print(text)
        return EXIT_OK

    # Tools that print or import `module:main` (entry points, subprocess tests) see the caller's.
    main.__module__ = sys._getframe(1).f_globals.get("__name__", __name__)
    return main


def show_json(result: Any) -> str | None:
    """A ``show`` for :func:`make_main`: the result as indented JSON."""
    return None if result is None else json.dumps(jsonable(result), indent=2, sort_keys=True)
