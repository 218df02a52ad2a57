"""What an image runs, read from its Dockerfile, for the local Batch executor.

Batch runs a container from its image's config: ENTRYPOINT followed by CMD (the job's
``command`` replaces CMD), in WORKDIR, with the image's ENV under the job's environment. With
no Docker engine here, ``read`` takes those from the Dockerfile of the final stage (or the
``target`` stage), and the files the stage COPYs from the build context, so that
``LocalRuntime.push_image`` can stage them where the image has them.

A small parser, honest about its limits: what it cannot interpret it refuses with
``UnsupportedDockerfile`` (ONBUILD, heredocs, ADD, unknown COPY flags, a non-default escape
character), never guessing. What RUN builds is not built here (the host's packages and the
context's own ``.venv`` stand in for it), and so COPY --from another stage or image stages no
files. LABEL, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK and MAINTAINER do not change what runs.
The context's ``.dockerignore`` is read (patterns with ``*``, ``?``, ``**`` and ``!``
exceptions; not the ``<Dockerfile>.dockerignore`` beside a Dockerfile).
"""

from __future__ import annotations

import copy
import glob
import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

DEFAULT_SHELL = ["/bin/sh", "-c"]
# ${NAME}, ${NAME:-word}, ${NAME:+word} and $NAME, as Dockerfile substitution knows them.
_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<op>[-+])(?P<word>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_HEREDOC = re.compile(r"<<-?\s*[\"']?[A-Za-z_]")
_IGNORED = {"RUN", "LABEL", "EXPOSE", "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "MAINTAINER"}
_COPY_FLAGS_IGNORED = ("--chown=", "--chmod=", "--link")  # ownership and layering: not what runs


class UnsupportedDockerfile(ValueError):
    """A Dockerfile this reader will not interpret; the message says which line and why."""


@dataclass(frozen=True)
class Copy:
    """A file of the build context, and where the image has it (absolute)."""

    source: Path
    destination: str


@dataclass
class Stage:
    name: str | None
    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    cmd_set: bool = False  # in this stage: an ENTRYPOINT keeps only a CMD set here (as Docker)
    user: str | None = None
    shell: list[str] = field(default_factory=lambda: list(DEFAULT_SHELL))
    copies: list[Copy] = field(default_factory=list)


@dataclass(frozen=True)
class ImageConfig:
    """What Batch would run from the image: ``entrypoint + (command or cmd)`` in ``workdir``
    with ``env`` (values may still name the base image's variables, e.g. ``${PATH}``)."""

    entrypoint: list[str]
    cmd: list[str]
    workdir: str
    env: dict[str, str]
    user: str | None
    copies: list[Copy]


def substitute(text: str, known: dict[str, str], keep_unknown: bool = True) -> str:
    """Dockerfile variable substitution. Reading the Dockerfile, a variable not known there (the
    base image's, such as PATH) is left as written, for the runtime to resolve against the base
    image's environment (``keep_unknown=False``: unset, as Docker has it)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        if name not in known and keep_unknown:
            return match.group(0)
        value = known.get(name, "")
        if match.group("op") == "-":
            return value or match.group("word")
        if match.group("op") == "+":
            return match.group("word") if value else ""
        return value

    return _VARIABLE.sub(replace, text)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, instruction) with continuations joined and comment lines dropped."""
    lines: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#"):
            directive = re.match(r"#\s*escape\s*=\s*(\S+)", stripped)
            if directive and not lines and not pending and directive.group(1) != "\\":
                raise UnsupportedDockerfile(f"line {number}: only the default escape character (\\) is supported")
            continue  # a comment, also inside a continuation (Docker drops those too)
        if not stripped and not pending:
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        lines.append((start, " ".join(p for p in pending if p)))
        pending = []
    if pending:
        lines.append((start, " ".join(pending)))
    return lines


def _command(value: str, shell: list[str], where: str) -> list[str]:
    """Exec form (a JSON array of strings) as it is; shell form through the stage's SHELL."""
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
            return list(parsed)
        # Docker, too, runs a malformed exec form as a shell command.
    return [*shell, value] if value else []


def _assignments(value: str, where: str) -> list[tuple[str, str]]:
    """ENV/ARG's ``KEY=VALUE ...`` (quoted as the shell quotes) or the legacy ``KEY VALUE``."""
    try:
        words = shlex.split(value)
    except ValueError as error:
        raise UnsupportedDockerfile(f"{where}: {error}") from error
    if not words:
        raise UnsupportedDockerfile(f"{where}: nothing to set")
    if "=" not in words[0]:
        key, _, rest = value.partition(" ")
        return [(key, rest.strip())]
    pairs = []
    for word in words:
        key, eq, val = word.partition("=")
        if not eq:
            raise UnsupportedDockerfile(f"{where}: {word!r} is not KEY=VALUE")
        pairs.append((key, val))
    return pairs


def dockerignore(context: Path) -> Callable[[str], bool]:
    """Whether the context's .dockerignore leaves a path (relative, POSIX) out of the context:
    the last pattern matching it or a directory above it decides; ``!`` lets it back in."""
    rules: list[tuple[re.Pattern[str], bool]] = []
    path = context / ".dockerignore"
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pattern = PurePosixPath("/" + line.removeprefix("!").strip()).as_posix().strip("/")
        regex = ""
        for part in re.split(r"(\*\*/?|\*|\?)", pattern):
            if part.startswith("**"):
                regex += "(?:.*/)?" if part.endswith("/") else ".*"
            else:
                regex += {"*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
        rules.append((re.compile(regex + r"\Z"), keep))

    def ignored(relative: str) -> bool:
        parts = relative.split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        result = False
        for regex, keep in rules:
            if any(regex.match(c) for c in candidates):
                result = not keep
        return result

    return ignored


def _copy(stage: Stage, value: str, context: Path, where: str, ignored: Callable[[str], bool]) -> None:
    words = json.loads(value) if value.startswith("[") else shlex.split(value)
    from_stage = False
    while words and words[0].startswith("--"):
        flag = words.pop(0)
        if flag.startswith("--from="):
            from_stage = True
        elif not flag.startswith(_COPY_FLAGS_IGNORED):
            raise UnsupportedDockerfile(f"{where}: COPY {flag} is not supported")
    if len(words) < 2:
        raise UnsupportedDockerfile(f"{where}: COPY needs a source and a destination")
    if from_stage:
        return  # what another stage built (by RUN) is not built here: see the module's docstring
    known = stage.args | stage.env
    *sources, destination = (substitute(w, known) for w in words)
    target = str(PurePosixPath(stage.workdir) / destination)  # an absolute destination stays itself
    into_directory = destination.endswith("/") or len(sources) > 1
    root = context.resolve()
    for source in sources:
        matches = sorted(glob.glob(str(root / source))) if glob.has_magic(source) else [str(root / source)]
        for match in matches:
            path = Path(match).resolve()
            if not path.is_relative_to(root):
                raise UnsupportedDockerfile(f"{where}: {source} is outside the build context")
            if not path.exists():
                raise UnsupportedDockerfile(f"{where}: {source} is not in the build context {context}")
            relative = path.relative_to(root).as_posix()
            if ignored(relative):
                raise UnsupportedDockerfile(f"{where}: {source} is not in the build context (.dockerignore)")
            # A directory's contents go into the destination; a file goes into it if it is one.
            if path.is_dir():
                for file in sorted(f for f in path.rglob("*") if f.is_file()):
                    if not ignored(file.relative_to(root).as_posix()):
                        stage.copies.append(Copy(file, f"{target}/{file.relative_to(path).as_posix()}"))
            elif into_directory or len(matches) > 1:
                stage.copies.append(Copy(path, str(PurePosixPath(target) / path.name)))
            else:
                stage.copies.append(Copy(path, target))


def read(
    context: Path, dockerfile: str = "Dockerfile", build_args: dict[str, str] | None = None, target: str | None = None
) -> ImageConfig:
    """The image's config and its files from ``context``, as ``docker build -f dockerfile
    [--target target] context`` would make them; ``dockerfile`` is relative to the context."""
    path = context / dockerfile
    if not path.is_file():
        raise UnsupportedDockerfile(f"no Dockerfile at {path}")
    build_args = build_args or {}
    ignored = dockerignore(context)
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, line in _logical_lines(path.read_text(encoding="utf-8")):
        where = f"{path.name} line {number}"
        instruction, _, value = line.partition(" ")
        instruction, value = instruction.upper(), value.strip()
        if _HEREDOC.search(value):
            raise UnsupportedDockerfile(f"{where}: heredocs are not supported")
        if instruction == "FROM":
            words = [w for w in value.split() if not w.startswith("--platform=")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            base = substitute(words[0], global_args) if words else ""
            parent = next((s for s in reversed(stages) if s.name == base), None)
            stage = copy.deepcopy(parent) if parent else Stage(name)
            stage.name, stage.args, stage.cmd_set, stage.copies = name, {}, False, list(stage.copies)
            stages.append(stage)
            continue
        if instruction == "ARG":
            declared = _assignments(value, where) if "=" in value else [(w, None) for w in value.split()]
            for key, default in declared:
                if not stages:  # before the first FROM: for FROM lines, and as stages' defaults
                    global_args[key] = build_args.get(key, default or "")
                else:
                    fallback = default if default is not None else global_args.get(key, "")
                    stages[-1].args[key] = build_args.get(key, fallback)
            continue
        if not stages:
            raise UnsupportedDockerfile(f"{where}: {instruction} before FROM")
        stage = stages[-1]
        known = stage.args | stage.env
        if instruction == "ENV":
            for key, val in _assignments(value, where):
                stage.env[key] = substitute(val, stage.args | stage.env)
        elif instruction == "WORKDIR":
            stage.workdir = str(PurePosixPath(stage.workdir) / substitute(value, known))
        elif instruction == "USER":
            stage.user = substitute(value, known)
        elif instruction == "SHELL":
            shell = _command(value, [], where)
            if not value.startswith("[") or len(shell) < 1:
                raise UnsupportedDockerfile(f"{where}: SHELL takes the exec (JSON) form")
            stage.shell = shell
        elif instruction == "CMD":
            stage.cmd, stage.cmd_set = _command(value, stage.shell, where), True
        elif instruction == "ENTRYPOINT":
            stage.entrypoint = _command(value, stage.shell, where)
            if not stage.cmd_set:
                stage.cmd = []
        elif instruction == "COPY":
            _copy(stage, value, context, where, ignored)
        elif instruction in _IGNORED:
            continue
        else:
            # ONBUILD, ADD (URLs, archives unpacked) and anything unknown: not guessed at.
            raise UnsupportedDockerfile(f"{where}: {instruction} is not supported by the local stack")
    if not stages:
        raise UnsupportedDockerfile(f"{path}: no FROM")
    final = stages[-1]
    if target is not None:
        found = [s for s in stages if s.name == target]
        if not found:
            raise UnsupportedDockerfile(f"{path}: no stage named {target}")
        final = found[0]
    return ImageConfig(final.entrypoint, final.cmd, final.workdir, dict(final.env), final.user, list(final.copies))
