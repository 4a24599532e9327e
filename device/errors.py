"""The one error type the CLI turns into a single line on stderr and an exit status."""


class SoundsentryError(Exception):
    """A user-facing error: its message is one line naming the file, key or value at fault."""

    exit_code = 1


class UsageError(SoundsentryError):
    """Bad configuration or arguments: exit status 2, like argparse."""

    exit_code = 2
