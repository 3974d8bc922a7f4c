"""Which ffmpeg binary to run: $DHLIVE_FFMPEG, else ffmpeg on PATH, else the imageio-ffmpeg wheel's."""

import functools
import os
import shutil

from dhlive_cli.errors import DependencyError


@functools.cache
def ffmpeg_path() -> str:
    env = os.environ.get("DHLIVE_FFMPEG")
    if env:
        if not (os.path.isfile(env) and os.access(env, os.X_OK)):
            raise DependencyError(f"DHLIVE_FFMPEG={env} is not an executable file")
        return env
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - it is a hard dependency
        imageio_ffmpeg = None
    if imageio_ffmpeg is not None:
        try:
            return imageio_ffmpeg.get_ffmpeg_exe()
        except RuntimeError:
            pass
    raise DependencyError(
        "ffmpeg not found: install it (apt-get install ffmpeg), put it on PATH, "
        "or set DHLIVE_FFMPEG to its path"
    )
