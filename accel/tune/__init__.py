"""Tuning: the best schedule of each operator and the best accelerator configuration.

- knobs: each topi operator's tunable space (``templates.py``, ``space.py``);
- measuring: timing-only runs of built candidates through the cycle model, with exact action
  counts (``measure.py``), energy and area from cited per-action figures (``energy.py``), an
  analytic predictor to rank and prune (``predict.py``);
- searching: :func:`tune` (exhaustive, model-guided or evolutionary; one or several objectives
  with their Pareto front), on any ``concurrent.futures`` executor up to a Dask cluster, with a
  resumable JSON-lines log (``log.py``);
- applying: :func:`apply_history_best` makes topi's defaults the best logged tiles; the table
  shipped in ``accel/topi/tuned/`` does that for ResNet-18 on the default configuration;
- hardware: configuration sweeps with cycles, energy and area per point (``sweep.py``).

See docs/tuning.md.
"""

from accel.tune.dispatch import apply_history_best, best_table, export_table, untuned
from accel.tune.energy import EnergyModel
from accel.tune.log import Record, read
from accel.tune.search import pareto_front
from accel.tune.space import Knob, Space, choice, split
from accel.tune.tasks import (
    Task,
    conv2d_task,
    dense_task,
    extract_tasks,
    resnet18_tasks,
    vector_task,
)
from accel.tune.templates import TEMPLATES, Template, template_of
from accel.tune.tuner import TuneResult, tune

__all__ = [
    "TEMPLATES",
    "EnergyModel",
    "Knob",
    "Record",
    "Space",
    "Task",
    "Template",
    "TuneResult",
    "apply_history_best",
    "best_table",
    "choice",
    "conv2d_task",
    "dense_task",
    "export_table",
    "extract_tasks",
    "pareto_front",
    "read",
    "resnet18_tasks",
    "split",
    "template_of",
    "tune",
    "untuned",
    "vector_task",
]
