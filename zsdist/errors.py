"""One error type for bad user input, so the CLI can print one line and exit 2 instead of a traceback."""


class ZsdistError(Exception):
    """A problem with what the user asked for (input, config, data path), not a bug in zsdist."""


class RunIncomplete(ZsdistError):
    """Some shards failed outright; the finished ones are kept and a relaunch computes the rest (exit 1)."""
