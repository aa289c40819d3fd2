"""synthgen: synthetic in-cabin face data with controllable gaze, age and expression.

Stages (plan, generate, label, curate, publish, analyze, train) are plain functions in
:mod:`synthgen.stages`; the CLI, the DVC stages and the Prefect flows all call them.
"""

__version__ = "0.1.0"
