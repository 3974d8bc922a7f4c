"""One error root for the library; each subclass also inherits the matching built-in.

The CLI turns any DhliveError into a one-line message and exit code 2 (bad input or output)
or 1 (an engine fault), never a traceback.
"""


class DhliveError(Exception):
    exit_code = 1


class InputError(DhliveError, ValueError):
    """The user's input (audio, avatar, option) cannot be used."""

    exit_code = 2


class OutputError(DhliveError, OSError):
    """The output cannot be written (directory missing, not writable, disk full)."""

    exit_code = 2


class DependencyError(DhliveError, RuntimeError):
    """A required program or package (ffmpeg, onnxruntime) is missing or unusable."""

    exit_code = 2


class EngineError(DhliveError, RuntimeError):
    """A stage of the running pipeline failed (encoder died, model failed)."""

    exit_code = 1


class Cancelled(DhliveError):
    """The run was stopped by the user (Ctrl+C, SIGTERM) before it finished."""

    exit_code = 130


class InterruptedAfterOutput(KeyboardInterrupt):
    """Ctrl+C or SIGTERM that landed once the output was complete (in its last step, held back
    until that step was done): the command still stops with exit 130, and `line` says the
    output is there rather than that an unfinished one was removed."""

    def __init__(self, line: str):
        super().__init__(line)
        self.line = line
