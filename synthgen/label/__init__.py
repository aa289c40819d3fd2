"""The label stage: independent face models measure what each image shows (``meas_*`` columns).

The stage's door is ``synthgen.stages`` (``run_label``, ``label_shard``); labellers are found by
name in ``synthgen.label.base.LABELERS``. Nothing is imported here, so that importing a section
of the config does not load every model library.
"""
