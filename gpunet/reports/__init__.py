"""Reports on a run or a trained network: learning curves (:mod:`~gpunet.reports.plotting`,
``gpunet plot``) and how a network errs on MNIST (:mod:`~gpunet.reports.evaluation`,
``gpunet evaluate``: accuracy, confusion matrix, worst mistakes). Figures need the
``plot`` extra (matplotlib)."""
