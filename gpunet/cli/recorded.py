"""What the ``gpunet`` command records in a checkpoint, checked before it resumes one.

``gpunet train --checkpoint`` keeps its command-line settings in the checkpoint's
``run`` section (``run.options``: :data:`gpunet.cli.train.RECORD`); ``gpunet sweep
--checkpoint`` keeps its own (``run.sweep``: the options (:data:`gpunet.cli.sweep.RECORD`:
the step engine as ``stack_engine``, its name before ``--engine`` meant it), the index
of the running stack, the finished stacks' rows) and the finished stacks' parameters (the
``finished`` member); either may keep the outputs the run was writing
(``run.outputs``). ``--resume`` takes the run's settings from there, so each recorded
field is checked here for its type and range, and for agreeing with the checkpoint's own
sections, which are what actually trains: a record whose η says 0.5 while the training
settings say 3.0 would print and record one run and train another. A checkpoint of the
other command, or of the library, is refused with the command that resumes it.

The command calls :func:`check_train_record` or :func:`check_sweep_record` right after
:func:`gpunet.training.checkpoint.load_checkpoint` (which has checked every other field). Each
problem is one ``ValueError`` naming the file and the field (``run.options.eta``,
``run.sweep.rows[12].epoch``).
"""

from __future__ import annotations

import shlex
from collections import Counter
from typing import TYPE_CHECKING, Any, Optional, Sequence

from ..io.fields import (MISSING, Check, FieldError, agree, anything,
                         check_fields, choice, list_of, number, obj, object_of, optional,
                         path_text, shown, sizes, text, whole)
from ..training.history import RUN_FIELDS, check_epoch_record
from ..io.fields import since
from .options import LOOP_OPTIONS, OPTIONS, PER_NETWORK, choices_of

if TYPE_CHECKING:
    from ..training.checkpoint import Checkpoint
    from ..sweep.grid import Run

OUTPUTS = ("save", "metrics", "plot", "save_dir")
"""The outputs a run may record in ``run.outputs`` (each a path, or ``null``)."""


def nullable(check: Check) -> Check:
    """``check``, or ``null``; the field must be there (a missing field is an edit)."""
    def checked(value: Any, field: str) -> Any:
        return None if value is None else check(value, field)

    return checked


def _shared_options() -> dict[str, Check]:
    """The options ``train`` and ``sweep`` record alike (their choices are the command
    line's own)."""
    return {
        "sizes": sizes,
        "batch_size": whole(1),
        **{key: choice(*choices_of(key)) for key in ("cost", "init", "dtype", "evaluate")},
        "data": nullable(path_text),
        # --test-data and --validation came later: a record without them had neither
        "test_data": since(None, nullable(path_text)),
        "validation": since(None, nullable(number(above=0))),
        "expand": _declared_check("expand"),
        "activation": _declared_check("activation"),  # came later too: a record without it had none
        "limit": nullable(whole(1)),
        **{key: _declared_check(key) for key in LOOP_OPTIONS},
    }


def _declared_check(key: str) -> Check:
    check = OPTIONS[key].record
    assert check is not None, f"{key} is in LOOP_OPTIONS without its record check"
    return check


def train_options() -> dict[str, Check]:
    """``run.options`` of a ``gpunet train`` checkpoint: each option and its check."""
    return {**_shared_options(), "eta": number(above=0), "lmbda": number(low=0),
            "seed": whole(0), "engine": choice(*choices_of("engine"))}


def sweep_options() -> dict[str, Check]:
    """``run.sweep.options`` of a ``gpunet sweep`` checkpoint: each option and its
    check (η, λ and the seeds as the command line spells them: ``"0.5,3"``, ``"0-9"``;
    the step engine as ``stack_engine``)."""
    return {**_shared_options(), "eta": text, "lmbda": text, "seeds": text,
            "momentum": _declared_check("momenta"), "l1": _declared_check("l1s"),
            "dropout": _declared_check("dropouts"),
            "stack_engine": choice(*choices_of("engine")),
            "epochs": whole(1), "stack": whole(1)}


# ------------------------------------------------------------ the record's kind
def recorded_by(saved: "Checkpoint") -> Optional[str]:
    """``"train"`` or ``"sweep"``: the command whose record ``saved`` holds (``None``:
    the library wrote it)."""
    run = saved.run
    if "sweep" in run:
        return "sweep"
    if "options" in run:
        return "train"
    return None


def _refuse_other_kinds(saved: "Checkpoint", command: str) -> None:
    """A checkpoint of the other command, or of the library, refused with what
    resumes it."""
    path, by = saved.path, recorded_by(saved)
    if by is None:
        raise ValueError(f"{path} was not written by gpunet {command} (no command-line "
                         "settings in it); continue it with gpunet.resume() in Python.")
    if by != command:
        raise ValueError(f"{path} is a gpunet {by} checkpoint; continue it with: "
                         f"gpunet {by} --resume {shlex.quote(str(path))}")
    if ("sweep" in saved.run) and ("options" in saved.run):
        raise FieldError("run", "holds both a train record (options) and a sweep record "
                         "(sweep)").in_file(path)


def _same(a: str, a_value: Any, b: str, b_value: Any) -> None:
    """Two fields that record one setting must agree (``1`` is not ``true``)."""
    agree(a_value == b_value and isinstance(a_value, bool) == isinstance(b_value, bool),
          a, f"is {shown(a_value)} but {b} is {shown(b_value)}; they must agree")


def _agree_on_network(saved: "Checkpoint", prefix: str, options: dict[str, Any]) -> None:
    """The options that make the network and its training, against the checkpoint's
    ``network`` and ``training`` sections (what resumes)."""
    from ..model.costs import COSTS

    network, training = saved.network_settings, saved.training
    _same(f"{prefix}.sizes", options["sizes"], "network.sizes", network["sizes"])
    agree(COSTS[options["cost"]] is COSTS[network["cost"]], f"{prefix}.cost",
          f"is {shown(options['cost'])} but network.cost is {shown(network['cost'])}; they "
          "must agree")
    for key in ("init", "dtype"):
        _same(f"{prefix}.{key}", options[key], f"network.{key}", network[key])
    _same(f"{prefix}.activation", options["activation"], "network.activation",
          network.get("activation") or "sigmoid")  # (a sigmoid network's has none)
    _same(f"{prefix}.batch_size", options["batch_size"], "training.mini_batch_size",
          training["mini_batch_size"])
    per_network = PER_NETWORK if saved.kind == "stack" else ()  # a sweep's: its grid's
    for key in LOOP_OPTIONS:  # (an option newer than the checkpoint: not in training)
        if key in training and key not in per_network:
            recorded = training[key]  # a stack's one per network: the option is every one's
            if (isinstance(recorded, list) and not isinstance(options[key], list)
                    and all(v == recorded[0] for v in recorded)):
                recorded = recorded[0]
            _same(f"{prefix}.{key}", options[key], f"training.{key}", recorded)
    agree(training["monitor_evaluation_accuracy"] is True,
          "training.monitor_evaluation_accuracy",
          "is false, but gpunet's commands always monitor it")
    if options["limit"] is not None:
        _same(f"{prefix}.limit", options["limit"], "data.n_train", saved.data["n_train"])


def _outputs(saved: "Checkpoint", command: str) -> dict[str, Optional[str]]:
    """``run.outputs`` (absent in files written before it was kept): each output a
    path or ``null``; ``save`` is train's, ``save_dir`` sweep's."""
    mine = {"train": ("save", "metrics", "plot", "save_best"),
            "sweep": ("metrics", "plot", "save_dir")}[command]
    fields = check_fields(saved.meta, {"run.outputs": optional(object_of(
        {key: optional(path_text) for key in mine}, extra=False))})
    outputs = fields["run.outputs"] or {}
    return {key: outputs.get(key) for key in mine}


def recorded_outputs(saved: "Checkpoint", command: str) -> dict[str, Optional[str]]:
    """The outputs the run of ``gpunet COMMAND`` was writing, from ``run.outputs``
    (``None`` for each not recorded), checked; ``ValueError`` naming the file and the
    field."""
    try:
        return _outputs(saved, command)
    except FieldError as exc:
        raise exc.in_file(saved.path) from None


# ------------------------------------------------------------------ train
def check_train_record(saved: "Checkpoint") -> dict[str, Any]:
    """The ``gpunet train`` options recorded in checkpoint ``saved`` (``run.options``),
    each checked for its type and range and against the checkpoint's network and
    training settings; also ``run.outputs``. A sweep's checkpoint, or the library's, is
    refused with the command that resumes it. Every problem is one ``ValueError``
    naming the file and the field."""
    _refuse_other_kinds(saved, "train")
    try:
        agree(saved.kind == "network", "kind",
              f"is {shown(saved.kind)}, but run.options is a gpunet train record (one "
              "network)")
        fields = check_fields(saved.meta, {"run.options": obj, **{
            f"run.options.{key}": check for key, check in train_options().items()}})
        options = {path.rsplit(".", 1)[1]: value for path, value in fields.items()
                   if path != "run.options"}
        _agree_on_network(saved, "run.options", options)
        network, training = saved.network_settings, saved.training
        _same("run.options.seed", options["seed"], "network.seed", network["seed"])
        for key in ("eta", "lmbda", "engine"):
            _same(f"run.options.{key}", options[key], f"training.{key}", training[key])
        _outputs(saved, "train")
    except FieldError as exc:
        raise exc.in_file(saved.path) from None
    return options


# ------------------------------------------------------------------ sweep
def check_sweep_record(saved: "Checkpoint") -> dict[str, Any]:
    """The ``gpunet sweep`` options recorded in checkpoint ``saved``
    (``run.sweep.options``), each checked for its type and range, and the sweep's state
    against them: the grid they spell, split into stacks of ``stack``, has a stack
    ``run.sweep.stack`` whose seeds, η and λ are the checkpoint's (the running stack);
    the finished rows are every epoch of every network of the stacks before it, and the
    ``finished`` member holds their parameters; the shared settings agree with the
    network and training sections; ``run.outputs`` too. A train checkpoint, or the
    library's, is refused with the command that resumes it. Every problem is one
    ``ValueError`` naming the file and the field."""
    from ..sweep.local import stops_early

    _refuse_other_kinds(saved, "sweep")
    try:
        agree(saved.kind == "stack", "kind",
              f"is {shown(saved.kind)}, but run.sweep is a gpunet sweep record (a stack)")
        prefix = "run.sweep.options"
        fields = check_fields(saved.meta, {
            "run.sweep": obj, prefix: obj,
            **{f"{prefix}.{key}": check for key, check in sweep_options().items()},
            "run.sweep.stack": whole(0), "run.sweep.rows": list_of(anything)})
        options = {path[len(prefix) + 1:]: value for path, value in fields.items()
                   if path.startswith(prefix + ".")}
        _agree_on_network(saved, prefix, options)
        training = saved.training
        _same(f"{prefix}.epochs", options["epochs"], "training.epochs", training["epochs"])
        _same(f"{prefix}.stack_engine", options["stack_engine"], "training.engine",
              training["engine"])
        stacks = _stacks(options, prefix)
        i = fields["run.sweep.stack"]
        agree(i < len(stacks), "run.sweep.stack",
              f"is {i}, but the sweep's grid makes {len(stacks)} stacks")
        _running_stack(saved, stacks[i], i)
        finished = [run for stack in stacks[:i] for run in stack]
        _finished_rows(fields["run.sweep.rows"], finished, options["epochs"],
                       stops_early(options))  # (its options: SGD's keywords' names)
        _finished_parameters(saved, len(finished))
        _outputs(saved, "sweep")
    except FieldError as exc:
        raise exc.in_file(saved.path) from None
    return options


def _stacks(options: dict[str, Any], prefix: str) -> list[list["Run"]]:
    """The sweep's stacks, as ``gpunet sweep`` makes them from its options."""
    from ..sweep.grid import expand_grid, parse_floats, parse_seeds, split_into_stacks

    def parsed(key: str, parse: Any) -> Any:
        try:
            return parse(options[key])
        except ValueError as exc:
            raise FieldError(f"{prefix}.{key}", f"is {shown(options[key])}: "
                             f"{str(exc).rstrip('.')}") from None

    etas = parsed("eta", lambda t: parse_floats(t, "--eta"))
    lmbdas = parsed("lmbda", lambda t: parse_floats(t, "--lmbda"))
    seeds = parsed("seeds", parse_seeds)
    momenta = parsed("momentum", lambda t: parse_floats(t, "--momentum"))
    l1s = parsed("l1", lambda t: parse_floats(t, "--l1"))
    dropouts = parsed("dropout", lambda t: parse_floats(t, "--dropout"))
    try:
        runs = expand_grid(etas, lmbdas, seeds, momenta, l1s, dropouts)
    except ValueError as exc:
        raise FieldError(prefix, f"do not make a grid: {str(exc).rstrip('.')}") from None
    return split_into_stacks(runs, options["stack"])


def _running_stack(saved: "Checkpoint", runs: Sequence["Run"], i: int) -> None:
    """The checkpoint's networks are stack ``i``'s: their seeds, η, λ, μ, λ₁ and p."""
    from ..sweep.grid import SWEPT

    network, training = saved.network_settings, saved.training
    which = f"stack {i + 1}'s in the sweep's grid"
    for field, mine, grid in (("network.seeds", network["seeds"], [r.seed for r in runs]),
                              *((f"training.{name}", training[name],
                                 [getattr(r, name) for r in runs]) for name in SWEPT)):
        agree(mine == grid, field, f"is {shown(mine)}, not {shown(grid)} ({which})")


def _finished_rows(rows: list[Any], finished: Sequence["Run"], epochs: int,
                   may_stop: bool) -> None:
    """The rows of the finished stacks: every epoch of every network, once each (a
    network's first epochs only, where early stopping or the schedule may stop it)."""
    from ..sweep.grid import Run

    wanted = set(finished)
    seen: set[tuple[Run, int]] = set()
    for n, row in enumerate(rows):
        field = f"run.sweep.rows[{n}]"
        obj(row, field)
        run = Run(**object_of(RUN_FIELDS, extra=False)(row.get("run", MISSING),
                                                       f"{field}.run"))
        epoch = check_epoch_record(row, field)["epoch"]
        agree(run in wanted, f"{field}.run",
              f"is {shown(row['run'])}, not a network of the sweep's finished stacks")
        agree(epoch < epochs, f"{field}.epoch",
              f"is {epoch}, but the sweep trains {epochs} epochs")
        agree((run, epoch) not in seen, field, f"repeats epoch {epoch} of {shown(row['run'])}")
        seen.add((run, epoch))
    trained = Counter(run for run, _ in seen)
    for run in finished:
        count = trained[run]
        agree(count == epochs or (may_stop and 0 < count and (run, count - 1) in seen),
              "run.sweep.rows", f"has {count} rows of {shown(run.as_dict())}, not the "
              f"{epochs} epochs of a finished network" + ("" if not may_stop else
                                                          " nor its first epochs"))


def _finished_parameters(saved: "Checkpoint", count: int) -> None:
    """The ``finished`` member: the finished networks' parameters, one row each."""
    finished = saved.arrays.get("finished")
    rows = 0 if finished is None else len(finished)
    agree(rows == count, "finished",
          f"holds {rows} networks' parameters, not the {count} of the finished stacks")
