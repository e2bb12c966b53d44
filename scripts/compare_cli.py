"""The ``gpunet`` command's behaviour, one install against another (issue 27, point 3).

    python scripts/compare_cli.py BEFORE_PYTHON AFTER_PYTHON [--keep DIR] [--only NAME ...]

runs the same representative commands with each Python (each with its own gpunet
installed: ``python3 -m venv V && V/bin/pip install CHECKOUT matplotlib pillow``) and
compares, step by step, the exit status, stdout, stderr and every file the commands
wrote (metrics, networks, checkpoints' header and arrays, plots), after normalising what
may differ between two runs of one install: timings (``0.25 s``, ``train_seconds``,
``seconds``, ``started``), dependency versions (NumPy, Python), the memory free at the
moment (``the 22.5 GiB of memory available``), and the case's own folder (``<DIR>``). Exit status 0 when every case agrees, 1 when one differs.

Each case runs in a folder of its own, its steps one after another (a checkpoint the
first writes is resumed by the next). A step may be interrupted: the driver sends
SIGINT (or SIGTERM) to its own process as the command writes a chosen line to stdout
(``Epoch 1:``), so the interruption lands at the same point of the run in both installs,
as a Ctrl-C typed then would.

Documented differences (issue 27: ``gpunet sweep --executor``, the old spellings kept
with a note) are checked, not ignored: a case may say that the after install prints
``gpunet: note:`` lines (each must be there, and is removed before comparing), that
messages renamed an option (the before output is rewritten by those substitutions
before comparing), or that its output differs as documented (``--help`` of ``sweep``:
the diff is printed, and counted apart).
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

DRIVER = r'''
import os, signal, sys
trigger = os.environ.get("COMPARE_CLI_TRIGGER")
if trigger:
    number = getattr(signal, "SIG" + os.environ.get("COMPARE_CLI_SIGNAL", "INT"))

    class Tripwire:
        """stdout, sending the signal to this process once the trigger's line is out."""
        def __init__(self, stream):
            self._stream, self._armed, self._fired = stream, False, False
        def write(self, text):
            n = self._stream.write(text)
            self._armed = self._armed or trigger in text
            if self._armed and not self._fired and "\n" in text:  # the line is out
                self._fired = True
                self._stream.flush()
                os.kill(os.getpid(), number)
            return n
        def __getattr__(self, name):
            return getattr(self._stream, name)

    sys.stdout = Tripwire(sys.stdout)
from gpunet.cli import console
sys.argv = ["gpunet", *sys.argv[1:]]
sys.exit(console())
'''

MAKE_DIGIT = ("import numpy as np, gpunet; X, y = gpunet.load_mnist().test; "
              "np.save('seven.npy', X[0]); np.save('two.npy', X[1].reshape(28, 28)); "
              "open('noise.txt', 'w').write('not an image')")


@dataclass
class Step:
    """One command of a case: ``gpunet ARGS`` (``python=True``: ``python -c ARGS[0]``),
    interrupted by ``signal`` as stdout gets a line with ``trigger`` (if given)."""

    args: list[str]
    trigger: str = ""
    signal: str = "INT"
    python: bool = False
    notes: int = 0  # "gpunet: note:" lines the after install adds (documented)


@dataclass
class Case:
    name: str
    steps: list[Step]
    #: before-output substitutions the after install makes (documented renamings)
    renamed: dict[str, str] = field(default_factory=dict)
    #: the output differs as documented (shown, counted apart): the reason
    documented: str = ""


T = ["--device", "cpu", "--limit", "500", "--sizes", "784,10,10", "--seed", "1", "--quiet"]
S = ["--device", "cpu", "--limit", "500", "--sizes", "784,10,10", "--workers", "1",
     "--quiet"]
EXECUTOR = {"need --engine local": "need --executor local",
            "need --engine ray": "need --executor ray",
            "--engine ray needs Ray": "--executor ray needs Ray"}


def step(*args: str, **kw: Any) -> Step:
    return Step(list(args), **kw)


def cases() -> list[Case]:
    """The representative commands: every subcommand, outputs, interruptions and
    resumes, resume errors, bad options, help."""
    train_out = ["--save", "net.json", "--metrics", "m.jsonl", "--checkpoint", "run.ckpt",
                 "--plot", "curves.png"]
    sweep_out = ["--metrics", "m.jsonl", "--save-dir", "nets", "--checkpoint", "s.ckpt",
                 "--plot", "p.png"]
    return [
        Case("help", [step("--help"), step("--version"), step(), step("nosuch"),
                      *[step(c, "--help") for c in ("train", "predict", "evaluate", "plot",
                                                   "info", "check", "reproduce", "bench")]]),
        Case("help-sweep", [step("sweep", "--help")],
             documented="--executor local|ray; --engine is the step engine (was "
             "--stack-engine)"),
        Case("train-plain", [step("train", *T, "--epochs", "2"),
                             step("train", *T, "--epochs", "1", "--engine", "eager"),
                             step("train", *T, "--engine", "fused")]),
        Case("train-monitors", [step("train", *T, "--epochs", "2", "--monitor-training-cost",
                                     "--monitor-training-accuracy", "--monitor-evaluation-cost",
                                     "--evaluate", "validation", "--cost", "cross-entropy",
                                     "--init", "default", "--lmbda", "1", "--eta", "0.5",
                                     "--dtype", "float64", "--batch-size", "20")]),
        Case("train-outputs", [
            step("train", *T, "--epochs", "2", *train_out),
            step("train", *T, "--epochs", "2", *train_out),  # the checkpoint exists
            step("train", *T, "--epochs", "2", *train_out, "--overwrite"),
            step("train", "--resume", "run.ckpt"),  # finished: writes its outputs again
            step("train", "--resume", "run.ckpt", "--epochs", "3", "--quiet"),
            step("train", *T, "--seed", "2", "--epochs", "1", "--metrics", "other.jsonl"),
            step("train", "--resume", "run.ckpt", "--epochs", "4", "--metrics", "other.jsonl"),
            step("train", "--resume", "run.ckpt", "--eta", "0.1"),
            step("train", "--resume", "run.ckpt", "--epochs", "1"),
            step("train", "--resume", "run.ckpt", "--save", "run.ckpt"),
            step("train", "--resume", "missing.ckpt"),
            step("train", "--resume", "net.json"),
            step("sweep", "--resume", "run.ckpt"),
        ]),
        Case("train-interrupted", [
            step("train", *T, "--epochs", "4", *train_out, trigger="Epoch 1:"),
            step("train", "--resume", "run.ckpt", "--quiet"),
        ]),
        Case("train-terminated", [
            step("train", *T, "--epochs", "3", "--checkpoint", "run.ckpt", "--metrics",
                 "m.jsonl", trigger="Epoch 0:", signal="TERM"),
            step("train", "--resume", "run.ckpt", "--epochs", "4", "--quiet"),
        ]),
        Case("train-interrupted-early", [
            step("train", *T, "--epochs", "3", "--save", "net.json", trigger="network:"),
            step("train", *T, "--epochs", "3", "--save", "net.json", trigger="Epoch 0:"),
        ]),
        Case("train-diverged", [step("train", *T, "--epochs", "2", "--lmbda", "1000",
                                     "--checkpoint", "d.ckpt", "--metrics", "m.jsonl",
                                     "--save", "net.json")]),
        Case("train-errors", [step("train", *T, *extra) for extra in (
            ["--sizes", "784"], ["--epochs", "0"], ["--eta", "-1"], ["--lmbda", "-1"],
            ["--batch-size", "600"], ["--batch-size", "0"], ["--limit", "70000"],
            ["--limit", "0"], ["--cost", "foo"], ["--metrics", "/no/such/dir/m.jsonl"],
            ["--data", "/no/such/data"], ["--save", "x.json", "--metrics", "x.json"],
            ["--sizes", "784,100000000,10"], ["--plot", "."], ["--engine", "warp"],
            ["--seed", "-3"], ["--epochs", "x"])]),
        Case("sweep-plain", [step("sweep", *S, "--epochs", "2", "--eta", "0.5,3",
                                  "--seeds", "0-1", "--stack", "2")]),
        Case("sweep-outputs", [
            step("sweep", *S, "--epochs", "2", "--eta", "0.5,3", "--lmbda", "0,1",
                 "--seeds", "0-1", "--stack", "3", "--monitor-training-cost",
                 "--monitor-evaluation-cost", "--monitor-training-accuracy",
                 "--evaluate", "validation", *sweep_out),
            step("sweep", *S, "--epochs", "2", "--eta", "0.5,3", *sweep_out),  # exists
            step("sweep", "--resume", "s.ckpt", "--metrics", "m2.jsonl", "--quiet"),
            step("sweep", "--resume", "s.ckpt", "--eta", "0.1"),
            step("sweep", "--resume", "s.ckpt", "--stack", "1"),
            step("sweep", "--resume", "s.ckpt", "--device", "cpu", "--workers", "1",
                 "--quiet"),
            step("train", "--resume", "s.ckpt"),
        ]),
        Case("sweep-interrupted", [
            step("sweep", *S, "--epochs", "2", "--eta", "0.5,3", "--seeds", "0-1",
                 "--stack", "1", *sweep_out, trigger="stack 2/4 epoch 0:"),
            step("sweep", "--resume", "s.ckpt", "--quiet"),
        ]),
        Case("sweep-terminated", [
            step("sweep", *S, "--epochs", "2", "--eta", "0.5,3", "--stack", "1",
                 "--metrics", "m.jsonl", "--save-dir", "nets", trigger="stack 1/2 epoch 1:",
                 signal="TERM"),
        ]),
        Case("sweep-diverged", [step("sweep", *S, "--epochs", "2", "--eta", "3", "--lmbda",
                                     "0,1000", "--metrics", "m.jsonl", "--save-dir", "nets")]),
        Case("sweep-errors", [step("sweep", *S, *extra) for extra in (
            ["--eta", "0.5,abc"], ["--seeds", "3-1"], ["--eta", "1,1"], ["--lmbda", "-1"],
            ["--stack", "0"], ["--workers", "0"], ["--limit", "60001"], ["--metrics", "/no/such/dir/m.jsonl"],
            ["--batch-size", "600"], ["--epochs", "0"], ["--cost", "foo"])]),
        Case("sweep-old-spellings", [
            step("sweep", *S, "--epochs", "1", "--eta", "3", "--engine", "local", notes=1),
            step("sweep", *S, "--epochs", "1", "--eta", "3", "--stack-engine", "eager",
                 notes=1),
            step("sweep", *S, "--epochs", "1", "--engine", "ray", "--checkpoint", "c.ckpt",
                 notes=1),
            step("sweep", *S, "--epochs", "1", "--engine", "ray", notes=1),  # no Ray here
        ], renamed=EXECUTOR),
        Case("sweep-executor-messages", [
            step("sweep", *S, "--epochs", "1", "--ray-address", "auto"),
            step("sweep", *S, "--epochs", "1", "--ray-cpus-per-task", "2"),
        ], renamed=EXECUTOR),
        Case("predict-evaluate-plot", [
            step(MAKE_DIGIT, python=True),
            step("train", *T, "--epochs", "2", "--save", "net.json", "--metrics", "m.jsonl"),
            step("sweep", *S, "--epochs", "2", "--eta", "0.5,3", "--metrics", "s.jsonl"),
            step("predict", "net.json", "seven.npy", "two.npy", "--device", "cpu"),
            step("predict", "net.json", "seven.npy", "--json", "--device", "cpu"),
            step("predict", "net.json", "noise.txt", "seven.npy", "--device", "cpu"),
            step("predict", "missing.json", "seven.npy"),
            step("evaluate", "net.json", "--device", "cpu"),
            step("evaluate", "net.json", "--json", "--device", "cpu"),
            step("evaluate", "net.json", "--device", "cpu", "--plot", "e.png"),
            step("plot", "m.jsonl", "s.jsonl", "-o", "c.png"),
            step("plot", "m.jsonl", "-o", "c2.png", "--label", "a", "--label", "b"),
            step("plot", "missing.jsonl", "-o", "c3.png"),
        ]),
        Case("info-check", [step("info"), step("check", "--device", "cpu"),
                            step("check", "--device", "nosuch"),
                            step("reproduce", "--out", "r", "--render-only"),
                            step("bench", "--stamp", "a/b", "--out", "b")]),
    ]


# ----------------------------------------------------------------- running
@dataclass
class Outcome:
    status: int
    stdout: str
    stderr: str
    files: dict[str, str]


def run_case(python: str, case: Case, folder: Path) -> list[Outcome]:
    """Every step of ``case`` with ``python``, in ``folder`` (made empty first)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    driver = folder.parent / "driver.py"
    driver.write_text(DRIVER)
    outcomes = []
    for s in case.steps:
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "GPUNET_DEVICE") and not k.startswith("COMPARE_CLI")}
        env.update(COLUMNS="100", LC_ALL="C.UTF-8", PYTHONHASHSEED="0")
        if s.trigger:
            env.update(COMPARE_CLI_TRIGGER=s.trigger, COMPARE_CLI_SIGNAL=s.signal)
        command = [python, "-c", s.args[0]] if s.python else [python, str(driver), *s.args]
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                              timeout=900)
        outcomes.append(Outcome(done.returncode, normal(done.stdout, folder),
                                normal(done.stderr, folder), files(folder)))
    return outcomes


TIMES = re.compile(r"\b\d+\.\d+ s\b")
VERSIONS = re.compile(r"NumPy \d+\.\d+(\.\d+)?[\w.+]*")
AVAILABLE = re.compile(r"the [\d,.]+ ([KMGT]i)?B of (memory|GPU memory)")


def normal(text: str, folder: Path) -> str:
    """``text`` with timings, NumPy's version and the case's folder normalised."""
    for path in {str(folder), str(folder.resolve())}:
        text = text.replace(path, "<DIR>")
    text = AVAILABLE.sub(r"the <free> \1B of \2", text)
    return VERSIONS.sub("NumPy <v>", TIMES.sub("<t> s", text))


def normal_json(value: Any, folder: Path) -> Any:
    """A JSON value with its timing fields, versions and paths normalised."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ("train_seconds", "seconds", "started"):
                out[key] = "<t>"
            elif key == "versions" and isinstance(item, dict):
                out[key] = {k: (v if k == "gpunet" else "<v>") for k, v in item.items()}
            else:
                out[key] = normal_json(item, folder)
        return out
    if isinstance(value, list):
        return [normal_json(v, folder) for v in value]
    if isinstance(value, str):
        return normal(value, folder)
    return value


def files(folder: Path) -> dict[str, str]:
    """Every file under ``folder``: its content, normalised where it holds timings."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        out[str(path.relative_to(folder))] = content(path, folder)
    return out


def content(path: Path, folder: Path) -> str:
    data = path.read_bytes()
    if data[:4] == b"PK\x03\x04":  # a checkpoint: its header normalised, arrays hashed
        return checkpoint_text(data, folder)
    if path.suffix in (".jsonl", ".json"):
        try:
            lines = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        except (ValueError, UnicodeDecodeError):
            return "sha256 " + hashlib.sha256(data).hexdigest()
        return "\n".join(json.dumps(normal_json(v, folder), sort_keys=False) for v in lines)
    if path.suffix == ".png":
        return "png sha256 " + hashlib.sha256(data).hexdigest()
    try:
        return normal(data.decode(), folder)
    except UnicodeDecodeError:
        return "sha256 " + hashlib.sha256(data).hexdigest()


def checkpoint_text(data: bytes, folder: Path) -> str:
    lines = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in sorted(archive.namelist()):
            member = archive.read(name)
            if name == "meta.npy":
                meta = normal_json(json.loads(npy_payload(member)), folder)
                lines.append("meta " + json.dumps(meta, indent=1))
            else:  # the array's dtype and shape, and its data's hash
                header = npy_header(member).strip()
                data = hashlib.sha256(npy_payload(member)).hexdigest()
                lines.append(f"{name} {header} data sha256 {data}")
    return "\n".join(lines)


def npy_payload(member: bytes) -> bytes:
    """The data of a ``.npy`` file (after its magic, version and header)."""
    size = 2 if member[6] == 1 else 4
    header = int.from_bytes(member[8:8 + size], "little")
    return member[8 + size + header:]


def npy_header(member: bytes) -> str:
    """The header of a ``.npy`` file: its dtype, order and shape, as a dict's text."""
    size = 2 if member[6] == 1 else 4
    header = int.from_bytes(member[8:8 + size], "little")
    return member[8 + size:8 + size + header].decode("latin-1")


# ----------------------------------------------------------------- comparing
def without_notes(text: str, count: int) -> tuple[str, list[str]]:
    """``text`` less its ``gpunet: note:`` lines, and those lines."""
    lines = text.splitlines(True)
    notes = [line for line in lines if line.startswith("gpunet: note:")]
    return "".join(line for line in lines if not line.startswith("gpunet: note:")), notes


def renamed(outcome: Outcome, substitutions: dict[str, str]) -> Outcome:
    def sub(text: str) -> str:
        for old, new in substitutions.items():
            text = text.replace(old, new)
        return text

    return Outcome(outcome.status, sub(outcome.stdout), sub(outcome.stderr),
                   {k: sub(v) for k, v in outcome.files.items()})


def differences(case: Case, before: list[Outcome], after: list[Outcome]) -> list[str]:
    """Unified diffs of every way ``after`` differs from ``before``, step by step."""
    found = []
    for n, (s, b, a) in enumerate(zip(case.steps, before, after)):
        b = renamed(b, case.renamed)
        stderr, notes = without_notes(a.stderr, s.notes)
        label = f"{case.name} step {n + 1} (gpunet {' '.join(s.args)[:90]})"
        if len(notes) != s.notes:
            found.append(f"{label}: {len(notes)} note lines, {s.notes} documented:\n"
                         + "".join(notes))
        if b.status != a.status:
            found.append(f"{label}: exit status {b.status} before, {a.status} after")
        for what, x, y in (("stdout", b.stdout, a.stdout), ("stderr", b.stderr, stderr)):
            if x != y:
                found.append(diff(f"{label} {what}", x, y))
        for name in sorted(set(b.files) | set(a.files)):
            x, y = b.files.get(name), a.files.get(name)
            if x != y:
                found.append(diff(f"{label} file {name}", x or "(missing)\n",
                                  y or "(missing)\n"))
    return found


def diff(label: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), "before", "after",
                                 n=1, lineterm="")
    return f"{label}:\n" + "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="the Python of the install before")
    parser.add_argument("after", help="the Python of the install after")
    parser.add_argument("--keep", metavar="DIR", default=None,
                        help="run the cases in DIR/before and DIR/after and keep them")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME",
                        help="only these cases")
    args = parser.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix="compare_cli_")).resolve()
    chosen = [c for c in cases() if args.only is None or c.name in args.only]
    same = documented = differ = 0
    for case in chosen:
        before = run_case(args.before, case, work / "before" / case.name)
        after = run_case(args.after, case, work / "after" / case.name)
        found = differences(case, before, after)
        if not found:
            same += 1
            print(f"same        {case.name} ({len(case.steps)} steps)")
        elif case.documented:
            documented += 1
            print(f"documented  {case.name}: {case.documented}\n" + "\n".join(found))
        else:
            differ += 1
            print(f"DIFFERS     {case.name}\n" + "\n".join(found))
    steps = sum(len(c.steps) for c in chosen)
    print(f"{len(chosen)} cases ({steps} steps): {same} the same, {documented} differ as "
          f"documented, {differ} differ")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
