"""The ``paramstack`` command line; only ``paramstack.__main__`` imports it."""
