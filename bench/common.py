"""What every benchmark shares: the production environment, scratch databases, server processes
that always stop, and HTTP load generators (closed loop and open loop) aimed at 127.0.0.1 only.

Nothing here imports Django: the servers run in their own processes, and a benchmark that needs
the ORM in-process calls `django_setup()` with the same environment the servers got.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"

# A benchmark run as a script has this folder first on sys.path, where email.py (the email
# benchmark) shadows the standard library's `email` package. psycopg's C implementation imports
# `email`, so every in-process measurement silently ran on psycopg's pure-Python fallback (about
# 0.4 ms more CPU per statement). Every benchmark imports this module before anything else: the
# folder leaves sys.path here, and its modules are imported as `bench.<name>`.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
GUNICORN = str(VENV_BIN / "gunicorn")

HOST = "127.0.0.1"
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
# DB 13 is the benchmarks' own: the test suites use the low numbers.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
# Every database a benchmark creates starts with this, so it can never drop anyone else's.
DB_PREFIX = "bench_"


# Words for message texts: plausible support mail, enough variety that rows do not compress to nothing.
_WORDS = (
    "hello hi order parcel delivery invoice refund payment card account password login reset address "
    "shipping tracking number arrived damaged missing wrong size colour return exchange warranty repair "
    "subscription cancel renew plan upgrade downgrade price discount coupon code thanks please urgent "
    "yesterday today tomorrow week month still waiting again help support agent phone email chat store "
    "app website error page button cannot could would should the a an and or but with for from to of in "
    "on my your our their this that it is was be not no yes can will"
)
WORDS = tuple(_WORDS.split())


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- Environment and scratch resources -----------------------------------------------------------

def fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def database_url(name: str) -> str:
    assert name.startswith(DB_PREFIX), name
    return f"{PG_SERVER}/{name}"


def production_env(*, db_name: str, var_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a production deployment of Omnicenter gets, pointed at scratch resources."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OC_", "PYTEST"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "omnicenter.settings",
        "DATABASE_URL": database_url(db_name),
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "bench-" + os.urandom(24).hex(),
        "FIELD_ENCRYPTION_KEYS": fernet_key(),
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_COOKIES": "0",
        "DEBUG": "0",
        "ALLOWED_HOSTS": HOST,
        "OMNICENTER_VAR_DIR": str(var_dir),
        "MEDIA_ROOT": str(var_dir / "media"),
        "STATIC_ROOT": str(var_dir / "static"),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(ROOT),
    })
    env.update(extra or {})
    return env


def _admin_connection():
    import psycopg

    return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5)


def db_recreate(name: str) -> None:
    from psycopg import sql

    assert name.startswith(DB_PREFIX), name
    with _admin_connection() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def db_drop(name: str) -> None:
    from psycopg import sql

    assert name.startswith(DB_PREFIX), name
    with _admin_connection() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def redis_flush() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def django_setup(env: dict[str, str]) -> None:
    """Configure Django in this process with the servers' environment (ORM reads, in-process runs)."""
    import django

    for key in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS",
                "SECURE_SSL_REDIRECT", "SECURE_COOKIES", "DEBUG", "ALLOWED_HOSTS", "OMNICENTER_VAR_DIR",
                "MEDIA_ROOT", "STATIC_ROOT", "LOG_LEVEL"):
        os.environ[key] = env[key]
    for entry in reversed(env["PYTHONPATH"].split(os.pathsep)):
        if entry and entry not in sys.path:
            sys.path.insert(0, entry)
    django.setup()


@dataclass
class ServerTiming:
    """One request through Django's WSGI application, as a WSGI server would make it."""

    status: int
    body: bytes
    wall_ms: float  # from the call into the application to the end of the response body
    python_cpu_ms: float  # CPU of this process (Django, DRF, the database driver) over the same span
    db_cpu_ms: float  # CPU of the PostgreSQL backend serving this process's connection


class WsgiTimer:
    """Server time of requests, measured in-process through ``django.core.wsgi.get_wsgi_application()``,
    the very callable gunicorn calls: request signals (so the connection health check each request
    pays runs too), every middleware, DRF, the view and the body. Only HTTP parsing and the network
    are left out. The test client is not used: it skips ``close_old_connections`` and CSRF checks.

    CPU is split into this process (``time.process_time``) and the PostgreSQL backend of the
    connection (its /proc/<pid>/stat, the server runs on this machine), so a figure can be judged
    on a machine that others share: wall time waits for a CPU, CPU time does not.
    """

    def __init__(self, *, host: str = HOST, headers: dict[str, str] | None = None):
        from django.core.wsgi import get_wsgi_application

        self.app = get_wsgi_application()
        self.host = host
        self.headers = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in (headers or {}).items()}
        self._backend_pid: int | None = None

    @staticmethod
    def _backend_cpu() -> tuple[int, float]:
        from django.db import connection

        connection.ensure_connection()
        pid = connection.connection.info.backend_pid
        fields = _stat_fields(pid)
        return pid, (int(fields[11]) + int(fields[12])) / _TICK if fields else 0.0

    def get(self, path: str, params: dict[str, str] | None = None) -> ServerTiming:
        import io
        from urllib.parse import urlencode

        environ = {
            "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": urlencode(params or {}),
            "SERVER_NAME": self.host, "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": self.host, "HTTP_ACCEPT": "application/json", "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr, "wsgi.multithread": False,
            "wsgi.multiprocess": True, "wsgi.run_once": False, **self.headers,
        }
        status: list[str] = []
        db0 = self._backend_cpu()
        t0, c0 = time.perf_counter(), time.process_time()
        result = self.app(environ, lambda s, _headers, _exc=None: status.append(s))
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        t1, c1 = time.perf_counter(), time.process_time()
        db1 = self._backend_cpu()
        # A connection replaced during the request (CONN_MAX_AGE) counts from zero. /proc counts in
        # ticks (10 ms): sum this over many requests, never read one request's figure alone.
        db_cpu = db1[1] - (db0[1] if db0[0] == db1[0] else 0.0)
        return ServerTiming(int(status[0].split()[0]), body, (t1 - t0) * 1000, (c1 - c0) * 1000, db_cpu * 1000)


def run_checked(cmd: list[str], *, env: dict[str, str], cwd: Path = ROOT, timeout: float = 600) -> str:
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


# --- Processes that always stop --------------------------------------------------------------------

@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM to the whole process group (gunicorn and Celery children too), then SIGKILL."""
        if self.process.poll() is not None:
            return
        pgid = self.process.pid  # started with start_new_session: its pid is its group id
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.process.wait(timeout=5)
        # Children that outlived their parent (a Celery pool process) go with the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def stop_on_sigterm() -> None:
    """Turn SIGTERM (`timeout`, a CI runner) into SystemExit, so every `finally` and ExitStack
    callback runs and no server or scratch database is left behind."""
    def _exit(signum, _frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the cleanup short
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def start_service(stack: contextlib.ExitStack, name: str, cmd: list[str], *, env: dict[str, str],
                  log_dir: Path, cwd: Path = ROOT) -> Service:
    """Start `cmd` in its own process group; `stack` stops it whatever happens."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed by the stack below
    process = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    service = Service(name=name, process=process, log_path=log_path)
    stack.callback(log_file.close)
    stack.callback(service.stop)
    return service


def gunicorn_cmd(app: str, port: int, *, workers: int = 2) -> list[str]:
    return [GUNICORN, app, "--bind", f"{HOST}:{port}", "--workers", str(workers), "--log-level", "warning",
            "--graceful-timeout", "5"]


def wait_http(url: str, *, service: Service, timeout: float = 60) -> None:
    """Wait until something answers HTTP on `url` (any status), or fail with the service's log."""
    import httpx

    check_local(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.alive():
            raise RuntimeError(f"{service.name} exited early:\n{service.tail()}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{service.name} did not answer on {url} within {timeout:.0f} s:\n{service.tail()}")


def wait_until(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# --- Load generators -------------------------------------------------------------------------------

def check_local(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"benchmarks only send traffic to this machine, not to {host}")


@dataclass
class LoadResult:
    sent: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, successful answers only
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    first_send_wall: float = 0.0  # time.time() of the first request
    elapsed: float = 0.0  # first request sent -> last answer received
    late_sends: int = 0  # open loop: sends that left more than 5 ms after their slot

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def percentiles_ms(self) -> dict[str, float]:
        return {name: percentile(self.latencies, q) * 1000 for name, q in (("p50", 50), ("p95", 95), ("p99", 99))}

    def summary(self) -> dict:
        return {
            "sent": self.sent, "ok": self.ok, "statuses": self.statuses, "errors": self.errors,
            "elapsed_s": round(self.elapsed, 3), "requests_per_s": round(self.rate, 1),
            "latency_ms": {k: round(v, 2) for k, v in self.percentiles_ms().items()},
            "late_sends": self.late_sends,
        }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    # Nearest rank: the smallest value with at least q% of the sample at or below it.
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def _record(result: LoadResult, status: int | None, error: str | None, latency: float) -> None:
    if status is not None:
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if 200 <= status < 300:
            result.latencies.append(latency)
    if error:
        result.errors[error] = result.errors.get(error, 0) + 1


def _new_event_loop() -> asyncio.AbstractEventLoop:
    # uvloop (installed with uvicorn[standard]) keeps the client's own CPU cost down on 2 cores.
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def run_async(coro):
    loop = _new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def _client(max_connections: int, timeout: float):
    import httpx

    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        timeout=httpx.Timeout(timeout, pool=timeout),
    )


async def _post(client, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
    import httpx

    try:
        response = await client.post(url, content=body, headers=headers)
        return response.status_code, None
    except httpx.HTTPError as exc:
        return None, exc.__class__.__name__


async def closed_loop(url: str, bodies: Iterable[bytes], *, headers: dict[str, str], concurrency: int,
                      timeout: float = 30, deadline_s: float = 900) -> LoadResult:
    """POST every body with `concurrency` requests in flight; each answer frees a slot."""
    check_local(url)
    result = LoadResult()
    todo: Iterator[bytes] = iter(bodies)
    stop_at = time.monotonic() + deadline_s
    started = 0.0
    last = 0.0

    async def worker(client) -> None:
        nonlocal started, last
        for body in todo:
            if time.monotonic() > stop_at:
                return
            t0 = time.perf_counter()
            if not started:
                started = t0
                result.first_send_wall = time.time()
            result.sent += 1
            status, error = await _post(client, url, body, headers)
            t1 = time.perf_counter()
            last = max(last, t1)
            _record(result, status, error, t1 - t0)

    async with _client(concurrency, timeout) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    result.elapsed = last - started if started else 0.0
    return result


async def open_loop(url: str, bodies: Iterable[bytes], *, headers: dict[str, str], rate: float,
                    duration: float, timeout: float = 30, max_connections: int = 256) -> LoadResult:
    """Send at a fixed rate whatever the answers (no coordinated omission): latency is measured
    from each request's scheduled slot, so a stalled server shows up in the figures."""
    check_local(url)
    result = LoadResult()
    total = int(rate * duration)
    todo = iter(bodies)
    tasks = []
    last = 0.0

    async def one(client, slot: float, body: bytes) -> None:
        nonlocal last
        status, error = await _post(client, url, body, headers)
        t1 = time.perf_counter()
        last = max(last, t1)
        _record(result, status, error, t1 - slot)

    async with _client(max_connections, timeout) as client:
        start = time.perf_counter() + 0.05
        result.first_send_wall = time.time() + 0.05
        for i in range(total):
            slot = start + i / rate
            delay = slot - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.005:
                result.late_sends += 1
            body = next(todo)
            result.sent += 1
            tasks.append(asyncio.create_task(one(client, slot, body)))
        await asyncio.gather(*tasks)
    result.elapsed = last - start if last else 0.0
    return result


# --- Where the CPU goes ----------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after its closing parenthesis.
    return raw[raw.rindex(")") + 2:].split()


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return pids


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """User + system CPU seconds of each live process (children that exited are not counted)."""
    out = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            out[pid] = (int(fields[11]) + int(fields[12])) / _TICK
    return out


def self_cpu_seconds() -> float:
    usage = os.times()
    return usage.user + usage.system


class CpuMeter:
    """CPU seconds spent by named groups of processes between `start()` and `stop()`."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]):
        self.groups = groups
        self.before: dict[str, dict[int, float]] = {}
        self.self_before = 0.0
        self.wall_before = 0.0
        self.result: dict[str, float] = {}

    def start(self) -> None:
        self.before = {name: cpu_seconds(find()) for name, find in self.groups.items()}
        self.self_before = self_cpu_seconds()
        self.wall_before = time.perf_counter()

    def stop(self) -> dict[str, float]:
        self.result = {}
        for name, find in self.groups.items():
            after = cpu_seconds(find())
            before = self.before.get(name, {})
            # A process that appeared during the run counts from zero.
            self.result[name] = sum(t - before.get(pid, 0.0) for pid, t in after.items())
        self.result["client (this process)"] = self_cpu_seconds() - self.self_before
        self.result["wall"] = time.perf_counter() - self.wall_before
        return self.result


# --- Profiles (py-spy, optional, never a project dependency) -------------------------------------

@contextlib.contextmanager
def py_spy_record(py_spy: str, services: list[Service], out_dir: Path, *, rate: int = 100):
    """Sample `services` (and their children) while the block runs; writes collapsed stacks."""
    out_dir.mkdir(parents=True, exist_ok=True)
    recorders = []
    for service in services:
        out = out_dir / f"profile-{service.name}.txt"
        cmd = [py_spy, "record", "--pid", str(service.process.pid), "--subprocesses", "--nonblocking",
               "--rate", str(rate), "--format", "raw", "--output", str(out)]
        recorders.append((subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                           start_new_session=True), out))
    time.sleep(1)  # py-spy attaches
    try:
        yield [out for _p, out in recorders]
    finally:
        for process, _out in recorders:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
        for process, _out in recorders:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


# Leaf functions that wait (for PostgreSQL, Redis, a socket, a child, a lock) rather than compute.
# py-spy cannot always tell a C-level wait from work, so these samples are dropped: what is left is CPU.
WAITING = {"wait", "select", "poll", "epoll", "recv", "_recv", "recv_into", "accept", "sleep", "read", "readline",
           "_wait_for_tstate_lock", "wait_for_signals", "wait_conn", "_poll", "_read_from_socket", "acquire"}


def _waits(frame: str) -> bool:
    return frame.partition(" (")[0].rsplit(".", 1)[-1] in WAITING


def profile_summary(path: Path, *, top: int = 30) -> list[tuple[float, float, str]]:
    """(inclusive %, self %, frame) for the frames that hold the most CPU samples of a collapsed
    profile (samples whose leaf frame waits are left out)."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _sep, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # Leading elements name the processes (parent, child); frames are "function (file:line)".
        frames = [_frame_name(f) for f in stack.split(";") if not f.startswith("process ")]
        if frames and _waits(frames[-1]):
            continue
        total += count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + count
    if not total:
        return []
    # Frames in (nearly) every sample, and the servers' own start-up and loop, say nothing.
    ranked = sorted(((f, n) for f, n in inclusive.items() if n < 0.9 * total and not _wrapper(f)),
                    key=lambda kv: -kv[1])[:top]
    return [(100 * n / total, 100 * own.get(frame, 0) / total, frame) for frame, n in ranked]


_WRAPPERS = ("click/", "<frozen runpy>", "celery/bin/", "celery/bootsteps.py", "celery/__main__.py", "billiard/",
             "celery/worker/worker.py", "celery/concurrency/", "gunicorn/arbiter.py", "gunicorn/app/", "gunicorn)",
             "threading.py", "concurrent/futures/")


def _wrapper(frame: str) -> bool:
    return frame.partition(" (")[2].startswith(_WRAPPERS)


def _frame_name(frame: str) -> str:
    name, _sep, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for prefix in (str(ROOT / ".venv" / "lib") + "/", str(ROOT) + "/"):
        if where.startswith(prefix):
            where = where[len(prefix):].split("site-packages/", 1)[-1]
    return f"{name} ({where})"


# --- The machine -----------------------------------------------------------------------------------

def machine_info() -> dict[str, str]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kb / 1024 / 1024:.1f} GiB"
    debian = ""
    with contextlib.suppress(OSError):
        debian = Path("/etc/debian_version").read_text().strip()
    postgres = ""
    with contextlib.suppress(Exception), _admin_connection() as conn:
        postgres = conn.execute("SHOW server_version").fetchone()[0]
    redis_version = ""
    with contextlib.suppress(Exception):
        import redis

        redis_version = redis.Redis.from_url(REDIS_URL, socket_timeout=5).info("server")["redis_version"]
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": str(os.cpu_count()),
        "memory": memory,
        "cpu": cpu,
        "debian": debian,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": postgres,
        "redis": redis_version,
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
