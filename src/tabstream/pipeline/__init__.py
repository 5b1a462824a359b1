"""Pure ML, one folder per stage of a run: ``tasks`` -> ``distill`` -> ``search`` -> ``finish``,
with the model ``families``. ``train.run`` is the entry point of a training job, ``predict``
serves registered models; ``types`` and ``options`` are the shared vocabulary. No I/O of its
own: artifacts, events and teachers arrive as arguments, and so does the operator's
configuration (the pipeline reads no environment)."""
