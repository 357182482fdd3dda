"""What a failure means to the person who started the daemon, so the command line can answer
with one line and the documented exit code instead of a traceback (which is for bugs)."""


class UserError(Exception):
    """The user's input or settings cannot work (a missing file, an image without a face):
    exit 2. The text says what to do."""


class Unavailable(Exception):
    """A required service or model cannot be used (weights missing, broker refusing): exit 3."""
