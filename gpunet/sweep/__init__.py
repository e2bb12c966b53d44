"""Sweeps: a grid of learning rates, regularization parameters and seeds, trained in stacks.

Chapter 3 ("How to choose a neural network's hyper-parameters?") chooses ``η`` by
training the same network with several values side by side, and reports results as
the best of several seeds. A sweep does that in one go: every combination of the
``η`` and ``λ`` lists, times every seed, as one *run* each; runs are grouped into
*stacks* of at most ``stack_size`` networks, each trained by a
:class:`gpunet.NetworkStack` (all networks of a stack in lockstep, on one device).

The unit of work is a stack (:func:`train_stack`): the local executor
(:func:`run_local`) trains the stacks one after another on this machine; the Ray
executor (:mod:`gpunet.sweep.ray`) sends them to a cluster as tasks. Both return the
same rows, one per run per epoch: the run, then the epoch's record in
:class:`gpunet.History`'s vocabulary, as ``gpunet train --metrics`` writes it::

    {"run": {"eta": 0.5, "lmbda": 0.0, "seed": 0}, "epoch": 0,
     "evaluation_correct": 9042, "evaluation_total": 10000, "train_seconds": 1.9}

(``training_cost``, ``training_correct`` / ``training_total`` and ``evaluation_cost``
when monitored; which data set ``evaluation_*`` is, test or validation, the metrics
file's header says). ``train_seconds`` is the whole stack's epoch, the only field that
depends on timing. Files written before this vocabulary (``test_correct``,
``validation_correct``, ...) are still read (:func:`gpunet.training.history.read_sweep_metrics`).

A local sweep keeps one checkpoint file (:class:`SweepCheckpoint`): the finished
stacks' rows and parameters and the running stack's state, written after every epoch,
so that a resumed sweep ends with exactly the rows and parameters of one never stopped.

A network that diverges (:mod:`gpunet.training.divergence`) gets the row ``{"run": ...,
"epoch": j, "diverged": true, "train_seconds": ...}`` for its epoch ``j`` and each later
one, keeps its last finite parameters, and is counted apart in the summary table; the
other networks of its stack go on. A stack stopped by Ctrl-C or SIGTERM returns what it
completed (:attr:`StackResult.interrupted`).

The package: :mod:`~gpunet.sweep.grid` (the runs, their settings and stacks),
:mod:`~gpunet.sweep.local` (training the stacks here, the sweep's checkpoint),
:mod:`~gpunet.sweep.results` (epoch lines, the summary table, saved networks, curves)
and :mod:`~gpunet.sweep.ray` (the Ray executor; Ray is imported only when used).
"""

from .grid import (MAX_DEFAULT_STACK, MAX_NETWORKS, Run, SweepSettings,
                   default_stack_size, exact_number, expand_grid, parse_floats, run_keys,
                   parse_seeds, split_into_stacks)
from .local import (StackResult, SweepCheckpoint, resumed_stacks, row, run_local,
                    stack_rows, train_stack)
from .results import (TIMING_FIELDS, epoch_line, network_filename, ordered_rows,
                      plot_curves, save_networks, summarize, summary_text, without_timing)

__all__ = ["MAX_DEFAULT_STACK", "MAX_NETWORKS", "Run", "SweepSettings", "default_stack_size",
           "exact_number", "expand_grid", "parse_floats", "run_keys", "parse_seeds", "split_into_stacks",
           "StackResult", "SweepCheckpoint", "resumed_stacks", "row", "run_local",
           "stack_rows", "train_stack", "TIMING_FIELDS", "epoch_line", "network_filename",
           "ordered_rows", "plot_curves", "save_networks", "summarize", "summary_text",
           "without_timing"]
