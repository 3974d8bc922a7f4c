"""The `dhlive` program's entry point: Ctrl+C while the command line is still loading, and a
prompt exit once a command has finished.

Loading the CLI (Typer, rich and every subcommand's module) takes 0.2-0.3 s; a Ctrl+C in that
time was a Python traceback (and a death by SIGINT) instead of the one line and exit status 130
every command gives once it runs. Nothing has been started or written then, so there is
nothing to clean up. What runs before this module (the interpreter's own start-up) cannot be
covered from here.

When the command has returned, the interpreter's own teardown (freeing every module, numpy's,
OpenCV's and onnxruntime's objects one by one) took 0.03-0.1 s more of a 1 s render's wall time,
after the output was complete. The process state it tears down is gone at exit anyway, so
`finish` runs what Python runs at exit that others can see (atexit handlers, e.g. logging's
flush of its handlers; the standard streams' flush) and leaves with os._exit. Files and servers
are closed by the commands themselves before they return (the metrics discovery file by
MetricsServer.close), as before. It falls back to the normal exit when a non-daemon thread is
still running (Python would wait for it) or a stream cannot be flushed (Python reports that
itself, exit status 120). The C library's own stdio buffers are not flushed by os._exit: nothing
in dhlive writes through them.
"""

import sys


def main() -> None:
    """Load the CLI and run it (cli.main); exit 130 with one line when interrupted while loading."""
    import signal

    # Ctrl+C raises from here on, also for a background job that inherited SIGINT ignored (cli.main
    # says why); set only in cli.main, a SIGINT during the 0.2-0.3 s of loading was lost
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _standard_descriptors()
    from dhlive_cli.outpaths import note_inherited_descriptors

    note_inherited_descriptors()  # before anything of ours is opened (outputs named /dev/fd/N)
    try:
        from dhlive_cli.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    stdout_at_start = _identity(1)
    try:
        run()
    except SystemExit as e:
        if e.code == 1 and _help_lost_its_reader(stdout_at_start):
            # Click and rich end help or the version whose reader went away (`dhlive --help |
            # head -1`) with exit 1 and no word; the commands end such a run with SIGPIPE's
            # status, 141 (commands.common.user_errors)
            e.code = 141
        finish(e.code)
        raise
    finish(0)


def _identity(what) -> tuple[int, int] | None:
    """(st_dev, st_ino) of a descriptor or a path; None when it cannot be looked at."""
    import os

    try:
        st = os.stat(what)
        return st.st_dev, st.st_ino
    except (OSError, ValueError):
        return None


def _help_lost_its_reader(stdout_at_start) -> bool:
    """Click (its PacifyFlushWrapper on sys.stdout) or rich (its on_broken_pipe: /dev/null put
    on descriptor 1) met EPIPE writing to standard output."""
    import os

    if type(sys.stdout).__name__ == "PacifyFlushWrapper":
        return True
    now = _identity(1)
    return now is not None and now != stdout_at_start and now == _identity(os.devnull)


def _standard_descriptors() -> None:
    """/dev/null on descriptors 0-2 where the process was started with them closed (`>&- 2>&-`).
    A closed one is the next descriptor the process opens: a pipe to an ffmpeg child landed on 2
    and the child was handed the wrong pipe (a render with stdout and stderr closed failed).
    Python's own sys.stdout/sys.stderr stay None: what is asked for there still fails
    (commands.common.ClosedStdout)."""
    import os

    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)  # inheritable, as dup2 makes it
                os.close(null)
            else:
                os.set_inheritable(fd, True)  # the children's 0-2 too (os.open's are close-on-exec)


def finish(code) -> None:
    """Exit now with `code` (a SystemExit code: None, an int or a message) if nothing is left
    that the interpreter's teardown would still do for others; otherwise return, and the caller
    exits the normal way. Raises nothing."""
    import atexit
    import os
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code & 0xFF
    else:
        # what SystemExit does with a message: it goes to stderr, the status is 1
        try:
            sys.stderr.write(f"{code}\n")
        except (OSError, ValueError, AttributeError):  # AttributeError: started with stderr closed
            return
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            if not isinstance(code, (int, type(None))):
                # the message was printed already; the normal exit must not print it twice
                sys.exit(1)
            return
    os._exit(status)
