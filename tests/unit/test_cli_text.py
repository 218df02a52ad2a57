"""The CLI prints user text as written: no Rich markup, no terminal escape sequences.

A run's note, branch, login, status reason, log lines, dead-letter reasons and the model's metric
names are the PR author's (or the model's) text: ``[link=...]`` must not become a hyperlink,
``[/bold]`` must not crash ``modelrun show``, and ESC, CR, BEL or bidi controls must not reach
the terminal.

And the CLI's modules import nothing of the local stack (modelrun_local builds on the CLI); every
stack command takes the same four connection options, after its name.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console, RenderableType
from typer.testing import CliRunner

import modelrun_cli
from modelrun.domain.run import RunRecord
from modelrun.domain.status import RunStatus
from modelrun_cli import connect, views
from modelrun_cli.app import app
from modelrun_cli.runs import DeadLetter, short_id
from tests.records import SHA, WORKFLOW_URL, stored_record

MARKUP = [
    "[link=https://evil.example]click[/link]",
    "[/bold]",
    "[/]",
    "[bold red]loud[/bold red] [blink]x",
    "[@click=app.quit]x[/]",
    ":warning: :smile:",
    "\\[escaped] and \\",
    "[",
]
CONTROL = [
    "esc \x1b[2J\x1b[H cleared",
    "osc \x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\ end",
    "title \x1b]0;pwned\x07 bell",
    "clipboard \x1b]52;c;ZXZpbA==\x07",
    "carriage\roverwritten",
    "nul\x00 del\x7f c1\x9b31m",
    "bidi \u202eevil\u202c \u2066iso\u2069",
    "zero\u200bwidth\ufeff",
]
HOSTILE = MARKUP + CONTROL


def make_record(status: RunStatus = RunStatus.FAILED, **fields: Any) -> RunRecord:
    defaults: dict[str, Any] = {
        "run_id": "avm-pr42-feature-1a2b3c4d-9000002-1",
        "job_queue": "arn:aws:batch:us-east-1:111122223333:job-queue/modelrun-cpu",
        "pr_key": None,
        "log_url": None,
    }
    return stored_record(status, **(defaults | fields))


def hostile_record(evil: str) -> RunRecord:
    return make_record(
        RunStatus.FAILED,
        note=evil,
        head_ref=evil,
        base_ref=evil,
        triggered_by=evil,
        status_reason=evil,
        job_id=evil,
        image=evil,
        exit_code=3,
        summary={
            "metrics": {"rmse": 1.5, evil: 2.5, "huge": 10**400},
            "ratio_study": {"cod": {"value": evil, "pass": True}, evil: {"value": 1.0, "pass": False}},
        },
        report={
            "contract_error": evil,
            "baseline": {"head_sha": evil, "metrics": {"rmse": 1.0, evil: evil}},
            "report_url": f"https://evil.example/{evil}",
            "artifacts_url": evil,
        },
    )


def plain_output(*renderables: RenderableType) -> str:
    """What a terminal without colours receives: every escape sequence in it came from user text."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, color_system=None, width=200, highlight=False)
    for renderable in renderables:
        console.print(renderable)
    return out.getvalue()


def terminal_output(*renderables: RenderableType) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="truecolor", width=200, highlight=False)
    for renderable in renderables:
        console.print(renderable)
    return out.getvalue()


def assert_no_control(text: str) -> None:
    bad = [f"U+{ord(c):04X}" for c in text if (ord(c) < 0x20 and c not in "\n") or 0x7F <= ord(c) <= 0x9F]
    bad += [f"U+{ord(c):04X}" for c in text if c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b"]
    assert not bad, (bad, text)


@pytest.mark.parametrize("evil", HOSTILE)
def test_show_prints_hostile_text_literally(evil: str) -> None:
    record = hostile_record(evil)
    detail = views.run_detail(record, position=None)
    text = plain_output(detail, *views.links(record))
    assert_no_control(text)
    if evil in MARKUP:
        assert evil.split("\n")[0][:8] in text  # printed as written, not eaten as markup
    recorded = Console(record=True, width=200, force_terminal=True)
    recorded.print(detail)
    assert_no_control(recorded.export_text())
    # the only hyperlinks are the links printed under the panel, never one from the note
    assert "\x1b]8;" not in terminal_output(detail)


def test_markup_in_a_note_is_not_a_hyperlink() -> None:
    record = make_record(note="[link=https://evil.example]click me[/link] [/bold]")
    output = terminal_output(views.run_detail(record, position=None))
    assert "[link=https://evil.example]click me[/link] [/bold]" in plain_output(views.run_detail(record, None))
    assert "evil.example" in output and "\x1b]8;" not in output


@pytest.mark.parametrize("evil", HOSTILE)
def test_runs_table_prints_hostile_text_literally(evil: str) -> None:
    records = [hostile_record(evil), make_record(RunStatus.RUNNING, pr_number=None, head_ref=evil)]
    table = views.runs_table(records, {records[1].run_id: 1}, title=evil)
    text = plain_output(table)
    assert_no_control(text)
    assert_no_control(views.runs_plain(records, {}).replace("\t", " "))
    assert "\x1b]8;" not in terminal_output(table)


@pytest.mark.parametrize("evil", HOSTILE)
def test_dead_letters_print_literally(evil: str) -> None:
    letters = [
        DeadLetter(
            message_id=evil,
            body=json.dumps({"repository": "county-assessor/avm", "head_ref": evil, "head_sha": SHA}),
            attributes={"reason": {"StringValue": evil, "DataType": "String"}},
            receive_count=3,
            receipt_handle="r",
            sent_at=None,
        ),
        DeadLetter(message_id="m2", body=evil, attributes={}, receive_count=2, receipt_handle="r", sent_at=None),
        DeadLetter(
            message_id="m3",
            body=json.dumps({"detail": {"jobName": evil, "status": evil}}),
            attributes={},
            receive_count=2,
            receipt_handle="r",
            sent_at=None,
        ),
    ]
    table = views.dead_letters_table(letters, "run-requests")
    text = plain_output(table)
    assert_no_control(text)
    assert "\x1b]8;" not in terminal_output(table)


def test_our_links_stay_clickable_and_odd_urls_cannot_break_the_style() -> None:
    record = make_record(report={"report_url": "https://x.example/a b [/link] c", "artifacts_url": "s3://b/k"})
    lines = views.links(record)
    output = terminal_output(*lines)  # no crash on a URL with spaces or brackets
    assert "\x1b]8;id=" in output and WORKFLOW_URL in output
    assert "https://x.example/a b [/link] c" in plain_output(*lines)


@pytest.mark.parametrize("evil", CONTROL)
def test_log_lines_and_plain_text_lose_their_control_characters(evil: str) -> None:
    assert_no_control(views.safe(evil))
    assert_no_control(views.plain(evil).plain)


def test_colour_codes_in_log_lines_are_dropped_and_their_text_kept() -> None:
    assert views.safe("\x1b[1;31mERROR\x1b[0m: boom\tdone") == "ERROR: boom\tdone"
    assert views.safe("a\nb") == "a\nb"
    assert views.safe("\x1b]0;title\x07x") == "\ufffd]0;title\ufffdx"


def test_the_cli_imports_nothing_of_the_local_stack(tmp_path: Path) -> None:
    """modelrun_local builds on the CLI (its workflow job runs ``enqueue``): importing every CLI
    module, ``local up``'s included, in a fresh interpreter loads no module of modelrun_local (or
    of the bench, which builds on both), so the packages depend one way."""
    names = sorted(p.stem for p in Path(modelrun_cli.__file__).parent.glob("*.py") if p.stem != "__init__")
    assert {"app", "enqueue", "local"} <= set(names)
    code = "".join(f"import modelrun_cli.{name}\n" for name in names) + (
        "import sys\nprint(sorted(m for m in sys.modules if m.split('.')[0] in ('modelrun_local', 'modelrun_bench')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout


STACK_COMMANDS = [
    ["runs"],
    ["show", "x"],
    ["logs", "x"],
    ["cancel", "x"],
    ["rerun", "x"],
    ["redrive", "--yes"],
    ["doctor", "octo/avm"],
]


@pytest.mark.parametrize("command", STACK_COMMANDS, ids=lambda argv: argv[0])
def test_every_stack_command_takes_the_connection_options_after_its_name(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The options are defined once (connect.stack_options) and reach connect() as given: the
    flags after the command name, --stack from MODELRUN_STACK, and each listed in its --help."""
    seen: list[tuple[object, ...]] = []
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_test")  # doctor's, read before it connects

    def connected(*args: object) -> connect.Stack:
        seen.append(args)
        connect.fail("stop here")

    monkeypatch.setattr(connect, "connect", connected)
    runner = CliRunner()
    flags = ["--stack", "s1", "--profile", "p1", "--region", "eu-west-2", "--local"]
    given = runner.invoke(app, [*command, *flags], env={"MODELRUN_STACK": None})
    assert given.exit_code == 2 and given.stderr == "modelrun: stop here\n", given.output
    defaults = runner.invoke(app, command, env={"MODELRUN_STACK": None})
    from_env = runner.invoke(app, command, env={"MODELRUN_STACK": "from-env"})
    assert defaults.exit_code == from_env.exit_code == 2
    assert seen == [("s1", "p1", "eu-west-2", True), ("modelrun", None, None, False), ("from-env", None, None, False)]

    helped = runner.invoke(app, [command[0], "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert helped.exit_code == 0
    for option in ("--stack", "--profile", "--region", "--local", "[env var: MODELRUN_STACK]"):
        assert option in helped.stdout, (command[0], option)


def test_a_command_cannot_redefine_a_connection_option() -> None:
    def runs(choice: connect.StackChoice, region: str = "") -> None: ...

    with pytest.raises(TypeError, match="runs has its own region"):
        connect.stack_options(runs)


# A PR run of a repository whose name is as long as a run id keeps it (30 characters).
LONG_ID = "a-thirty-character-model-repo-pr1234-1a2b3c4d-12345678901-1"


@pytest.mark.parametrize("width", [80, 100, 120, 160])
def test_runs_fit_the_terminal_with_every_run_id_whole(width: int) -> None:
    records = [
        make_record(RunStatus.SUCCEEDED, pr_number=42, summary={"metrics": {"rmse": 167169.0}}),
        make_record(RunStatus.RUNNABLE, run_id=LONG_ID, pr_number=1234),
        make_record(
            RunStatus.RUNNING,
            run_id="avm-feature-x-1a2b3c4d-12345678902-1",
            pr_number=None,
            head_ref="feature/" + "x" * 40,
        ),
    ]
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, color_system=None, width=width, highlight=False)
    console.print(views.runs_table(records, {LONG_ID: 1}, title="runs", width=width))
    widest = Console(file=io.StringIO(), width=10_000).measure(views.runs_table(records, {}, "runs", width)).maximum
    lines = out.getvalue().splitlines()
    assert all(len(line.rstrip()) <= width for line in lines), lines
    for record in records:  # whole on one line, beside its status and its PR (or branch, cut)
        line = next(line for line in lines if line.startswith(short_id(record.run_id)))
        assert record.status.value in line, line
        assert (f"#{record.pr_number}" if record.pr_number else "—") in line, line
    header = lines[1].split()
    assert header[:3] == ["run", "PR", "status"]
    assert widest <= width
    assert ("started" in header) == (width >= 160), header  # every column where there is room


def test_runs_in_a_pipe_are_tab_separated_and_whole() -> None:
    records = [make_record(RunStatus.RUNNING, run_id=LONG_ID, pr_number=None, triggered_by="tab\there\n" + "x" * 60)]
    header, row = (line.split("\t") for line in views.runs_plain(records, {}).splitlines())
    fields = dict(zip(header, row, strict=True))
    assert fields["run"] == short_id(LONG_ID) and fields["author"] == "tab here " + "x" * 60
    assert fields["PR"] == "—" and fields["status"] == "RUNNING"


def test_show_compares_with_main_as_the_comment_does() -> None:
    """One format per statistic (domain.formatting: MAPE in %, R² and PRB at three decimals), the
    verdict first, and against main the change, its paired interval and what it says."""
    metrics = {"rmse": 81234.5, "mae": 50321.0, "mape": 9.8, "mdape": 7.1, "r2": 0.87321, "median_ratio": 0.99}
    study = {"prb": {"value": 0.012345, "pass": True}}
    report = {
        "status": "SUCCEEDED",
        "metrics": metrics,
        "ratio_study": study,
        "baseline": {
            "run_id": "main-1",
            "head_sha": "d" * 40,
            "metrics": metrics | {"mape": 9.5},
            "ratio_study": {"prb": {"value": 0.010, "pass": True}},
        },
        "comparison": {
            "status": "paired",
            "changes": {
                "mape": {"delta": 0.3, "low": 0.1, "high": 0.5, "verdict": "worse"},
                "prb": {"delta": 0.0023, "low": 0.0002, "high": 0.0041, "verdict": "worse"},
            },
        },
    }
    summary = {"metrics": metrics, "ratio_study": study}
    record = make_record(status=RunStatus.SUCCEEDED, summary=summary, report=report, gate={"kind": "default"})
    text = plain_output(views.run_detail(record, position=None))
    assert "Worse than main: MAPE, PRB" in text
    rows = {line.split()[1]: line for line in text.splitlines() if line.startswith("│ ") and len(line.split()) > 2}
    assert "9.80%" in rows["MAPE"] and "9.50%" in rows["MAPE"] and "+0.30 pp" in rows["MAPE"]
    assert "+0.10 to +0.50 pp" in rows["MAPE"] and "worse" in rows["MAPE"]
    assert "0.873" in rows["R²"] and "0.8732" not in rows["R²"]
    assert "0.012" in rows["PRB"] and "+0.0002 to +0.0041" in rows["PRB"]  # a bound near 0: more digits
