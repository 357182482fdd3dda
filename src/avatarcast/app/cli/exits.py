"""Exit codes, documented in the README: one place that `main` and the commands both import.

0 success; 1 the daemon failed while running, `prepare` found no face, or (`say --wait`) the
message failed and was dead-lettered; 2 bad usage, invalid settings or an unreadable source;
3 a required service or model was unusable (broker unreachable, no speech provider, weights not
downloadable); 4 (`say --wait`) the message was skipped, cleared or interrupted, not aired in
full; 5 (`say --wait`) the timeout passed before it aired; 130 interrupted.
"""

import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
EXIT_NOT_AIRED, EXIT_TIMED_OUT = 4, 5
EXIT_INTERRUPTED = 130


def fail(message: str, code: int) -> int:
    """A user's mistake or an unusable service: one line on stderr, and the code to exit with."""
    print(f"avatarcast: {message}", file=sys.stderr)
    return code
