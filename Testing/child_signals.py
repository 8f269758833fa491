"""For tests that start a child process and send it SIGINT."""

import signal


def sigint_as_in_a_terminal() -> None:
    """``preexec_fn``: SIGINT at its default in the child, as a terminal's foreground command has it.

    A child of a background job (``nohup``, CI wrappers) inherits SIGINT ignored, and a process
    rightly keeps an inherited SIG_IGN; the Ctrl-C under test must reach the child all the same.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
