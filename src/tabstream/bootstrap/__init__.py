"""The composition roots, one module per entry point: ``api`` (``tabstream api``), ``worker``
(``tabstream worker``), ``stack`` (``tabstream up``: both in one process) and ``child`` (a job's
child process); ``common`` builds what they share. Only these modules (and the CLI, through
them) pick concrete adapters. Import the module you need: this package imports nothing.
"""
