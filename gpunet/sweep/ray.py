"""The Ray executor of ``gpunet sweep`` (``--executor ray``): each stack of networks is
one Ray task.

The unit of work is a stack (:func:`gpunet.sweep.local.train_stack`), so a GPU worker trains
many networks per task. The training and evaluation data go to the cluster's object
store once and every task reads them from there. Each finished stack's rows come back
as they are, so a sweep on Ray gives exactly the rows of the local executor (the same
function trains each stack, with the same data and seeds).

Ray is optional (the ``ray`` extra) and imported only here, only when used.
Workers need gpunet importable: installed on every node, or shipped with a
``runtime_env`` (``--ray-runtime-env``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Iterator, Optional, Sequence

from ..backends.hints import install_hint
from .grid import Run, SweepSettings
from .local import StackResult, train_stack

RAY_EXTRA_HINT = install_hint("ray")


def import_ray() -> Any:
    """The ``ray`` module, or a ``ValueError`` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise ValueError(f"--executor ray needs Ray, which is not installed here; "
                         f"install {RAY_EXTRA_HINT}.") from None
    return ray


def parse_runtime_env(text: Optional[str]) -> Optional[dict[str, Any]]:
    """``--ray-runtime-env`` (a JSON object) as a dict; ``ValueError`` saying why not."""
    if text is None:
        return None
    try:
        env = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--ray-runtime-env is not JSON ({exc.msg}); give an object like "
                         "'{\"pip\": [\"gpunet @ file:///path/to/gpunet\"]}'.") from None
    if not isinstance(env, dict):
        raise ValueError("--ray-runtime-env must be a JSON object, e.g. "
                         "'{\"env_vars\": {\"OMP_NUM_THREADS\": \"2\"}}'.")
    return env


def run_ray(settings: SweepSettings, stacks: Sequence[Sequence[Run]], training: Any,
            evaluation: Any, address: Optional[str] = None,
            runtime_env: Optional[dict[str, Any]] = None,
            cpus_per_task: Optional[int] = None,
            log: Callable[[str], None] = print) -> Iterator[tuple[int, StackResult]]:
    """Train every stack as a Ray task; yield ``(i, result)`` as stack ``i`` finishes.

    With ``address`` (e.g. ``"auto"`` or ``"ray://head:10001"``) this joins an existing
    cluster; without it, it uses the Ray instance this process already started, or
    starts a local one and shuts it down afterwards.

    Each task asks for ``cpus_per_task`` CPUs (default: as many as NumPy's BLAS uses
    in this process, at most a node's CPUs). Ray gives a task that many BLAS threads,
    and a matrix product's rounding can depend on the thread count, so this is what
    makes a task's rows exactly the local executor's on the same kind of machine.
    """
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
        if runtime_env:
            kwargs["runtime_env"] = runtime_env
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
            raise ValueError(f"cannot start or join {where}: {exc}") from None
        started = True
    try:
        device = settings.device
        wants_gpu = device.startswith("cuda")
        if wants_gpu and device != "cuda":
            # Ray gives each task its GPU as the only visible one: cuda:N means nothing
            # there, so every task uses its own "cuda".
            log(f"note: --device {device} runs as 'cuda' on the Ray GPU each task gets")
            settings = dataclasses.replace(settings, device="cuda")
        if wants_gpu and not ray.cluster_resources().get("GPU", 0):
            raise ValueError(f"--device {device} asks for a GPU per task, but the Ray "
                             "cluster has none; use --device cpu or auto.")
        cpus = cpus_per_task or blas_threads_here()
        largest = _largest_node_cpus(ray)
        if largest and cpus > largest:
            log(f"note: {cpus} CPUs per task asked for, but the largest Ray node has "
                f"{largest}; using {largest}")
            cpus = largest
        if settings.workers is None:  # a task's stack uses the CPUs it asked for
            settings = dataclasses.replace(settings, workers=cpus)
        task = ray.remote(num_cpus=cpus, num_gpus=1 if wants_gpu else 0,
                          max_retries=0)(train_stack)
        training_ref, evaluation_ref = ray.put(training), ray.put(evaluation)
        pending = {task.remote(settings, list(runs), training_ref, evaluation_ref): i
                   for i, runs in enumerate(stacks)}
        log(f"ray: {len(pending)} stack(s) sent to {_describe(ray)}")
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(done[0])
            try:
                result = ray.get(done[0])
            except Exception as exc:
                raise _task_error(exc, i) from None
            yield i, result
    finally:
        if started:
            ray.shutdown()


def blas_threads_here() -> int:
    """The number of threads NumPy's BLAS uses in this process (from the environment
    variables OpenBLAS and OpenMP read, else the CPUs this process may run on)."""
    import os

    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.strip().isdigit() and int(value) > 0:
            return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _largest_node_cpus(ray: Any) -> int:
    try:
        return int(max(node.get("Resources", {}).get("CPU", 0)
                       for node in ray.nodes() if node.get("Alive", True)))
    except Exception:
        return 0


def _describe(ray: Any) -> str:
    try:
        resources = ray.cluster_resources()
        cpus, gpus = int(resources.get("CPU", 0)), int(resources.get("GPU", 0))
        return f"a Ray cluster of {cpus} CPU(s) and {gpus} GPU(s)"
    except Exception:
        return "the Ray cluster"


def _task_error(exc: Exception, i: int) -> Exception:
    """A failed task as the error a user can act on (``ValueError`` for the CLI)."""
    cause = getattr(exc, "cause", None) or exc
    if isinstance(cause, ValueError):
        return ValueError(f"stack {i + 1}: {cause}")
    text = str(cause)
    if isinstance(cause, ModuleNotFoundError) or "No module named 'gpunet" in str(exc):
        return ValueError(
            "the Ray workers cannot import gpunet; install it on every node "
            "(pip install -e . in a checkout) or ship it with --ray-runtime-env.")
    return ValueError(f"stack {i + 1} failed on Ray: {type(cause).__name__}: "
                      f"{text.strip().splitlines()[-1] if text.strip() else ''}")
