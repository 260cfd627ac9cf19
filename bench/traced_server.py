"""uvicorn with tracemalloc on, for bench/chat.py --tracemalloc: on SIGUSR1 the server writes a
snapshot to $BENCH_TRACEMALLOC_DIR/<n>.snapshot. Tracing costs memory and CPU of its own, so a
traced run gives the breakdown (what the per-connection bytes are), never the headline figures.

Usage: python bench/traced_server.py <uvicorn arguments>
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import tracemalloc
from pathlib import Path


def main() -> None:
    # bench/ holds an email.py: the standard library's email package must win (uvicorn imports it).
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [entry for entry in sys.path if str(Path(entry or ".").resolve()) != here]
    tracemalloc.start(int(os.environ.get("BENCH_TRACEMALLOC_FRAMES", "12")))
    out = Path(os.environ["BENCH_TRACEMALLOC_DIR"])
    counter = itertools.count(1)

    def dump(_signum, _frame) -> None:
        tracemalloc.take_snapshot().dump(str(out / f"{next(counter)}.snapshot"))

    signal.signal(signal.SIGUSR1, dump)
    from uvicorn.main import main as uvicorn_main

    sys.argv = ["uvicorn", *sys.argv[1:]]
    uvicorn_main()


if __name__ == "__main__":
    main()
