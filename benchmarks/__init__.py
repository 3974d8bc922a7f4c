"""dhlive's benchmarks: `make bench` runs them all (run_all.py), each one also runs alone.

Importing dhlive_cli first gives a benchmark that runs the engine in-process the settings the
CLI process has before numpy loads (OpenBLAS held to one thread: dhlive_cli/__init__.py); a
script that imports numpy itself imports this package first.
"""

import dhlive_cli  # noqa: F401
