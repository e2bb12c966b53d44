"""``gpunet bench``: how fast gpunet trains, measured against its peers.

Tooling, not the library: nothing in the model, training or I/O modules imports this
package. :mod:`gpunet.bench.epochs` times seconds per epoch of each implementation
(gpunet's engines, PyTorch, JAX, scikit-learn, the book's loop) and writes the
``benchmarks/`` files; :mod:`gpunet.bench.sweep_vs_train` times ``gpunet sweep`` against
the same networks trained one ``gpunet train`` at a time. The numbers themselves, and
what they mean, are in ``docs/performance.md``.
"""

from .epochs import (CONFIGS, IMPLEMENTATIONS, benchmark, cpu_model, machine_info,
                     markdown_table, write_results)

__all__ = ["CONFIGS", "IMPLEMENTATIONS", "benchmark", "cpu_model", "machine_info",
           "markdown_table", "write_results"]
