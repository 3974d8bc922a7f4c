"""dhlive: speech to a lip-synced talking-avatar video, batch or live."""

import os as _os

__version__ = "0.1.0"

# numpy's OpenBLAS runs a matrix product above a small size on a thread per core, and those
# threads spin-wait after each product: a render's log-mel filterbank product (100 rows x 257 x
# 40 per block) kept them spinning for 1.0-1.4 ms of CPU per 360p frame, for products that take
# microseconds. One thread; it must be said before numpy loads OpenBLAS, and a user's own setting wins.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
