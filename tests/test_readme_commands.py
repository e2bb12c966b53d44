"""The README's commands are real: each ``gpunet`` line of its shell blocks parses with
the command's own parser, each install line works however gpunet was installed, and
the GPU section names the extras pyproject.toml declares."""

from __future__ import annotations

import re
import shlex

import pytest

from conftest import ROOT
from gpunet.backends.hints import EXTRAS
from gpunet.cli.command import build_parser

README = (ROOT / "README.md").read_text()


def shell_lines() -> list[str]:
    """Every line of the README's ```sh blocks, comments cut off."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


GPUNET_LINES = [line for line in shell_lines() if line.startswith("gpunet ")]


def test_the_readme_shows_the_new_commands():
    text = " ".join(GPUNET_LINES)
    for words in ("--data mnist.npz", "--validation", "--cost cross-entropy --eta 0.5 "
                  "--lmbda 5.0 --init default"):
        assert words in text, words


@pytest.mark.parametrize("line", GPUNET_LINES)
def test_each_gpunet_line_parses(line):
    """An option the command does not have (a typo, a renamed flag) fails here."""
    argv = shlex.split(line)[1:]
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's usage error
        pytest.fail(f"README: `{line}` does not parse (exit {exc.code})")


def test_install_lines_work_without_an_index_entry_or_a_checkout():
    """`pip install "gpunet[x]"` fails (gpunet is not on the index) and `-e ".[x]"`
    makes a user's install editable: only the developers' test command may use it."""
    for match in re.finditer(r"pip install[^`\n]*", README):
        line = match.group(0)
        assert "gpunet[" not in line or "fails" in README[match.end():match.end() + 10], line
        if "-e" in line.split():
            assert line.startswith('pip install -e ".[test'), line


def test_the_gpu_section_names_each_cuda_extra_with_its_package():
    section = README.split("\n## Using an NVIDIA GPU\n", 1)[1].split("\n## ", 1)[0]
    for extra in ("cuda12", "cuda13"):
        (package,) = EXTRAS[extra]
        assert f"| `{extra}` | `pip install \"{package}\"` |" in section
    for words in ("nvidia-smi", "CUDA Version:", "gpunet check --device cuda",
                  "no NVIDIA driver found", "driver is too old", "CuPy packages are installed"):
        assert words in section, words


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_cite_only_what_exists(doc):
    """Links and file paths resolve in the repository; nothing cites the project's
    private notes (book.md, design.md: not shipped), which a reader cannot open."""
    text = doc.read_text()
    missing = [target for target, _ in re.findall(r"\]\(([^)#\s]+)(#[^)]*)?\)", text)
               if not target.startswith(("http://", "https://"))
               and not (doc.parent / target).exists()]
    missing += [path for path in re.findall(
        r"(?<![\w/.])((?:scripts|tests|benchmarks|gpunet|backends|docs)/[\w./-]+\.(?:py|sh|json|md|cu|png))",
        text) if not (ROOT / path).exists()]
    assert missing == []
    assert not re.search(r"book\.md|design\.md|§\s*\d", text)
