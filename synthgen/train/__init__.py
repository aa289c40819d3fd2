"""Downstream multi-task training (gaze, head pose, age, expression) on a published dataset version.

The stage's door is ``synthgen.stages.run_train``. Nothing is imported here: importing the
``train:`` config section must not import torch.
"""
