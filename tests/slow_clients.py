"""A slow HTTP client for abuse tests and benchmarks: the slow-loris pattern the live API must shed."""

from __future__ import annotations

import asyncio


async def trickle(port: int, stop: asyncio.Event, head: bytes, every: float) -> None:
    """One connection after another to 127.0.0.1:`port`: send `head`, then one byte every `every`
    seconds until the server hangs up (then reconnect) or `stop` is set."""
    while not stop.is_set():
        w = eof = None
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            eof = asyncio.ensure_future(r.read())  # done when the server drops us
            w.write(head)
            while not stop.is_set() and not eof.done():
                await asyncio.wait([eof], timeout=every)
                w.write(b"X")
                await w.drain()
        except OSError:
            await asyncio.sleep(0.2)
        finally:
            if eof is not None:
                eof.cancel()
            if w is not None:
                w.transport.abort()
