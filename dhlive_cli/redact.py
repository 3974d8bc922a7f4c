"""Secrets out of everything shown: stream keys in RTMP URLs, credentials in any URL.

An RTMP URL is `rtmp://host[:port]/app/KEY`: whoever knows the key may publish to the channel,
so status, metrics, panels, logs and error lines show `rtmp://host:port/app/****` instead.
Two layers, because ffmpeg repeats the URL in its own messages:

- redact_url(url): the form to show for one URL (or a path, unchanged);
- redact_text(text, secrets): any text (an ffmpeg line, an exception) with every URL in it
  redacted, and every known secret (a key, a whole URL) replaced even where it stands alone.

(Named redact, not secrets: a top-level `secrets` module would shadow Python's own when this
folder is on sys.path.)
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

MASK = "****"

# scheme://... up to white space or a quote; trailing punctuation (the ':' in "rtmp://h/a/k: Broken
# pipe", a closing parenthesis or full stop) stays outside the match
_URL_RE = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+?(?=[.,;:)\]'\"]*(?:\s|$))")
MIN_SECRET_CHARS = 4  # shorter "keys" are not searched for in free text: they would mask ordinary words


def redact_url(url: str) -> str:
    """What may be shown of `url`: scheme, host, port and the first path segment (the RTMP
    application), then `****` for the rest of the path (the stream key), the query and the
    fragment; user and password become `****@`. A string without `scheme://` (a file path) is
    returned unchanged; one that does not parse as a URL shows only its scheme."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return url.split("://", 1)[0] + "://" + MASK
    netloc = parts.netloc
    user, at, host = netloc.rpartition("@")
    shown = f"{parts.scheme}://{MASK + '@' if at else ''}{host}"
    segments = parts.path.split("/")  # "/live/key" -> ["", "live", "key"]
    app = segments[1] if len(segments) > 1 else ""
    hidden = any(segments[2:]) or parts.query or parts.fragment
    if app:
        shown += f"/{app}"
    if hidden:
        shown += f"/{MASK}"
    return shown


def secrets_of(url: str) -> list[str]:
    """The parts of `url` that must not be shown anywhere: the whole URL, what follows the
    application (key, query), the key without the query, each query value (an SRT passphrase
    or streamid, an RTMP auth token) and a password. Empty for a path. A server may name any
    of them alone: nginx-rtmp, for one, splits `KEY?auth=...` into a name and arguments."""
    if "://" not in url:
        return []
    out = [url]
    try:
        parts = urlsplit(url)
    except ValueError:
        return out
    segments = parts.path.split("/")
    rest = "/".join(segments[2:])
    if parts.query:
        rest += "?" + parts.query
    values = [v for _, v in parse_qsl(parts.query, keep_blank_values=True)]
    for s in (rest, "/".join(segments[2:]), parts.query, *values, parts.password or ""):
        if len(s) >= MIN_SECRET_CHARS and s not in out:
            out.append(s)
    return out


def redact_text(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """`text` with every URL in it shown as redact_url() shows it, and every string of `secrets`
    (see secrets_of) that is still there replaced by `****`."""
    text = _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
    for s in sorted(secrets, key=len, reverse=True):
        if len(s) >= MIN_SECRET_CHARS and s in text:
            text = text.replace(s, MASK)
    return text


__all__ = ["redact_url", "redact_text", "secrets_of", "MASK"]
