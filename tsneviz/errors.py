"""The one error type that the CLI turns into a one-line message."""


class UserError(Exception):
    """Bad input from the user: printed as one line, exit status 2.

    The message says what was wrong and what to do about it, so it is shown
    as it is, without a traceback. Anything else that escapes is a bug and
    keeps its traceback.

    Examples:
        >>> raise UserError('checkpoint not found: x.pth; pass an existing '
        ...                 'file to --checkpoint')
    """

    exit_code = 2
