"""What every command shares: one-line errors on stderr with the right exit code."""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import sys

import typer


class _StderrConsole:
    """rich's Console on stderr, made at its first use: importing rich.console takes 20-40 ms of
    a command's start-up, which a command that prints nothing (a `--quiet` render that works)
    never needs. Attributes and methods are the Console's (err_console.print, .is_terminal);
    `err_console.console` is the Console itself, for rich's Progress and Live."""

    _console = None

    @property
    def console(self):
        if _StderrConsole._console is None:
            from rich.console import Console

            # emoji=False: no ":name:" codes in our messages, and their table (rich._emoji_codes,
            # ~4 ms) is then not loaded at the end of every command
            _StderrConsole._console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
        return _StderrConsole._console

    def __getattr__(self, name):
        return getattr(self.console, name)

    @property
    def is_terminal(self) -> bool:
        """rich's answer (a terminal, or FORCE_COLOR / TTY_COMPATIBLE set), without making the
        Console (importing rich) where stderr is a plain pipe or file: the usual answer there."""
        err = sys.stderr
        if _StderrConsole._console is None and (err is None or not err.isatty()) and not any(
                os.environ.get(k) for k in ("FORCE_COLOR", "TTY_COMPATIBLE")):
            return False
        return self.console.is_terminal

    def status(self, word: str, style: str, rest: str) -> None:
        """One line `word rest` (a command's summary: "wrote out.mp4 ..."), `word` in rich's
        `style` where stderr shows colour; elsewhere (a pipe, a log file: what services and
        scripts see) written as plain text without importing rich at all. `rest` is text, not
        markup. Nothing is written when stderr was closed."""
        err = sys.stderr
        if err is None:
            return
        # FORCE_COLOR, TTY_COMPATIBLE: rich's own switches to colour a stream that is not a terminal
        if (_StderrConsole._console is None and not err.isatty()
                and not any(os.environ.get(k) for k in ("FORCE_COLOR", "TTY_COMPATIBLE"))):
            err.write(f"{word} {rest}\n")
            err.flush()
            return
        from rich.markup import escape

        self.console.print(f"[{style}]{word}[/] {escape(rest)}")


err_console = _StderrConsole()


def print_error(message: str) -> None:
    """The one `error:` line every failure ends in (rich markup: escape text that is not ours)."""
    err_console.print(f"[bold red]error:[/] {message}", markup=True, emoji=False)


def fail(message: str, code: int = 2) -> None:
    print_error(message)
    raise typer.Exit(code)


class ClosedStdout(io.TextIOBase):
    """sys.stdout of a process started with descriptor 1 closed (`dhlive --help >&-`), where
    Python leaves None and Click and rich then drop what they print without a word: every write
    fails instead, as a write to a closed descriptor does (EBADF), and cli.main turns that into
    one `error:` line and exit 2, as `ls --help >&-` reports it. Nothing is buffered: flush is a no-op."""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed")


def stdout_closed() -> bool:
    """True when the process has no standard output to write to (see ClosedStdout)."""
    return sys.stdout is None or isinstance(sys.stdout, ClosedStdout)


def refuse_closed_stdout(what: str) -> None:
    """Fail before any work (exit 2) when `what` (an option that writes to stdout) has no stdout
    to write to: the work would be done and its result lost, or reported as a failure after."""
    if stdout_closed():
        fail(f"{what}: standard output is closed")


def interrupted_line(output) -> str:
    """The line Ctrl+C ends a command writing `output` with: its unfinished file is removed (a
    file that was there before stays as it was), but stdout ("-"), a device or FIFO and a name
    of one of our descriptors (/dev/stdout) are written in place: nothing to remove."""
    from dhlive_cli.outpaths import is_special_file, names_own_descriptor

    if output is None or str(output) == "-" or is_special_file(output) or names_own_descriptor(output):
        return "interrupted"
    return "interrupted: unfinished output removed"


@contextlib.contextmanager
def user_errors(interrupted="interrupted"):
    """DhliveError -> 'error: ...' and its exit code; Ctrl+C -> `interrupted` (a line: what was
    done about the output, interrupted_line; or a function giving it when the stop lands, for a
    command whose output may be complete by then) and exit 130; never a traceback."""
    from dhlive_cli.errors import Cancelled, DhliveError

    try:
        yield
    except (Cancelled, KeyboardInterrupt) as e:
        # InterruptedAfterOutput: the signal came during the output's last step, which finished
        line = getattr(e, "line", None) or (interrupted() if callable(interrupted) else interrupted)
        err_console.print(line, markup=False, highlight=False)
        raise typer.Exit(130)
    except (DhliveError, OSError) as e:
        exit_quietly_if_reader_gone(str(e))  # BrokenPipeError's text says it too
        if isinstance(e, DhliveError):
            fail(escape_line(str(e)), e.exit_code)
        # a file or pipe the library did not anticipate
        fail(escape_line(os_error_line(e)), 2)
    except MemoryError:
        fail("out of memory", 1)


def os_error_line(e: OSError) -> str:
    """"NAME: reason" for an OSError that names its file ("/nonexist/a.csv: No such file or
    directory"), the reason alone otherwise."""
    name = getattr(e, "filename", None)
    why = e.strerror or str(e)
    return f"{name}: {why}" if name else why


def stdout_reader_gone() -> bool:
    """Standard output is a pipe or socket whose reading end has been closed (poll(2) reports
    POLLERR/POLLHUP on it): whatever is written there is lost. False for a file, a terminal, a
    closed stdout, or a reader still there."""
    import select
    import stat as st

    try:
        mode = os.fstat(1).st_mode
        if not (st.S_ISFIFO(mode) or st.S_ISSOCK(mode)):
            return False
        p = select.poll()
        p.register(1, 0)  # no events asked for: error and hang-up are always reported
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in p.poll(0))
    except (OSError, ValueError):
        return False


def exit_quietly_if_reader_gone(why: str) -> None:
    """A failure that says "Broken pipe" while stdout's reader has left (`dhlive lipsync x -o -
    | head -1`, `render -o - | ffplay -` closed early): the reader took what it wanted. Exit
    quietly, as a filter killed by SIGPIPE does, with its status (141); otherwise return."""
    if "Broken pipe" in why and stdout_reader_gone():
        quiet_broken_stdout()
        raise typer.Exit(141)


def quiet_broken_stdout() -> None:
    """Point descriptor 1 at /dev/null, so what is still buffered for it (Python flushes stdout
    at exit) goes nowhere instead of ending in a second BrokenPipeError report."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
    except OSError:
        pass


def escape_line(s: str) -> str:
    """The first line of s, safe to print as rich markup."""
    from rich.markup import escape

    return escape(s.splitlines()[0] if s else s)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def start_metrics(spec: str | None, snapshot, command: str, defer_s: float = 0.0):
    """--metrics HOST:PORT (default 127.0.0.1:0, an ephemeral loopback port) or 'off'.

    Returns a started MetricsServer, None for off, or with defer_s > 0 and port 0 a
    DeferredMetrics that starts the server defer_s seconds later (`render`: a job that ends
    within its first second has nothing to watch, and the server's imports are 30-40 ms of
    such a render's start-up). A port the user named is always bound at once, so a port in use
    is an error before the job starts. Raises InputError."""
    from dhlive_cli.errors import InputError

    if spec is None or spec.lower() == "off":
        return None
    host, _, port = spec.rpartition(":")
    if not port.isdigit() or int(port) > 65535:  # a bigger port number was a Python error in bind()
        raise InputError(f"--metrics {spec!r}: expected HOST:PORT (port 0-65535) or off")
    host = host or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
        raise InputError(f"--metrics {spec!r}: metrics are served on loopback only")

    deferred = defer_s > 0 and int(port) == 0

    def start():
        import psutil

        from dhlive_cli.metrics import MetricsServer

        proc = psutil.Process()

        def snap():
            s = snapshot()
            s.setdefault("rss_mb", proc.memory_info().rss / 2**20)
            return s

        try:
            # a render's server started at once leaves prometheus_client to the first scrape (its
            # imports would be on the start-up's path); deferred, it is on the timer's thread
            return MetricsServer(snap, host=host, port=int(port), command=command,
                                 build_now=deferred or command != "render")
        except OSError as e:
            raise InputError(f"--metrics {spec}: cannot listen: {e.strerror or e}") from e

    if deferred:
        return DeferredMetrics(start, defer_s)
    return start()


class DeferredMetrics:
    """A metrics server started `delay_s` seconds from now on a timer thread, unless close()
    comes first. `server` is the MetricsServer once started (None before, or if it could not
    listen: that is logged as a warning, the job goes on)."""

    def __init__(self, start, delay_s: float):
        import threading

        self._start = start
        self._lock = threading.Lock()
        self._closed = False
        self.server = None
        self._timer = threading.Timer(delay_s, self._run)
        self._timer.name = "dhlive-metrics-start"
        self._timer.daemon = True
        self._timer.start()

    def _run(self) -> None:
        from dhlive_cli.errors import InputError

        with self._lock:
            if self._closed:
                return
            try:
                self.server = self._start()
            except InputError as e:
                logging.getLogger("dhlive_cli.metrics").warning("%s", e)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:  # a start under way finishes first, then is closed here
            self._closed = True
            server, self.server = self.server, None
        if server is not None:
            server.close()


class ConsoleLogHandler(logging.Handler):
    """A logging handler that prints through a rich Console, so log lines appear above a live
    panel (rich Live, Progress) instead of being written across it."""

    def __init__(self, console):  # a rich.console.Console
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(self.format(record), markup=False, highlight=False, emoji=False)
        except Exception:  # noqa: BLE001 - a log line must never break the command
            self.handleError(record)


@contextlib.contextmanager
def logs_through(console):
    """While a rich Live/Progress panel is up on `console`, route the root logger's output
    through it (same format as before); the previous handlers come back afterwards."""
    root = logging.getLogger()
    old = list(root.handlers)
    handler = ConsoleLogHandler(getattr(console, "console", console))
    fmt = next((h.formatter for h in old if h.formatter is not None), None)
    if fmt is not None:
        handler.setFormatter(fmt)
    for h in old:
        root.removeHandler(h)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for h in old:
            root.addHandler(h)


def parse_fps(text: str) -> int:
    """An --fps value: a whole number of frames per second from 1 to 60 (int). Raises
    typer.BadParameter (one line) otherwise; a fractional NTSC rate (23.976, 29.97, 59.94, or
    30000/1001 written as a ratio) is named with the whole rate to use instead, since the
    session clock counts whole frames per second (timebase.py)."""
    from fractions import Fraction

    from dhlive_cli.timebase import MAX_FPS, MIN_FPS

    t = str(text).strip()
    try:
        value = Fraction(t)
    except (ValueError, ZeroDivisionError):
        raise typer.BadParameter(f"{t[:20]!r} is not a number of frames per second "
                                 f"(a whole number from {MIN_FPS} to {MAX_FPS}, e.g. 24, 25, 30, 50, 60)") from None
    if value.denominator != 1:
        near = round(value)
        hint = (f"; the NTSC rate {round(float(value), 3):g} is not supported, use {near}"
                if MIN_FPS <= near <= MAX_FPS and abs(value - Fraction(near * 1000, 1001)) < Fraction(1, 100) else "")
        raise typer.BadParameter(f"{t[:20]}: frames per second must be a whole number from {MIN_FPS} to {MAX_FPS}{hint}")
    if not MIN_FPS <= value <= MAX_FPS:
        raise typer.BadParameter(f"{t[:20]}: frames per second must be a whole number from {MIN_FPS} to {MAX_FPS}")
    return int(value)
