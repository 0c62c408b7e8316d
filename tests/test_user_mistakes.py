"""A user's mistakes end in one line saying what is wrong and what to do, a non-zero exit, no traceback.

The CLIs run in-process through their real entry points (`main(argv)`), so the top-level error
handler is part of what is tested. Every command the code base prints as a hint must parse.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer

# Typer vendors its own click: its parser raises these, not the click package's.
from typer._click.exceptions import UsageError

import sfi_bench.cli
import sfi_data.cli
from sfi_data.testing.toy_dataset import build_toy_dataset

REPO = Path(__file__).resolve().parents[1]
WEIGHT_FREE = ["--similarity", "hsv-hist", "--flow", "dis", "--executor", "local"]


def run_main(main: Callable[[list[str]], None], args: list[str], capsys) -> tuple[int, str]:
    """Exit code and everything printed, with the terminal's line wrapping undone."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), " ".join((captured.out + captured.err).split())


def make_read_only(folder: Path) -> Callable[[], None]:
    """Make `folder` unwritable (also for root, through the immutable flag); returns the undo."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return lambda: folder.chmod(0o755)
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode:
        pytest.skip("running as root where folders cannot be made immutable")
    return lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[dict[str, Path]]:
    """A toy dataset split into test/train, a run of the `linear` model, a read-only copy, broken files."""
    root = tmp_path_factory.mktemp("mistakes")
    data = root / "D"
    build_toy_dataset(data, num_videos=3, scales=(5, 9))
    with pytest.raises(SystemExit):
        sfi_data.cli.main(["split", "--out", str(data), "--num-videos", "1", "--scales", "5,9"])
    run = root / "R"
    with pytest.raises(SystemExit):
        sfi_bench.cli.main(
            ["run", "--model", "linear", "--clips", str(data / "test.parquet"), "--out", str(run)]
        )
    moved = root / "moved"
    moved.mkdir()
    shutil.copy(data / "test.parquet", moved / "test.parquet")
    read_only = root / "read-only"
    shutil.copytree(data, read_only / "D")
    (root / "raw").mkdir()
    (root / "raw" / "notes.txt").write_text("not a video")
    (root / "broken.yaml").write_text("filter:\n  meta: {min_frames: [1, 2\n")
    (root / "wrong-type.yaml").write_text("filter:\n  meta: {min_frames: many}\n")
    (root / "inputs-not-a-list.yaml").write_text(f"out: {root / 'P'}\ninputs: 5\n")
    (root / "read-only-out.yaml").write_text(
        f"out: {read_only / 'new'}\ninputs: [{root / 'raw'}]\nfilter:\n  score: {{similarity: hsv-hist, flow: dis}}\n"
    )
    undo = make_read_only(read_only)
    undo_inner = make_read_only(read_only / "D")
    try:
        yield {"root": root, "data": data, "run": run, "moved": moved, "ro": read_only}
    finally:
        undo_inner()
        undo()


@dataclass(frozen=True)
class Mistake:
    id: str
    cli: str  # "data" or "bench"
    args: str  # shlex-split after formatting with the world's paths
    exit_code: int
    says: str  # regex over the one error line: what is wrong ... what to do


# fmt: off
MISTAKES = [
    # An output folder that cannot be written.
    Mistake("filter-read-only-out", "data", "filter {root}/raw --out {ro}/new " + " ".join(WEIGHT_FREE), 2,
            r"cannot write .*read-only.* Give an output path you can write to"),
    Mistake("run-read-only-out", "data", "run {root}/read-only-out.yaml", 2,
            r"cannot write .*read-only.* Give an output path you can write to"),
    Mistake("stats-read-only-dataset", "data", "stats --out {ro}/D", 2,
            r"cannot write .*read-only/D.* Give an output path you can write to"),
    Mistake("split-read-only-dataset", "data", "split --out {ro}/D --num-videos 1 --scales 5,9", 2,
            r"cannot write .*read-only/D.* Give an output path you can write to"),
    Mistake("bench-run-read-only-out", "bench", "run --model linear --clips {data}/test.parquet --out {ro}/R", 2,
            r"cannot write .*read-only.* Give an output path you can write to"),
    Mistake("report-read-only-out", "bench", "report {run} --out {ro}/report.html", 2,
            r"cannot write .*read-only.* Give an output path you can write to"),
    # An output folder that is missing, or missing the step before.
    Mistake("split-without-out", "data", "split", 2, r"Missing option '--out'"),
    Mistake("stats-of-nothing", "data", "stats --out {root}/nothing", 2,
            r"no videos.parquet or clips.parquet in .*nothing: run `sfi-data filter INPUT\.\.\. --out"),
    Mistake("cut-before-filter", "data", "cut --out {root}/nothing --executor local", 2,
            r"videos.parquet not found: run `sfi-data filter INPUT\.\.\. --out .*nothing` first"),
    Mistake("split-before-cut", "data", "split --out {root}/nothing", 2,
            r"clips.parquet not found: run `sfi-data cut --out .*nothing` first"),
    Mistake("score-before-run", "bench", "score {root}/nothing", 2,
            r"is not a run directory\. Make one with `sfi-bench run --model NAME --clips"),
    Mistake("leaderboard-before-score", "bench", "leaderboard {run} --csv {root}/board.csv", 2,
            r"scores_summary.parquet not found: score the run first \(`sfi-bench score"),
    # Settings files.
    Mistake("malformed-yaml-config", "data", "filter {root}/raw --out {root}/x --config {root}/broken.yaml", 2,
            r"broken.yaml: line 3 is not valid YAML"),
    Mistake("malformed-yaml-pipeline", "data", "run {root}/broken.yaml", 2, r"broken.yaml: line 3 is not valid YAML"),
    Mistake("wrong-type-yaml", "data", "filter {root}/raw --out {root}/x --config {root}/wrong-type.yaml", 2,
            r"meta.min_frames must be int, not 'many'"),
    Mistake("wrong-type-pipeline", "data", "run {root}/inputs-not-a-list.yaml", 2, r"`inputs` must be a list, not 5"),
    # Inputs.
    Mistake("missing-input-path", "data", "filter {root}/no-such.mp4 --out {root}/m " + " ".join(WEIGHT_FREE), 1,
            r"none of the 1 inputs could be read \(file_not_found; first: file not found: .*no-such.mp4\)"),
    Mistake("videos-manifest-as-clips", "bench", "run --model linear --clips {data}/videos.parquet --out {root}/R2", 2,
            r"videos.parquet is not a clip manifest: .*give DIR/test.parquet \(from `sfi-data split --out DIR`\)"),
    Mistake("json-as-clips", "bench", "run --model linear --clips {data}/split.json --out {root}/R3", 2,
            r"split.json is not a Parquet manifest: give DIR/test.parquet"),
    Mistake("test-set-moved-away", "bench", "run --model linear --clips {moved}/test.parquet --out {root}/R4", 2,
            r"none of the \d+ clip files of .*moved/test.parquet exists .* keep test.parquet in its dataset folder"),
    Mistake("no-test-set", "bench", "run --model linear --clips {root}/none.parquet --out {root}/R5", 2,
            r"none.parquet not found\. Make one with `sfi-data split --out DIR`"),
]
# fmt: on


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda m: m.id)
def test_a_mistake_ends_in_one_line(world, mistake, capsys):
    main = sfi_data.cli.main if mistake.cli == "data" else sfi_bench.cli.main
    args = shlex.split(mistake.args.format(**world))
    code, text = run_main(main, args, capsys)
    assert code == mistake.exit_code, text
    assert "Traceback" not in text and text.count("error") <= 2, text
    assert re.search(mistake.says, text), text
    # Nothing was half-written where the user could not write.
    assert not (world["ro"] / "new").exists() and not (world["ro"] / "R").exists()


def test_an_unexpected_error_keeps_its_traceback(monkeypatch, capsys):
    # Bugs are not mistakes: the handler must not hide them behind a friendly line.
    monkeypatch.setattr("sfi_data.stats.write_card", lambda *args, **kwargs: {}["no such key"])
    with pytest.raises(KeyError):
        sfi_data.cli.main(["stats", "--out", "anywhere"])


# --- every command printed as a hint parses --------------------------------------------------------

# A hint in backticks, or a bare one after "next:", "Try:" or "again:" (up to the end of the clause).
HINT = re.compile(r"`((?:sfi-data|sfi-bench) [^`]+)`|(?:next|Try|again): ((?:sfi-data|sfi-bench) [^;()`\n]+)")
PLACEHOLDER = re.compile(
    r"\{[^}]*\}|\b(?:DIR|OUT|FILE|RUNDIR|MANIFEST|CLIPS|INPUT|TEST)\b(?:\.\w+)?(?:\.\.\.)?"
)


def _strings(tree: ast.AST) -> Iterator[str]:
    """The string literals of a module that are not docstrings; f-strings with `{}` for each field."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    f_string_parts = {
        id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            yield "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings and id(node) not in f_string_parts:
                yield node.value


def printed_hints() -> set[str]:
    hints = set()
    for package in ("sfi_data", "sfi_bench", "sfi_core"):
        for path in (REPO / package).rglob("*.py"):
            for text in _strings(ast.parse(path.read_text(encoding="utf-8"))):
                hints.update(quoted or bare.strip() for quoted, bare in HINT.findall(text))
    return hints


def parse_hint(hint: str, folder: Path) -> None:
    """Parse a hint as the CLI would (arguments and required options), without running it."""
    program, *words = shlex.split(PLACEHOLDER.sub(str(folder), hint))
    main, app = (
        (sfi_data.cli, sfi_data.cli.app) if program == "sfi-data" else (sfi_bench.cli, sfi_bench.cli.app)
    )
    for module in main.COMMAND_MODULES:
        __import__(module)
    group = typer.main.get_command(app)
    name, *rest = words
    command = group.get_command(typer.Context(group), name)
    assert command is not None, f"`{hint}` names no command"
    if rest:  # a bare `sfi-data cut` names a command; one with arguments must be complete
        command.make_context(name, rest)


def test_every_printed_hint_parses(tmp_path):
    hints = printed_hints()
    assert "sfi-data split --out DIR" in hints  # the hint that once lacked --out
    for hint in sorted(hints):
        try:
            parse_hint(hint, tmp_path)
        except UsageError as error:
            pytest.fail(f"the hint `{hint}` does not parse: {error.format_message()}")


@pytest.mark.slow
def test_a_leaderboard_into_a_read_only_folder_is_one_line(world, tmp_path, capsys):
    run = tmp_path / "R"
    shutil.copytree(world["run"], run)
    assert run_main(sfi_bench.cli.main, ["score", run, "--metric", "psnr_all"], capsys)[0] == 0
    code, text = run_main(
        sfi_bench.cli.main, ["leaderboard", run, "--csv", world["ro"] / "board.csv"], capsys
    )
    assert code == 2 and "Traceback" not in text, text
    assert re.search(r"cannot write .*read-only.* Give an output path you can write to", text), text
