"""The execution layer: where and how the engines' units of work run.

* :mod:`~fastprop.run.targets` — "cpu", "parallel", "cuda" and what "auto" picks;
* :mod:`~fastprop.run.compile` — the on-disk cache of compiled kernels;
* :mod:`~fastprop.run.schedule` — units of work here or on a Dask cluster
  (:mod:`~fastprop.run.distributed`, imported only with ``client=``);
* :mod:`~fastprop.run.checkpoint` — resumable chain runs written to disk;
* :mod:`~fastprop.run.progress` — progress bars (tqdm);
* :mod:`~fastprop.run.files` — result files (npz, netCDF), atomic writes;
* :mod:`~fastprop.run.resources` — memory checks before work starts.

Engines import targets, compile, schedule, progress, files and resources; never
the Dask or checkpoint modules, which import the engines.
"""
