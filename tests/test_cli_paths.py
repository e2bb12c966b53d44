"""Every file or folder the command line names is a path, never the empty text.

``--save-dir ""`` (or an unset shell variable: ``--save-dir "$OUT"``) meant no output at
all to ``gpunet sweep``: it trained, printed its table and saved no network, silently;
other options took it as this folder. Now each is one usage error naming the option.
"""

from __future__ import annotations

import argparse

import pytest

from gpunet.cli import main
from gpunet.cli.command import build_parser
from gpunet.cli.options import path

EMPTY = [
    ["sweep", "--device", "cpu", "--limit", "100", "--epochs", "1", "--save-dir", ""],
    ["train", "--device", "cpu", "--limit", "100", "--epochs", "1", "--save", ""],
    ["train", "--device", "cpu", "--data", ""],
    ["train", "--resume", ""],  # (bench and reproduce --out: by the declaration below;
    # a regression there would start a long run)
    ["find-eta", "--device", "cpu", "--limit", "100", "--epochs", "1", "--json", ""],
    ["evaluate", ""],
    ["predict", "net.json", "digit.png", ""],
    ["plot", "m.jsonl", "--output", ""],
    ["check", "--json", ""],
]


@pytest.mark.parametrize("argv", EMPTY, ids=lambda a: f"{a[0]}-{a[-2]}")
def test_an_empty_path_is_one_usage_error_before_any_work(argv, capsys, tmp_path,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:  # argparse's usage error
        main(argv)
    assert stopped.value.code == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "an empty path" in err[0], err
    assert err[0].startswith(f"gpunet: error: {argv[0]}: argument ")
    assert captured.out == "" and list(tmp_path.iterdir()) == []  # nothing ran


#: How a path looks in ``--help``: what the user types there is a file or a folder.
PATH_METAVARS = ("PATH", "DIR", "NET.json", "IMAGE", "METRICS.jsonl", "PATH.png")
PATH_DESTS = {"out", "plot"}


def _actions():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command, child in sub.choices.items():
        for action in child._actions:
            yield command, action


def test_every_path_option_refuses_the_empty_path():
    """An option added later with a path metavar and no ``type=path`` fails here."""
    paths = [(c, a) for c, a in _actions()
             if a.metavar in PATH_METAVARS or a.dest in PATH_DESTS]
    assert len(paths) >= 20
    missing = [f"{c} {a.option_strings or a.dest}" for c, a in paths
               if a.type is not path and a.nargs != 0]
    assert missing == []
    with pytest.raises(argparse.ArgumentTypeError, match="an empty path"):
        path("")
    assert path(".") == "." and path(" x") == " x"
    assert path("d/" + "é" * 127) == "d/" + "é" * 127  # 254 bytes: allowed
    with pytest.raises(argparse.ArgumentTypeError, match="256 bytes long"):
        path("d/" + "é" * 128 + "/x")


def test_a_name_too_long_for_a_file_system_names_the_option(capsys):
    """It was an OSError at the first write, after the data loaded, naming no option."""
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--device", "cpu", "--limit", "100", "--epochs", "1",
              "--save", "a" * 300 + ".json"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gpunet: error: train: argument --save: ")
    assert "305 bytes long" in err[0]


def test_a_save_dir_that_links_to_no_folder_says_so(tmp_path, capsys):
    """It said "cannot create it (File exists)": the link is there, its folder is not."""
    link = tmp_path / "runs"
    link.symlink_to(tmp_path / "moved")
    assert main(["sweep", "--device", "cpu", "--limit", "100", "--epochs", "1",
                 "--save-dir", str(link)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a symbolic link to" in err[0] and "moved" in err[0]
    assert "make that folder" in err[0] and not (tmp_path / "moved").exists()
