"""Each concept declared once, the rest derived (issue 27, point 2): the lists that
users meet (CLI choices, the names ``SGD`` takes, the notes printed) come from the
declarations, and the few places a type checker needs a literal copy agree with them.
"""

from __future__ import annotations

import typing

from gpunet.cli.command import build_parser
from gpunet.engines import ENGINE_NAMES, ENGINES, engine_note
from gpunet.networks.network import EngineName


def test_the_engine_names_come_from_the_one_list_of_engines():
    assert ENGINE_NAMES == ("auto", *(kind.name for kind in ENGINES))
    assert typing.get_args(EngineName) == ENGINE_NAMES  # the type's literal copy agrees
    assert all(engine_note(kind.name) == kind.note and kind.note for kind in ENGINES)
    assert engine_note("stacked-cpu") == engine_note("cpu")
    train = build_parser()._subparsers._group_actions[0].choices["train"]  # type: ignore
    engine = next(a for a in train._actions if a.dest == "engine")
    assert tuple(engine.choices) == ENGINE_NAMES
