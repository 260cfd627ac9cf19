"""`make bench`: every benchmark in sequence, one after the other (the machine has 2 cores, and a
benchmark running beside another measures both badly). Arguments go to each benchmark unchanged:

    make bench                                   # full run
    .venv/bin/python bench/run_all.py --messages 500 --scale small     # quick run

The ingest benchmark measures the floor in the same run and prints the ratio that counts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable

# (name, script): each prints its own figures and exits non-zero when a check fails.
BENCHMARKS = [
    ("ingest (with the floor)", "bench/ingest.py"),
    ("catalog search", "bench/search_catalog.py"),
]


def main(argv: list[str]) -> int:
    # A benchmark stops its servers on SIGTERM: ours is passed on to the one running (below).
    def stop(signum, _frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    load = os.getloadavg()[0]
    print(f"load average (1 min) before starting: {load:.2f}"
          + ("  -- the machine is busy: figures will be low and noisy" if load >= 1.0 else ""), flush=True)
    failed = []
    for name, script in BENCHMARKS:
        print(f"\n##### {name}: {script} {' '.join(argv)}", flush=True)
        started = time.monotonic()
        process = subprocess.Popen([PYTHON, script, *argv], cwd=ROOT)
        try:
            code = process.wait()
        except KeyboardInterrupt:
            process.wait(timeout=120)  # Ctrl-C reached it too: let it stop its servers
            raise
        except SystemExit:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)
            raise
        print(f"##### {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
