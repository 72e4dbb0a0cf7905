"""The one exception type for mistakes a user can fix (bad flag, missing input, ...).

Entry points catch it and exit non-zero with its one-line message, no stack trace.
"""


class UserError(Exception):
    """A problem with the job's inputs or options, explained in one line."""
