"""The curate stage: accept or reject every labelled image, always with a reason code.

The stage's door is ``synthgen.stages.run_curate``; filters are found by name in
``synthgen.curate.base.FILTERS``.
"""
