"""Every option of ``gpunet train`` and ``gpunet sweep``, declared once.

:data:`OPTIONS` holds each option's flags and argparse settings (and, for an option a
checkpoint records, the check its recorded value must pass); :data:`TRAIN` and
:data:`SWEEP` list which options each command has, in the order ``--help`` shows them.
The two commands share every option they have in common: the network, the data
(``--data``, ``--limit``, ``--evaluate``), SGD, the monitors, ``--engine`` (the step
engine), the outputs and ``--overwrite``/``--quiet``. Where a sweep differs it has
options of its own: ``--eta``/``--lmbda``/``--seeds`` take lists, and ``--executor``
says where the stacks train (local or Ray).

An option that reaches the training loop under its own name (an ``SGD`` keyword, kept
in checkpoints by the library) goes in :data:`LOOP_OPTIONS`: both commands then have
it, pass it to ``SGD`` (:func:`gpunet.cli.settings.loop_keywords`), record it in their
checkpoints and metrics headers, and check its recorded value on ``--resume``
(:mod:`gpunet.cli.recorded`).

The sweep's old spellings still work, with a note on stderr: ``--engine local|ray``
(now ``--executor``) and ``--stack-engine`` (now ``--engine``).
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

from ..backends import DEVICES_HELP
from ..engines import ENGINE_NAMES
from ..io.fields import (Check, boolean, choice, number, optional, since,
                         text, whole)
from ..training.hooks import SCHEDULES
from ..model.costs import COSTS

MONITORS = ("monitor_training_cost", "monitor_training_accuracy", "monitor_evaluation_cost")
"""The monitors the commands choose (they always monitor evaluation accuracy)."""

TECHNIQUES = ("momentum", "l1", "dropout", "early_stopping_n", "eta_schedule",
              "eta_schedule_n", "eta_floor")
"""Chapter 3's techniques the commands choose (``--momentum``, ``--l1``, ``--dropout``,
``--early-stop``, ``--eta-schedule`` and its n and floor), each ``SGD``'s keyword of the
same name."""

PER_NETWORK = ("momentum", "l1", "dropout")
"""Of :data:`TECHNIQUES`, those set per network: ``gpunet sweep`` takes them as lists
(``--momentum 0,0.5,0.9``), swept like ``--eta`` and ``--lmbda``, so they reach each stack
from its grid (:func:`gpunet.sweep.grid.expand_grid`), not as one keyword for all."""

LOOP_OPTIONS = MONITORS + TECHNIQUES
"""Options that reach the training loop as ``SGD``'s keyword of the same name, the same
for ``train`` and ``sweep``; each is declared in :data:`OPTIONS` with its ``record``
check. ``--engine`` reaches it too (a sweep records it as ``stack_engine``)."""

WATCHING = {"early_stopping_n": "--early-stop", "eta_schedule": "--eta-schedule",
            "save_best": "--save-best"}
"""The options that choose epochs by the evaluated data's accuracy (they need
``--evaluate validation``: :func:`check_watching`)."""

COST_NAMES = tuple(dict.fromkeys(cost.name for cost in COSTS.values()))
"""``--cost``'s choices: every declared cost's name (:mod:`gpunet.model.costs`), so a new
cost is a choice of both commands (and of their checkpoints' records) as it is declared."""

EXECUTORS = ("local", "ray")
"""Where a sweep's stacks train: ``--executor``."""


@dataclass(frozen=True)
class Option:
    """One command-line option: its flags, argparse's keywords (``settings``), what
    differs by command (``commands``: ``{"sweep": {"metavar": ...}}``), and how a
    checkpoint's record of it is checked (``record``; ``None``: checked by hand where a
    command records it)."""

    flags: tuple[str, ...]
    settings: Mapping[str, Any]
    commands: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    record: Optional[Check] = None

    def add(self, parser: argparse.ArgumentParser, command: str) -> None:
        parser.add_argument(*self.flags, **{**self.settings, **self.commands.get(command, {})})


def option(*flags: str, record: Optional[Check] = None,
           commands: Optional[Mapping[str, Mapping[str, Any]]] = None,
           **settings: Any) -> Option:
    return Option(flags, settings, commands or {}, record)


def path(text: str) -> str:
    """A file or folder named on the command line: any text but the empty one, which
    (from ``--save-dir ""`` or an unset shell variable) meant this folder to some
    readers, no output at all to others (a sweep saved nothing, silently)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path; give a file or folder name "
                                         "('.' is this folder)")
    longest = max(text.replace(os.sep, "/").split("/"), key=lambda n: len(os.fsencode(n)))
    if len(os.fsencode(longest)) > NAME_MAX:  # else an OSError later, naming no option
        raise argparse.ArgumentTypeError(
            f"a name in it is {len(os.fsencode(longest))} bytes long ({longest[:40]}...); "
            f"file systems take at most {NAME_MAX}")
    return text


NAME_MAX = 255
"""The longest file or folder name (in bytes) of the usual file systems (ext4, XFS,
APFS, NTFS)."""


def sizes(text: str) -> list[Any]:
    """``--sizes 784,30,10`` as a list of layer sizes; ``auto,30,10``: the input layer
    is the data's width (:func:`gpunet.cli.inputs.resolve_sizes`), kept as ``"auto"``
    until the data is known."""
    parts = text.split(",")
    auto = parts[0].strip() == AUTO
    try:
        values = [int(s) for s in parts[1 if auto else 0:]]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers like 784,30,10 "
            "(or auto,30,10: the input layer from the data)"
        ) from None
    if len(values) + auto < 2 or (values and min(values) < 1) or not values:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give at least two positive layer sizes, like 784,30,10 "
            "(or auto,30,10: the input layer from the data)"
        )
    return [AUTO, *values] if auto else values


AUTO = "auto"
"""``--sizes auto,...``: the input layer's size is the data's inputs per example."""


def validation(text: str) -> Union[int, float]:
    """``--validation 10000`` (examples) or ``0.1`` (a share of the training data)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if value.is_integer() and value >= 1 and "." not in text:
        return int(value)
    if 0 < value < 1:
        return value
    raise argparse.ArgumentTypeError(
        f"{text!r}: give a number of examples (10000) or a fraction between 0 and 1 (0.1)")


# ------------------------------------------------------------ the sweep's old spellings
class Choices(tuple):  # type: ignore[type-arg]
    """Choices that argparse shows and lists in its error (``self``), and that accept
    more (old spellings, handled by the option's action)."""

    also: tuple[str, ...] = ()

    def __contains__(self, value: object) -> bool:
        return tuple.__contains__(self, value) or value in self.also


def choices(shown: Sequence[str], also: Sequence[str] = ()) -> Choices:
    out = Choices(shown)
    out.also = tuple(also)
    return out


def note(namespace: argparse.Namespace, text: str) -> None:
    """Keep a ``gpunet: note:`` line for the command to print before it starts."""
    notes: list[str] = getattr(namespace, "_notes", [])
    notes.append(text)
    setattr(namespace, "_notes", notes)


class SweepEngine(argparse.Action):
    """``sweep --engine``: the step engine, as in ``train``; ``local`` and ``ray``
    (where the stacks train) are its old meaning, taken as ``--executor``, with a note."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Optional[str] = None) -> None:
        if values not in EXECUTORS:
            setattr(namespace, self.dest, values)
            return
        setattr(namespace, "executor", values)
        explicit: set[str] = getattr(namespace, "_explicit", set())
        explicit.discard(self.dest)
        explicit.add("executor")
        setattr(namespace, "_explicit", explicit)
        note(namespace, f"sweep --engine {values} is spelled --executor {values} now "
             "(--engine chooses the step engine, as in gpunet train)")


class StackEngine(argparse.Action):
    """``sweep --stack-engine X``: the old spelling of ``--engine X``, with a note."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Optional[str] = None) -> None:
        setattr(namespace, self.dest, values)
        note(namespace, f"sweep --stack-engine {values} is spelled --engine {values} now "
             "(as in gpunet train)")


class Refused(argparse.Action):
    """An option of the other command, refused with what to give instead (``hint``),
    instead of argparse's bare "unrecognized arguments"."""

    def __init__(self, option_strings: Sequence[str], dest: str, hint: str = "",
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.hint = hint

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Optional[str] = None) -> None:
        raise argparse.ArgumentError(self, self.hint)


# ------------------------------------------------------------ the declarations
ENGINE_HELP = ("how each epoch's steps run: fused (CUDA) trains a whole epoch in one kernel "
               "launch, eager step by step, cpu step by step in fewer NumPy calls; auto "
               "takes fused on CUDA where the network fits, cpu on the CPU for the book's "
               "costs, else eager")

OPTIONS: dict[str, Option] = {
    "device": option("--device", default="auto",
                     help=f"where to compute: {DEVICES_HELP}; auto takes CUDA when CuPy and "
                     "a GPU work here, else the CPU"),
    "sizes": option("--sizes", type=sizes, default=[AUTO, 30, 10],
                    help="neurons per layer, comma-separated; auto: the input layer is the "
                    "data's inputs per example (default: auto,30,10, which is 784,30,10 "
                    "on MNIST)"),
    "epochs": option("--epochs", type=int, default=30, help="training epochs"),
    "batch_size": option("--batch-size", type=int, default=10, help="mini-batch size m"),
    "eta": option("--eta", type=float, default=3.0, help="learning rate η"),
    "cost": option("--cost", choices=COST_NAMES, default="quadratic",
                   help="cost function"),
    "init": option("--init", choices=["large", "default"], default="large",
                   help="large: N(0,1) weights (chapter 1); default: N(0,1/n_in) weights "
                   "(network2.py)"),
    "activation": option("--activation", type=lambda text: hidden_neurons(text),
                         default="sigmoid", metavar="NEURON",
                         record=since("sigmoid", lambda value, field: recorded_neurons(
                             value, field)),
                         help="the hidden layers' neurons (chapter 3): sigmoid (the book's), "
                         "tanh or relu, or one per hidden layer, comma-separated (relu,tanh); "
                         "the output layer is the sigmoid, or the softmax with --cost "
                         "log-likelihood"),
    "lmbda": option("--lmbda", type=float, default=0.0, help="L2 regularization λ"),
    "seed": option("--seed", type=int, default=None,
                   help="random seed (default: a fresh one, printed)"),
    "dtype": option("--dtype", choices=["float32", "float64"], default="float32",
                    help="floating-point precision"),
    "engine": option("--engine", choices=ENGINE_NAMES, default="auto", help=ENGINE_HELP,
                     commands={"sweep": {"action": SweepEngine,  # its old meaning too
                                         "choices": choices(ENGINE_NAMES, also=EXECUTORS)}}),
    "data": option("--data", metavar="PATH", type=path, default=None,
                   help="the data set: a directory of IDX files (gzipped or not: MNIST, "
                   "Fashion-MNIST, KMNIST), the book's mnist.pkl.gz, an .npz archive "
                   "(x_train, y_train, x_test, y_test, as Keras names them), a CSV file "
                   "(the label first, one example a line) or a directory holding "
                   "train.csv and test.csv (or mnist_train.csv and mnist_test.csv); "
                   "integer pixels 0-255 are scaled as MNIST's, floats taken as given "
                   "(default: the bundled MNIST)"),
    "test_data": option("--test-data", metavar="PATH", type=path, default=None,
                        help="the test set, where --data is a training file without one: "
                        "a CSV file (the label first) or an .npz archive"),
    "validation": option("--validation", type=validation, default=None, metavar="N",
                         help="hold out the last N training examples (or a fraction, 0.1) "
                         "as the validation set, for a data set without one (--evaluate "
                         "validation scores it)"),
    "expand": option("--expand", action="store_true", record=since(False, boolean),
                     help="train on the book's expanded set (chapter 3, expand_mnist.py): "
                     "each training image and its shifts by one pixel down, up, right and "
                     "left, five times as many (MNIST's 50,000 become 250,000), shuffled "
                     "with a fixed seed; after --validation splits; built once and kept "
                     "in $GPUNET_CACHE_DIR (default ~/.cache/gpunet, about 200 MB)"),
    "limit": option("--limit", type=int, default=None, metavar="N",
                    help="train on the first N training images only (default: all)"),
    "evaluate": option("--evaluate", choices=["test", "validation"], default="test",
                       help="the data scored after each epoch"),
    "monitor_training_cost": option(
        "--monitor-training-cost", action="store_true", record=boolean,
        help="also report the cost on the training data each epoch"),
    "monitor_training_accuracy": option(
        "--monitor-training-accuracy", action="store_true", record=boolean,
        help="also report the accuracy on the training data each epoch"),
    "monitor_evaluation_cost": option(
        "--monitor-evaluation-cost", action="store_true", record=boolean,
        help="also report the cost on the evaluated data each epoch"),
    # the outputs
    "save": option("--save", metavar="PATH", type=path, default=None,
                   help="write the trained network (network2.py JSON)"),
    "save_dir": option("--save-dir", metavar="DIR", type=path, default=None,
                       help="save every trained network (network2.py JSON) into DIR"),
    "metrics": option("--metrics", metavar="PATH", type=path, default=None, commands={
        "train": {"help": "write a header (settings, device, versions) and per-epoch metrics "
                  "as JSON Lines; a resumed run appends; - writes them to standard output "
                  "(the other lines then go to stderr)"},
        "sweep": {"help": "write one JSON Lines row per run per epoch; - writes them to "
                  "standard output (the other lines then go to stderr)"}}),
    "checkpoint": option("--checkpoint", metavar="PATH", type=path, default=None, commands={
        "train": {"help": "after every epoch, write what --resume needs to continue the run "
                  "exactly"},
        "sweep": {"help": "after every epoch, write the sweep's state (the finished stacks' "
                  "results, the running stack's networks) for --resume"}}),
    "resume": option("--resume", metavar="PATH", type=path, default=None, commands={
        "train": {"help": "continue the run in checkpoint PATH until --epochs in all "
                  "(default: the run's own); its settings and data are the run's, and it "
                  "goes on writing PATH unless --checkpoint says otherwise"},
        "sweep": {"help": "continue the sweep in checkpoint PATH with its own settings; it "
                  "goes on writing PATH unless --checkpoint says otherwise"}}),
    "plot": option("--plot", type=path, default=None, commands={
        "train": {"metavar": "PATH", "help": "draw the learning curves into PATH (PNG; needs "
                  "the plot extra, matplotlib)"},
        "sweep": {"metavar": "PATH.png", "help": "overlay every run's accuracy curve (needs "
                  "the 'plot' extra)"}}),
    "overwrite": option("--overwrite", action="store_true",
                        help="replace an existing --checkpoint file (without it, a checkpoint "
                        "is only ever continued, by --resume)"),
    "quiet": option("--quiet", action="store_true",
                    help="no progress line (there is none when stderr is not a terminal "
                    "either); the per-epoch lines stay"),
    # chapter 3's techniques (LOOP_OPTIONS: SGD's keywords of the same names)
    "momentum": option("--momentum", type=float, default=0.0, metavar="MU",
                       record=since(0.0, number(low=0)),
                       help="momentum coefficient μ (chapter 3, eq. 107 and 108): 0 is "
                       "plain SGD, 0.9 is usual"),
    "l1": option("--l1", type=float, default=0.0, metavar="LAMBDA",
                 record=since(0.0, number(low=0)),
                 help="L1 regularization λ₁ (chapter 3, eq. 95 to 97), beside --lmbda's L2"),
    "dropout": option("--dropout", type=float, default=0.0, metavar="P",
                      record=since(0.0, number(low=0)),
                      help="dropout (chapter 3): each mini-batch step removes each hidden "
                      "neuron with probability P (the book's 0.5), the same neurons on "
                      "every engine (a counter-based generator); evaluation scales the "
                      "weights out of hidden layers by 1 - P; 0 is off"),
    "early_stopping_n": option(
        "--early-stop", dest="early_stopping_n", type=int, default=0, metavar="N",
        record=since(0, whole(0)),
        help="stop a network after N epochs in a row without a better accuracy on the "
        "evaluated data (network2.py's early_stopping_n; needs --evaluate validation)"),
    "eta_schedule": option(
        "--eta-schedule", choices=tuple(SCHEDULES), default=None,
        record=since(None, optional(choice(*SCHEDULES))),
        help="halve: the book's learning-rate schedule, η halved after "
        "--eta-schedule-n epochs without a better accuracy on the evaluated data, the "
        "network stopped once η is --eta-floor of its start (needs --evaluate validation)"),
    "eta_schedule_n": option("--eta-schedule-n", type=int, default=10, metavar="N",
                             record=since(10, whole(1)),
                             help="the schedule's epochs without improvement before it "
                             "halves η (the book's no-improvement-in-ten)"),
    "eta_floor": option("--eta-floor", type=float, default=1 / 128, metavar="FRACTION",
                        record=since(1 / 128, number(above=0)),
                        help="the schedule stops a network once η has fallen to this "
                        "fraction of its start (the book's 1/128)"),
    "save_best": option("--save-best", metavar="PATH", type=path, default=None,
                        help="write the network of the epoch with the best accuracy on the "
                        "evaluated data (network2.py JSON; needs --evaluate validation)"),
    # a sweep's own
    "save_one": option("--save", dest="save", default=argparse.SUPPRESS, action=Refused,
                       help=argparse.SUPPRESS, hint="a sweep saves every network it trains: "
                       "give --save-dir DIR (one network2.py JSON file per network)"),
    "etas": option("--eta", dest="eta", default="3.0", metavar="LIST",
                   help="learning rates η, comma-separated, e.g. 0.025,0.25,2.5"),
    "lmbdas": option("--lmbda", dest="lmbda", default="0.0", metavar="LIST",
                     help="L2 regularization parameters λ, comma-separated"),
    "momenta": option("--momentum", dest="momentum", default="0", metavar="LIST",
                      record=since("0", text),
                      help="momentum coefficients μ, comma-separated, e.g. 0,0.5,0.9 "
                      "(chapter 3, eq. 107 and 108; 0 is plain SGD)"),
    "l1s": option("--l1", dest="l1", default="0", metavar="LIST", record=since("0", text),
                  help="L1 regularization parameters λ₁, comma-separated (chapter 3, "
                  "eq. 95 to 97)"),
    "dropouts": option("--dropout", dest="dropout", default="0", metavar="LIST",
                       record=since("0", text),
                       help="dropout rates p, comma-separated, e.g. 0,0.2,0.5 (chapter 3, "
                       "\"Dropout\": each hidden neuron out of a step with probability p)"),
    "seeds": option("--seeds", "--seed", dest="seeds", default="0", metavar="LIST",
                    help="seeds, comma-separated, with ranges: 0-9 or 0-2,10"),
    "executor": option("--executor", choices=EXECUTORS, default="local",
                       help="local: train the stacks on this machine; ray: send each stack "
                       "to a Ray cluster as a task (needs the 'ray' extra)"),
    "stack_engine": option("--stack-engine", dest="engine", choices=ENGINE_NAMES,
                           default=argparse.SUPPRESS,
                           action=StackEngine, help=argparse.SUPPRESS),  # the old spelling
    "stack": option("--stack", type=int, default=None, metavar="N",
                    help="at most N networks per stack (default: what fits in a quarter of "
                    "the device's free memory, at most 256)"),
    "workers": option("--workers", type=int, default=None, metavar="N",
                      help="processes the stacked CPU engine splits a stack's networks over, "
                      "this one included (default: one per CPU for a stack large enough to "
                      "pay for starting them; results do not depend on it)"),
    "ray_address": option("--ray-address", metavar="ADDRESS", default=None,
                          help="join this Ray cluster (e.g. auto); default: start a local "
                          "Ray instance and shut it down at the end"),
    "ray_runtime_env": option("--ray-runtime-env", metavar="JSON", default=None,
                              help="Ray runtime_env for the workers, e.g. to ship or install "
                              "gpunet"),
    "ray_cpus_per_task": option("--ray-cpus-per-task", type=int, default=None, metavar="N",
                                help="CPUs (BLAS threads) each Ray task asks for (default: as "
                                "many as NumPy uses here, so rows match --executor local "
                                "exactly)"),
}
"""Every option of ``train`` and ``sweep``, by name (its ``dest`` unless it says
another)."""

TRAIN = ("device", "sizes", "epochs", "batch_size", "eta", "cost", "init", "activation",
         "lmbda", "seed",
         "dtype", "engine", "data", "test_data", "validation", "expand", "limit", "evaluate",
         *LOOP_OPTIONS, "save", "save_best", "metrics",
         "checkpoint", "resume", "plot", "overwrite", "quiet")
"""``gpunet train``'s options, in ``--help``'s order."""

SWEEP = ("device", "sizes", "epochs", "batch_size", "cost", "init", "activation", "dtype",
         "data",
         "test_data", "validation", "expand", "limit", "evaluate",
         *(name for name in LOOP_OPTIONS if name not in PER_NETWORK), "etas", "lmbdas",
         "momenta", "l1s", "dropouts", "seeds", "executor", "stack",
         "engine", "stack_engine", "workers", "metrics", "save_dir", "save_one", "plot",
         "checkpoint", "resume", "overwrite", "quiet", "ray_address", "ray_runtime_env",
         "ray_cpus_per_task")
"""``gpunet sweep``'s options, in ``--help``'s order."""


def check_techniques(args: argparse.Namespace, names: Sequence[str]) -> None:
    """Chapter 3's options ``names`` (of :data:`TECHNIQUES`) checked as ``SGD`` checks
    its keywords, before any work: one error naming the option."""
    from ..training.settings import check_setting

    for name in names:
        if not isinstance(getattr(args, name), str):  # a sweep's lists: in its grid
            try:
                check_setting(name, getattr(args, name))
            except ValueError as exc:
                raise ValueError(f"{OPTIONS[name].flags[0]}: {exc}") from None


def check_watching(args: argparse.Namespace) -> None:
    """Chapter 3's options (:data:`TECHNIQUES`) checked as ``SGD`` checks its keywords,
    before any work (one error naming the option); and the options of :data:`WATCHING`,
    which choose epochs by the accuracy on the evaluated data: on the test set that score
    would be optimistic, so they need ``--evaluate validation``."""
    check_techniques(args, TECHNIQUES)
    given = [flag for name, flag in WATCHING.items() if getattr(args, name, None)]
    if given and args.evaluate != "validation":
        raise ValueError(f"{' and '.join(given)} choose{'s' if len(given) == 1 else ''} "
                         f"epochs by the accuracy on the evaluated data, which is the "
                         f"{args.evaluate} set here: its score would then be optimistic. "
                         "Add --evaluate validation (data the networks never train on).")


def hidden_neurons(text: str) -> Union[str, list[str]]:
    """``--activation relu`` (every hidden layer) or ``relu,tanh`` (one per hidden layer),
    each a hidden neuron's name (:func:`gpunet.model.activations.hidden_names_tuple`)."""
    from ..model.activations import hidden_names_tuple

    names, known = [part.strip() for part in text.split(",")], hidden_names_tuple()
    for name in names:
        if name not in known:
            raise argparse.ArgumentTypeError(
                f"{name!r} is not a hidden layer's neuron; use {', '.join(known)} (the "
                "softmax is --cost log-likelihood's output layer)")
    return names[0] if len(names) == 1 else names


def recorded_neurons(value: Any, field: str) -> Union[str, list[str]]:
    """A record's ``activation``: a hidden neuron's name, or a list of them."""
    from ..model.activations import hidden_names_tuple

    one = choice(*hidden_names_tuple())
    if isinstance(value, list) and value:
        return [one(v, f"{field}[{i}]") for i, v in enumerate(value)]
    return str(one(value, field))


def add_options(parser: argparse.ArgumentParser, command: str, names: Sequence[str]) -> None:
    """Add the options ``names`` to ``command``'s parser, and note which the user typed."""
    for name in names:
        OPTIONS[name].add(parser, command)
    _record_explicit_options(parser)


def add_device(parser: argparse.ArgumentParser) -> None:
    """``--device``, as every command that computes has it."""
    OPTIONS["device"].add(parser, "")


def default_of(name: str) -> Any:
    """Option ``name``'s value when not given (``False`` for a flag)."""
    settings = OPTIONS[name].settings
    return settings.get("default", False if settings.get("action") == "store_true" else None)


def choices_of(name: str) -> tuple[str, ...]:
    """The values option ``name`` takes (those ``--help`` shows)."""
    return tuple(OPTIONS[name].settings["choices"])


def _record_explicit_options(parser: argparse.ArgumentParser) -> None:
    """Make every option note its ``dest`` in ``namespace._explicit`` when given.

    ``--resume`` must tell an option the user typed (which must agree with the
    checkpoint) from a default (which the checkpoint overrides), even where the two
    values are equal.
    """
    for action in parser._actions:
        if not action.option_strings or action.dest == "help" or getattr(
                action, "_records_explicit", False):
            continue
        base = type(action)

        def call(self: argparse.Action, parser: argparse.ArgumentParser,
                 namespace: argparse.Namespace, values: Any, option_string: Any = None,
                 _base: type = base) -> None:
            _refuse_contradictions(self, namespace, values, option_string)
            explicit: set[str] = getattr(namespace, "_explicit", set())
            explicit.add(self.dest)
            setattr(namespace, "_explicit", explicit)
            _base.__call__(self, parser, namespace, values, option_string)

        action.__class__ = type(base.__name__, (base,), {"__call__": call,
                                                        "_records_explicit": True})


def _refuse_contradictions(action: argparse.Action, namespace: argparse.Namespace,
                           values: Any, option_string: Optional[str]) -> None:
    """Two spellings that set one thing to different values (``--seeds 0-1 --seed 3``,
    ``--engine ray --executor local``) are one error: which one was meant? (One flag
    given twice keeps its last value, as argparse does.)"""
    target = ("executor" if isinstance(action, SweepEngine) and values in EXECUTORS
              else action.dest)
    given: dict[str, tuple[str, Any]] = getattr(namespace, "_given", {})
    earlier = given.get(target)
    if earlier is not None and earlier[0] != option_string and earlier[1] != values:
        raise argparse.ArgumentError(
            action, f"{option_string} {_typed(values)} contradicts {earlier[0]} "
            f"{_typed(earlier[1])}, given before; give one of them")
    given[target] = (str(option_string), values)
    setattr(namespace, "_given", given)


def _typed(value: Any) -> str:
    """An option's value as typed (``784,30,10``; nothing for a flag)."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "" if value is None else str(value)


def explicit_options(args: argparse.Namespace) -> set[str]:
    """The ``dest`` of every option the user typed."""
    return set(getattr(args, "_explicit", set()))


def print_notes(args: argparse.Namespace) -> None:
    """The notes the old spellings left (``gpunet: note: ...``), on stderr."""
    import sys

    for text in getattr(args, "_notes", []):
        print(f"gpunet: note: {text}", file=sys.stderr, flush=True)


