"""Mutation score of the core math modules (issue 19), with mutmut, one module at a time.

The modules and the fast tests that may kill their mutants are listed in ``pyproject.toml``
(``[tool.probforecast.mutation.modules]``: ``paths`` are mutmut ``only_mutate`` globs, ``tests``
the pytest selection). For each requested module the working tree (tracked and untracked,
not ignored files) is copied to ``.mutation/<module>/`` with that module's ``[tool.mutmut]``
settings, ``mutmut run`` mutates only those files and runs, for each mutant, the selected
``not slow`` tests that reach the mutated function. mutmut puts its mutated copy
(``mutants/src``) first on ``sys.path``, so the tests import the mutants, not the editable
install.

Each run is appended to ``docs/results/mutation/<module>.json`` (date, commit, counts, every
survivor with its diff line) and ``docs/mutation.md`` is regenerated from those files: the first
and the latest score of each module and the latest survivors. A survivor that is equivalent or
harmless is listed with its one-line reason in ``scripts/mutation_equivalent/<module>.toml`` (keyed by
module and mutant name, with the mutated line, so a reason goes stale when the code moves);
those, and survivors that only rewrote the text of a string literal (an error message; every
``{...}`` placeholder kept), are left out of the score's denominator:

    score = (killed + timeout + segfault) / (total - skipped - equivalent - message-only)

    bash scripts/mutation_score.sh nn.revin distributions     # or no argument: every module
    python scripts/mutation_score.py --report-only            # rewrite docs/mutation.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tokenize
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
SCRATCH = REPO / ".mutation"
RESULTS = REPO / "docs" / "results" / "mutation"
REPORT = REPO / "docs" / "mutation.md"
EQUIVALENT = REPO / "scripts" / "mutation_equivalent"
NOT_COPIED = ("notebooks/", "docs/", ".mutation/")


def registry() -> dict[str, dict[str, list[str]]]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return data["tool"]["probforecast"]["mutation"]["modules"]


def equivalents() -> dict[str, dict[str, dict[str, str]]]:
    """Reasons per module: ``scripts/mutation_equivalent/<module>.toml`` maps mutant name to
    ``{mutation, reason}``."""
    return {
        path.stem: tomllib.loads(path.read_text()) for path in sorted(EQUIVALENT.glob("*.toml"))
    }


def make_scratch(module: str, spec: dict[str, list[str]]) -> Path:
    """A copy of the working tree whose ``[tool.mutmut]`` targets ``module`` only."""
    scratch = SCRATCH / module
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if name.startswith(NOT_COPIED) or not (REPO / name).is_file():
            continue
        target = scratch / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    pyproject = scratch / "pyproject.toml"
    settings = (
        f"[tool.mutmut]\nonly_mutate = {json.dumps(spec['paths'])}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(spec['tests'])}\n"
    )
    text = pyproject.read_text()
    if "[tool.mutmut]\n" not in text:
        raise SystemExit("pyproject.toml has no [tool.mutmut] section")
    pyproject.write_text(text.replace("[tool.mutmut]\n", settings, 1))
    return scratch


def mutmut(scratch: Path, *args: str, log=None) -> str:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "WANDB_MODE": "offline",
        "PROBFORECAST_DATA": os.environ.get(
            "PROBFORECAST_DATA", str(REPO.parent / "shared" / "data")
        ),
    }
    exe = Path(sys.executable).with_name("mutmut")
    done = subprocess.run(
        [str(exe), *args],
        cwd=scratch,
        env=env,
        stdout=log or subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"mutmut {' '.join(args)} failed in {scratch} (exit {done.returncode})")
    return done.stdout or ""


def mutation_line(diff: str) -> str:
    """The first added line of a ``mutmut show`` diff (what the mutant wrote), stripped."""
    for line in diff.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            return line[1:].strip()
    return ""


def original_line(diff: str) -> str:
    for line in diff.splitlines():
        if line.startswith("-") and not line.startswith("---"):
            return line[1:].strip()
    return ""


def context_before(diff: str, lines: int = 4) -> list[str]:
    """The diff's unchanged lines just above the mutated one (where a message is raised)."""
    body = diff.splitlines()
    for i, line in enumerate(body):
        if line.startswith("-") and not line.startswith("---"):
            above = [x[1:].strip() for x in body[max(0, i - lines) : i] if x.startswith(" ")]
            return above
    return []


_MESSAGE_CALL = re.compile(r"^raise\b|Error\(|Warning\(|\bwarn\(|\b_fail\(|\blog(ger)?\.")


_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def in_message(survivor: dict) -> bool:
    """The mutated line raises, warns or logs, or continues such a call that is still open
    (its parentheses not yet closed on the lines above)."""
    if _MESSAGE_CALL.search(survivor["original"]):
        return True
    context = survivor.get("context", [])
    for i in range(len(context) - 1, -1, -1):
        if _MESSAGE_CALL.search(context[i]):
            opened = "".join(context[i:])
            return opened.count("(") > opened.count(")")
    return False


def message_text_only(original: str, mutation: str) -> bool:
    """True when the mutant only rewrote the text of string literals, keeping every ``{...}``
    placeholder and every token outside the strings (``classify`` also requires the line to be
    part of a raise / warning / log call: elsewhere a string can be an option value)."""
    try:
        before = list(tokenize.generate_tokens(io.StringIO(original).readline))
        after = list(tokenize.generate_tokens(io.StringIO(mutation).readline))
    except (tokenize.TokenError, SyntaxError):
        return False
    if len(before) != len(after):
        return False
    changed = False
    for a, b in zip(before, after, strict=True):
        if a.type != b.type:
            return False
        if a.string == b.string:
            continue
        if a.type != tokenize.STRING or _PLACEHOLDER.findall(a.string) != _PLACEHOLDER.findall(
            b.string
        ):
            return False
        changed = True
    return changed


def classify(survivor: dict, reasons: dict[str, dict[str, str]]) -> tuple[str, str]:
    """``(kind, verdict)``: ``equivalent`` (a reason in mutation_equivalent/<module>.toml whose mutated
    line still matches), ``message`` (only string-literal text changed), ``open`` or
    ``no tests``. The first two are left out of the score's denominator."""
    reason = reasons.get(survivor["name"], {})
    if reason and reason["mutation"].strip() == survivor["mutation"]:
        return "equivalent", f"equivalent: {reason['reason']}"
    if in_message(survivor) and message_text_only(survivor["original"], survivor["mutation"]):
        return "message", "harmless: message text only (tests match its key words)"
    if survivor["status"] == "survived":
        return "open", "**open**"
    return "no tests", "**no test reaches it**"


def score(run: dict, reasons: dict[str, dict[str, str]]) -> tuple[float, int]:
    """``(score, excluded)`` of a recorded run under the current reasons."""
    excluded = sum(classify(s, reasons)[0] in ("equivalent", "message") for s in run["survivors"])
    killed = run["killed"] + run["timeout"] + run["segfault"]
    counted = run["total"] - run["skipped"] - excluded
    return (killed / counted if counted else 1.0), excluded


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()


def carry_over_base(module: str, spec: dict[str, list[str]]) -> dict:
    """The latest recorded run of ``module``, if its killed mutants still stand: it was made on
    a clean commit and no mutated source file changed since (tests may only have been added to;
    the record lists the test files changed since). Else ``SystemExit`` saying why."""
    path = RESULTS / f"{module}.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    if not runs:
        raise SystemExit(f"{module}: no recorded run to carry over; run it in full first")
    base = runs[-1]
    commit = base["commit"].split()[0]
    if base["commit"] != commit:
        raise SystemExit(f"{module}: the latest run ({base['commit']}) had uncommitted changes")
    changed = git("diff", "--name-only", commit, "--", *spec["paths"])
    if changed:
        raise SystemExit(
            f"{module}: mutated sources changed since {commit} ({changed.split()}); run in full"
        )
    return base


def run_module(
    module: str, spec: dict[str, list[str]], children: int, survivors_only: bool = False
) -> dict:
    """One mutmut run of ``module``; with ``survivors_only`` only the latest run's survivors are
    run again and its killed mutants are carried over (``carry_over_base``)."""
    base = carry_over_base(module, spec) if survivors_only else None
    names = [s["name"] for s in base["survivors"]] if base else []
    commit = git("rev-parse", "--short", "HEAD")  # what the scratch copy is taken from
    dirty = bool(git("status", "--porcelain", "--", "src", "tests"))
    scratch = make_scratch(module, spec)
    start = time.perf_counter()
    with open(scratch / "mutmut-run.log", "w") as log:
        mutmut(scratch, "run", "--max-children", str(children), *names, log=log)
    seconds = time.perf_counter() - start
    statuses = {}
    for line in mutmut(scratch, "results", "--all", "true").splitlines():
        match = re.match(r"\s*(\S+): (.+?)\s*$", line)
        if match:
            statuses[match.group(1)] = match.group(2)
    if base is None:
        mutmut(scratch, "export-cicd-stats")
        stats = json.loads((scratch / "mutants" / "mutmut-cicd-stats.json").read_text())
    else:
        stats = carried_stats(base, {name: statuses.get(name, "not checked") for name in names})
    survivors = []
    for name, status in statuses.items():
        if status in ("survived", "no tests") and (base is None or name in names):
            diff = mutmut(scratch, "show", name)
            survivors.append(
                {
                    "name": name,
                    "status": status,
                    "original": original_line(diff),
                    "mutation": mutation_line(diff),
                    "context": context_before(diff),
                }
            )
    run = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit + (" + uncommitted" if dirty else ""),
        "seconds": round(seconds),
        "load_at_start": os.getloadavg()[0],
        **stats,
        "survivors": survivors,
    }
    if base is not None:
        base_commit = base["commit"].split()[0]
        run["carried_over_from"] = base_commit
        run["tests_changed_since"] = git("diff", "--name-only", base_commit, "--", "tests").split()
    return run


def carried_stats(base: dict, rerun: dict[str, str]) -> dict:
    """Counts of a survivors-only run: the base run's killed, timeout and segfault mutants plus
    those of the rerun survivors that the current tests kill."""
    unchecked = [name for name, status in rerun.items() if status == "not checked"]
    if unchecked:
        raise SystemExit(f"mutmut did not check {len(unchecked)} survivors, e.g. {unchecked[:3]}")
    count = lambda status: sum(s == status for s in rerun.values())  # noqa: E731
    return {
        **{k: base[k] for k in ("total", "skipped", "suspicious", "check_was_interrupted_by_user")},
        "killed": base["killed"] + count("killed"),
        "timeout": base["timeout"] + count("timeout"),
        "segfault": base["segfault"] + count("segfault"),
        "survived": count("survived"),
        "no_tests": count("no tests"),
    }


def record(module: str, run: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{module}.json"
    history = json.loads(path.read_text()) if path.exists() else {"module": module, "runs": []}
    history["runs"].append(run)
    path.write_text(json.dumps(history, indent=1, ensure_ascii=False) + "\n")


def carried_note(run: dict) -> str:
    """How a survivors-only run's killed count was obtained, for the table."""
    if "carried_over_from" not in run:
        return ""
    return f"; survivors of {run['carried_over_from']} rerun, its killed mutants carried over"


def report() -> str:
    modules = registry()
    known = equivalents()
    lines = [
        "# Mutation testing",
        "",
        "Generated by `scripts/mutation_score.py` from `docs/results/mutation/*.json`; do not edit.",
        "",
        "```",
        "bash scripts/mutation_score.sh [MODULE ...]   # mutmut per module, fast tests only",
        "```",
        "",
        "Each module is mutated alone, in a scratch copy of the tree, and each mutant is run "
        "against the module's `not slow` tests (listed in `pyproject.toml`, "
        "`[tool.probforecast.mutation.modules]`) that reach the mutated function. "
        "score = (killed + timeout + segfault) / (total - skipped - equivalent - message-only): "
        "a survivor is *equivalent* only with a one-line reason in "
        "`scripts/mutation_equivalent/<module>.toml`; *message-only* survivors rewrote nothing but the "
        "text of a string literal (an error message, every `{...}` placeholder kept; the tests "
        "match a message's key words, not every character). A message replaced by `None` or a "
        "changed placeholder stays open. "
        "Not part of `.ci/run`: a module takes minutes to hours on 2 cores.",
        "",
        "| module | mutants | first score (date, commit) | latest score (date, commit) | "
        "killed | survived | no tests | equivalent or message-only | run s (load) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    details = []
    for module in modules:
        path = RESULTS / f"{module}.json"
        if not path.exists():
            lines.append(f"| {module} | not run | | | | | | | |")
            continue
        runs = json.loads(path.read_text())["runs"]
        first, last = runs[0], runs[-1]
        reasons = known.get(module, {})
        (first_score, _), (last_score, excluded) = score(first, reasons), score(last, reasons)
        lines.append(
            f"| {module} | {last['total']} | {first_score:.1%} ({first['date'][:10]}, "
            f"{first['commit']}) | {last_score:.1%} ({last['date'][:10]}, {last['commit']}"
            f"{carried_note(last)}) | "
            f"{last['killed'] + last['timeout'] + last['segfault']} | {last['survived']} | "
            f"{last['no_tests']} | {excluded} | {last['seconds']} "
            f"({last['load_at_start']:.1f}) |"
        )
        rows = []
        for s in last["survivors"]:
            verdict = classify(s, reasons)[1]
            cells = [f"`{s['name'].split('.')[-1]}`", f"`{s['original']}`", f"`{s['mutation']}`"]
            rows.append("| " + " | ".join(c.replace("|", "\\|") for c in [*cells, verdict]) + " |")
        if rows:
            details += [
                "",
                f"### {module}: survivors of the latest run",
                "",
                "| mutant | original line | mutated line | verdict |",
                "|---|---|---|---|",
                *rows,
            ]
    return "\n".join(lines + details) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("modules", nargs="*", help="names from pyproject (default: all)")
    parser.add_argument("--max-children", type=int, default=2, help="mutants run in parallel")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--survivors-only",
        action="store_true",
        help="run only the latest run's survivors again (its mutated sources unchanged since) "
        "and carry its killed mutants over",
    )
    args = parser.parse_args()
    modules = registry()
    unknown = [m for m in args.modules if m not in modules]
    if unknown:
        raise SystemExit(f"unknown module(s) {unknown}; expected some of {sorted(modules)}")
    if not args.report_only:
        for module in args.modules or list(modules):
            print(f"[mutation] {module}: running mutmut", flush=True)
            run = run_module(module, modules[module], args.max_children, args.survivors_only)
            record(module, run)
            value, excluded = score(run, equivalents().get(module, {}))
            print(
                f"[mutation] {module}: {value:.1%} of {run['total']} mutants "
                f"({run['survived']} survived, {excluded} equivalent or message-only) "
                f"in {run['seconds']} s",
                flush=True,
            )
            REPORT.write_text(report())
    REPORT.write_text(report())


if __name__ == "__main__":
    main()
