"""Reading what an image runs from its Dockerfile (modelrun_local.dockerfile), for the local
Batch executor: the forms Docker accepts that model images use, and refusals of the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelrun_local import dockerfile
from modelrun_local.aws_process import IMAGE_DEFAULT_PATH, LocalImage
from modelrun_local.dockerfile import Copy, UnsupportedDockerfile
from modelrun_local.stack import ROOT


def read(tmp_path: Path, text: str, **kwargs: object) -> dockerfile.ImageConfig:
    (tmp_path / "Dockerfile").write_text(text)
    return dockerfile.read(tmp_path, **kwargs)  # type: ignore[arg-type]


def test_the_sample_image_runs_python_m_avm_in_app_with_its_env() -> None:
    image = dockerfile.read(ROOT / "model_container")
    assert (image.entrypoint, image.cmd, image.workdir, image.user) == (
        [],
        ["python", "-m", "avm"],
        "/app",
        "10001:10001",
    )
    # The runtime stage's ARG default reaches ENV; the base image's PATH is left for the runtime.
    assert image.env["AVM_COMPUTE"] == "cpu" and image.env["PATH"] == "/app/.venv/bin:${PATH}"
    assert "UV_LINK_MODE" not in image.env  # the builder stage's, not the final stage's
    # Its files from the context; the .venv it copies from the builder stage is not staged.
    assert image.copies == [
        Copy(ROOT / "model_container" / "params.yaml", "/app/params.yaml"),
        Copy(ROOT / "model_container" / "data" / "PROVENANCE.md", "/app/data/PROVENANCE.md"),
        Copy(ROOT / "model_container" / "data" / "seattle_sales.csv.xz", "/app/data/seattle_sales.csv.xz"),
    ]


def test_the_condo_example_with_its_own_root_as_context() -> None:
    """As in the condo team's repository: two stages (AWS's CLI image, then rocker/r-ver), the
    .dockerignore leaving the data out; the model downloads it from S3."""
    condo = ROOT / "examples" / "condo-model"
    image = dockerfile.read(condo)
    assert (image.cmd, image.workdir, image.env, image.user) == (["Rscript", "model.R"], "/app", {}, "10001:10001")
    assert image.copies == [Copy(condo / "config.json", "/app/config.json"), Copy(condo / "model.R", "/app/model.R")]
    assert dockerfile.dockerignore(condo)("data/sales.csv.gz")


def test_exec_and_shell_forms_and_entrypoint_with_cmd(tmp_path: Path) -> None:
    image = read(tmp_path, 'FROM x\nENTRYPOINT ["/bin/run", "--flag"]\nCMD ["a", "b c"]\n')
    assert (image.entrypoint, image.cmd) == (["/bin/run", "--flag"], ["a", "b c"])
    image = read(tmp_path, "FROM x\nCMD Rscript model.R --rows 10\n")
    assert (image.entrypoint, image.cmd) == ([], ["/bin/sh", "-c", "Rscript model.R --rows 10"])
    image = read(tmp_path, 'FROM x\nSHELL ["/bin/bash", "-o", "pipefail", "-c"]\nENTRYPOINT exec r.sh\n')
    assert image.entrypoint == ["/bin/bash", "-o", "pipefail", "-c", "exec r.sh"]
    # As Docker: a malformed exec form runs as a shell command.
    assert read(tmp_path, "FROM x\nCMD [python, x]\n").cmd == ["/bin/sh", "-c", "[python, x]"]


def test_an_entrypoint_drops_the_cmd_of_the_stage_it_builds_on_but_not_its_own(tmp_path: Path) -> None:
    image = read(tmp_path, 'FROM x AS base\nCMD ["old"]\nFROM base\nENTRYPOINT ["e"]\n')
    assert (image.entrypoint, image.cmd) == (["e"], [])
    image = read(tmp_path, 'FROM x\nCMD ["kept"]\nENTRYPOINT ["e"]\n')
    assert (image.entrypoint, image.cmd) == (["e"], ["kept"])


def test_multi_stage_the_final_stage_or_the_target_and_inheritance(tmp_path: Path) -> None:
    text = (
        "ARG BASE=python:3.12\n"
        'FROM ${BASE} AS build\nWORKDIR /src\nENV A=1\nCMD ["build"]\n'
        "FROM build AS test\nENV B=2\n"
        'FROM ${BASE}\nWORKDIR /app\nCMD ["run"]\n'
    )
    final = read(tmp_path, text)
    assert (final.cmd, final.workdir, final.env) == (["run"], "/app", {})
    test = read(tmp_path, text, target="test")  # FROM an earlier stage keeps its config
    assert (test.cmd, test.workdir, test.env) == (["build"], "/src", {"A": "1", "B": "2"})
    with pytest.raises(UnsupportedDockerfile, match="no stage named nope"):
        read(tmp_path, text, target="nope")


def test_env_forms_quotes_substitution_and_arg_defaults(tmp_path: Path) -> None:
    text = (
        "ARG VERSION=1.0\nFROM x\nARG VERSION\nARG MODE=fast\n"
        'ENV A=1 B="two words" C=${MODE}-$VERSION\n'
        "ENV LEGACY value with spaces\n"
        "ENV D=${UNSET:-fallback} E=${MODE:+on} PATH=/opt/bin:$PATH\n"
        "WORKDIR /srv\nWORKDIR sub\n"
    )
    image = read(tmp_path, text)
    assert image.env == {
        "A": "1",
        "B": "two words",
        "C": "fast-1.0",
        "LEGACY": "value with spaces",
        "D": "${UNSET:-fallback}",  # not declared here: the base image's, for the runtime
        "E": "on",
        "PATH": "/opt/bin:$PATH",
    }
    assert image.workdir == "/srv/sub"
    assert read(tmp_path, text, build_args={"MODE": "slow"}).env["C"] == "slow-1.0"
    # At run time the base image's variables are Docker's defaults: PATH, not this process's.
    local = LocalImage(Path("/r"), [], ["x"], "/", image.env, "python")
    assert local.environment()["PATH"] == f"/opt/bin:{IMAGE_DEFAULT_PATH}"
    assert local.environment()["D"] == "fallback"


def test_continuations_and_comments_inside_them(tmp_path: Path) -> None:
    image = read(
        tmp_path, '# syntax=docker/dockerfile:1\nFROM x\nENV A=1 \\\n# a comment\n    B=2\nCMD ["a", \\\n  "b"]\n'
    )
    assert (image.env, image.cmd) == ({"A": "1", "B": "2"}, ["a", "b"])


def test_copy_forms(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.R").write_text("")
    (tmp_path / "a.csv").write_text("")
    (tmp_path / "b.csv").write_text("")
    text = (
        "FROM x AS build\nFROM x\nWORKDIR /app\n"
        "COPY --chown=1:1 src ./code\n"
        'COPY ["a.csv", "b.csv", "data/"]\n'
        "COPY *.csv /abs/\n"
        "COPY a.csv renamed.csv\n"
        "COPY --from=build /opt/venv /opt/venv\n"
    )
    copies = read(tmp_path, text).copies
    assert copies == [
        Copy(tmp_path / "src" / "m.R", "/app/code/m.R"),
        Copy(tmp_path / "a.csv", "/app/data/a.csv"),
        Copy(tmp_path / "b.csv", "/app/data/b.csv"),
        Copy(tmp_path / "a.csv", "/abs/a.csv"),
        Copy(tmp_path / "b.csv", "/abs/b.csv"),
        Copy(tmp_path / "a.csv", "/app/renamed.csv"),
    ]


def test_dockerignore_leaves_files_out_and_lets_exceptions_back_in(tmp_path: Path) -> None:
    for name in ("src/m.R", "src/__pycache__/m.pyc", "src/deep/x.pyc", ".venv/bin/python", "notes.md", "keep.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / ".dockerignore").write_text("# comment\n.venv\n**/__pycache__\n**/*.pyc\n*.md\n!keep.md\n")
    copies = read(tmp_path, "FROM x\nWORKDIR /app\nCOPY . .\n").copies
    assert sorted(c.destination for c in copies) == [
        "/app/.dockerignore",  # as Docker: in the context unless it leaves itself out
        "/app/Dockerfile",
        "/app/keep.md",
        "/app/src/m.R",
    ]
    with pytest.raises(UnsupportedDockerfile, match=r"notes\.md is not in the build context"):
        read(tmp_path, "FROM x\nCOPY notes.md /app/\n")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("FROM x\nONBUILD RUN make\n", "ONBUILD is not supported"),
        ("FROM x\nRUN <<EOF\necho hi\nEOF\n", "heredocs are not supported"),
        ("FROM x\nCOPY <<-'EOF' /app/x\nEOF\n", "heredocs are not supported"),
        ("FROM x\nADD https://example.com/m.tar.gz /app/\n", "ADD is not supported"),
        ("FROM x\nCOPY --parents a /app/\n", "COPY --parents is not supported"),
        ("FROM x\nCOPY missing.txt /app/\n", "missing.txt is not in the build context"),
        ("FROM x\nCOPY ../outside /app/\n", "outside the build context"),
        ("FROM x\nSHELL bash -c\n", "SHELL takes the exec"),
        ("# escape=`\nFROM x\n", "escape character"),
        ('CMD ["x"]\n', "CMD before FROM"),
        ("# nothing\n", "no FROM"),
    ],
)
def test_what_it_cannot_interpret_is_refused_with_the_reason(tmp_path: Path, text: str, why: str) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "outside").write_text("")
    (tmp_path / "ctx" / "Dockerfile").write_text(text)
    with pytest.raises(UnsupportedDockerfile, match=why):
        dockerfile.read(tmp_path / "ctx")


def test_no_dockerfile_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedDockerfile, match="no Dockerfile"):
        dockerfile.read(tmp_path)


def test_the_executor_runs_entrypoint_then_the_jobs_command_or_else_cmd() -> None:
    image = LocalImage(Path("/r"), ["/bin/tini", "--"], ["python", "-m", "avm"], "/app", {}, "/venv/bin/python")
    assert image.argv([]) == ["/bin/tini", "--", "python", "-m", "avm"]
    assert image.argv(["Rscript", "x.R"]) == ["/bin/tini", "--", "Rscript", "x.R"]
    plain = LocalImage(Path("/r"), [], ["python", "-m", "avm"], "/app", {}, "/venv/bin/python")
    assert plain.argv([]) == ["/venv/bin/python", "-m", "avm"]  # the image's interpreter
    assert plain.argv(["python3", "job.py"]) == ["/venv/bin/python", "job.py"]
