"""Web chat under load: N widget websockets and 20 agent sockets on one ASGI process (uvicorn),
PostgreSQL and Redis, production settings.

1. 20 supervisors open /ws/agent/ (they receive every ticket's events).
2. N visitors get a token from /widget/<key>/session and authenticate on /ws/widget/<key>/; the
   ASGI process's RSS before and after gives the memory per idle authenticated connection.
3. Each visitor sends a first message (its ticket is opened), at the open-loop rate.
4. The measured run: messages at --rate per second for --duration seconds, each from a visitor with
   nothing in flight, sent on a timer whatever the answers. End-to-end latency is visitor send ->
   the first agent socket's event for that visitor's ticket (and -> every agent socket's, the
   fan-out), plus visitor send -> ack.

Targets (issue 5): p99 under 150 ms at 100 messages/s; under 100 KB per idle connection.
Results in var/bench/chat.json, the server's log in var/bench/logs/. Scratch database bench_chat,
Redis DB 13, traffic to 127.0.0.1 only, every process stopped in `finally`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import common

DB_NAME = "bench_chat"
RESULTS = common.ROOT / "var" / "bench" / "chat.json"
LOG_DIR = common.ROOT / "var" / "bench" / "logs"
ORIGIN = "https://bench.example.com"
AGENTS = 20
GRACE = 10.0  # seconds after the last send that answers are still waited for
UVICORN = str(common.VENV_BIN / "uvicorn")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def prepare(env: dict[str, str]) -> tuple[str, list[str]]:
    """The chat channel and AGENTS signed-in supervisors (their session cookies)."""
    from django.conf import settings
    from django.contrib.auth.models import Group
    from django.test import Client

    from channels_inbound.services import channel_create
    from omnicenter.models import User
    from tickets.models import Team

    team = Team.objects.create(name="Bench chat")
    channel, _generated = channel_create(kind="webchat", name="Bench chat", default_team=team,
                                         settings_data={"allowed_origins": [ORIGIN]})
    group, _ = Group.objects.get_or_create(name="supervisor")
    cookies = []
    for i in range(AGENTS):
        user = User.objects.create_user(username=f"bench_agent_{i}", password="x" * 12)
        user.groups.add(group)
        team.members.add(user)
        client = Client()
        client.force_login(user)
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}")
    return channel.key, cookies


class Run:
    def __init__(self, base: str, key: str):
        self.base, self.key = base, key
        self.ws_base = base.replace("http://", "ws://")
        self.sent: dict[int, float] = {}  # ticket -> send time of the message in flight
        self.first: list[float] = []
        self.fanout: list[float] = []
        self.acks: list[float] = []
        self.errors = 0
        self.said = 0
        self.unsent = 0  # open-loop slots skipped: every visitor had a message in flight
        self.seen: dict[int, int] = {}  # ticket -> agent receipts of the message in flight

    async def agent(self, cookie: str, ready: asyncio.Event, stop: asyncio.Event) -> None:
        from websockets.asyncio.client import connect

        async with connect(f"{self.ws_base}/ws/agent/", origin=self.base, additional_headers={"Cookie": cookie},
                           max_queue=None) as ws:
            ready.set()
            while not stop.is_set():
                try:
                    data = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                except TimeoutError:
                    continue
                started = self.sent.get(data.get("ticket"))
                if started is None or data.get("type") not in ("timeline.appended", "ticket.created"):
                    continue
                now = time.perf_counter()
                ticket = data["ticket"]
                self.fanout.append(now - started)
                count = self.seen.get(ticket, 0) + 1
                self.seen[ticket] = count
                if count == 1:
                    self.first.append(now - started)
                if count >= AGENTS:
                    self.sent.pop(ticket, None)

    async def visitor(self, client, index: int):
        import httpx
        from websockets.asyncio.client import connect

        for attempt in range(3):
            try:
                response = await client.post(f"{self.base}/widget/{self.key}/session", content="{}",
                                             headers={"Origin": ORIGIN, "Content-Type": "application/json"})
                break
            except httpx.TransportError:
                # A kept-alive connection the server closed as it was reused (its keep-alive
                # timeout): what a browser retries too.
                if attempt == 2:
                    raise
        response.raise_for_status()
        token = response.json()["token"]
        ws = await connect(f"{self.ws_base}/ws/widget/{self.key}/", origin=ORIGIN, max_queue=None)
        await ws.send(json.dumps({"type": "auth", "token": token}))
        while json.loads(await ws.recv())["type"] != "ready":
            pass
        return ws, token

    async def say(self, ws, client_id: str, ticket: int | None) -> None:
        from websockets.exceptions import ConnectionClosed

        started = time.perf_counter()
        self.said += 1
        if ticket is not None:
            self.sent[ticket] = started
            self.seen[ticket] = 0
        try:
            await ws.send(json.dumps({"type": "message", "id": client_id, "text": f"bench message {client_id}"}))
            while True:
                data = json.loads(await ws.recv())
                if data.get("id") != client_id:
                    continue  # the late answer to a message given up on, or another frame
                if data["type"] == "ack":
                    self.acks.append(time.perf_counter() - started)
                    return
                if data["type"] == "error":
                    self.errors += 1
                    return
        except ConnectionClosed:
            self.errors += 1


async def open_loop(rate: float, duration: float, jobs, *, grace: float) -> tuple[float, float, int]:
    """Start one job every 1/rate s for `duration` s whatever the answers (a job may be None: that
    slot's send could not be made). Waits at most `grace` s after the last send for the jobs still
    running, then cancels them. Returns the rate at which jobs were started, the rate at which they
    completed (until the last one ended), and how many were cancelled unfinished."""
    tasks, started, n = [], time.perf_counter(), 0
    for job in jobs:
        due = started + n / rate
        if due - started >= duration:
            break
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        if job is not None:
            tasks.append(asyncio.create_task(job()))
        n += 1
    sending = time.perf_counter() - started
    last_done = started
    for future in asyncio.as_completed(tasks, timeout=grace) if tasks else ():
        try:
            await future
        except TimeoutError:
            break
        except Exception:  # noqa: S112 - the job counted its own failure (Run.say)
            continue
        last_done = time.perf_counter()
    unfinished = [task for task in tasks if not task.done()]
    for task in unfinished:
        task.cancel()
    await asyncio.gather(*unfinished, return_exceptions=True)
    completed = len(tasks) - len(unfinished)
    return n / sending, completed / max(last_done - started, sending), len(unfinished)


async def traced_snapshot(args, server_pid: int):
    """The traced server's heap now (bench/traced_server.py writes it on SIGUSR1), or None."""
    if not args.tracemalloc:
        return None
    import signal
    import tracemalloc

    folder = Path(os.environ["BENCH_TRACEMALLOC_DIR"])
    before = set(folder.iterdir())
    os.kill(server_pid, signal.SIGUSR1)
    for _ in range(600):
        await asyncio.sleep(0.1)
        new = set(folder.iterdir()) - before
        if new:
            await asyncio.sleep(1)  # written in one go, but give it time to finish
            return await asyncio.to_thread(tracemalloc.Snapshot.load, str(new.pop()))
    raise RuntimeError("the traced server wrote no snapshot")


def traced_breakdown(half, full, added: int, top: int = 25) -> list[dict]:
    """Where the bytes of the second half of the sockets went: Python allocations grown between the
    two snapshots, per connection, grouped by the allocating line, with the call stack that made
    the largest share."""
    stats = full.compare_to(half, "traceback")
    by_line: dict[str, dict] = {}
    for stat in stats:
        frame = stat.traceback[-1]  # the most recent frame: the allocating line
        line = by_line.setdefault(f"{frame.filename}:{frame.lineno}", {"bytes": 0, "count": 0, "stack": None, "top": 0})
        line["bytes"] += stat.size_diff
        line["count"] += stat.count_diff
        if stat.size_diff > line["top"]:
            line["top"] = stat.size_diff
            line["stack"] = [f"{f.filename.rsplit('site-packages/', 1)[-1]}:{f.lineno}" for f in reversed(stat.traceback[-8:])]
    total = sum(line["bytes"] for line in by_line.values())
    rows = sorted(by_line.items(), key=lambda item: -item[1]["bytes"])[:top]
    common.log(f"tracemalloc: {total / added / 1024:.1f} KB of Python allocations per connection; largest:")
    result = []
    for where, line in rows:
        row = {"where": where.rsplit("site-packages/", 1)[-1], "bytes_per_connection": round(line["bytes"] / added),
               "objects_per_connection": round(line["count"] / added, 2), "stack": line["stack"]}
        common.log(f"  {row['bytes_per_connection']:>7} B  {row['objects_per_connection']:>6}  {row['where']}")
        result.append(row)
    return [{"total_bytes_per_connection": round(total / added)}, *result]


def pct(values: list[float], q: float) -> float:
    return round(common.percentile(values, q * 100) * 1000, 1) if values else float("nan")


async def scenario(args, base: str, key: str, cookies: list[str], server_pid: int, tickets_of) -> dict:
    import httpx

    run = Run(base, key)
    stop = asyncio.Event()
    agent_ready = [asyncio.Event() for _ in cookies]
    agents = [asyncio.create_task(run.agent(c, e, stop)) for c, e in zip(cookies, agent_ready, strict=True)]
    results: dict = {}
    warm: list = []
    sockets: list = []
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in agent_ready)), 60)
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=50)) as client:
            warm.extend([await run.visitor(client, i) for i in range(10)])

            async def open_visitors(upto: int) -> int:
                for start in range(len(sockets), upto, 50):
                    sockets.extend(await asyncio.gather(*(run.visitor(client, i) for i in range(start, min(start + 50, upto)))))
                await asyncio.sleep(2)
                return rss_kb(server_pid)

            # The slope between half and all of the sockets: fixed costs that the first connections
            # trigger (the thread pool's database connections, allocator arenas) are left out.
            half = await open_visitors(args.visitors // 2)
            half_snapshot = await traced_snapshot(args, server_pid)
            full = await open_visitors(args.visitors)
            full_snapshot = await traced_snapshot(args, server_pid)
            added = args.visitors - args.visitors // 2
            results["idle"] = {"connections": args.visitors, "rss_half_kb": half, "rss_full_kb": full,
                               "kb_per_connection": round((full - half) / added, 1)}
            common.log(f"memory: {results['idle']['kb_per_connection']} KB per idle authenticated widget socket")
            if args.tracemalloc:
                results["tracemalloc"] = traced_breakdown(half_snapshot, full_snapshot, added)
                return results  # a traced server's speed means nothing

            common.log(f"first message of each of {args.visitors} visitors (opens their tickets)")
            _rate, _done, unfinished = await open_loop(
                args.rate, args.visitors / args.rate + 1,
                (lambda ws=ws, i=i: run.say(ws, f"first-{i}", None) for i, (ws, _t) in enumerate(sockets)), grace=GRACE)
            if unfinished:
                common.log(f"{unfinished} first messages unanswered after {GRACE:g} s: the server is saturated")
            tickets = await asyncio.to_thread(tickets_of, [token for _ws, token in sockets])
            run.acks.clear()
            run.first.clear()
            run.fanout.clear()
            run.errors = run.said = 0

            common.log(f"measured run: {args.rate:g} messages/s for {args.duration:g} s")
            busy: set[int] = set()

            def jobs():
                i = 0
                while True:
                    if len(busy) >= len(sockets):
                        run.unsent += 1  # the slot passes: an open loop does not wait for the server
                        yield None
                        continue
                    index = i % len(sockets)
                    i += 1
                    if index in busy:
                        continue
                    busy.add(index)

                    async def job(index=index, n=i):
                        try:
                            await run.say(sockets[index][0], f"m-{n}", tickets[index])
                        finally:
                            busy.discard(index)
                    yield job

            profiler = None
            if args.profile:
                # Sampled from outside (py-spy, not a project dependency): every thread of the server,
                # the thread pool's database work included, at little cost to the server.
                profiler = await asyncio.create_subprocess_exec(
                    str(common.VENV_BIN / "py-spy"), "record", "--pid", str(server_pid), "--duration",
                    str(int(args.duration)), "--rate", "200", "--nonblocking", "--gil", "--format", "raw",
                    "--output", str(args.profile), stdout=asyncio.subprocess.DEVNULL)
            meter = common.CpuMeter({"asgi server": lambda: [server_pid]})
            meter.start()
            sent_rate, completed_rate, unanswered = await open_loop(args.rate, args.duration, jobs(), grace=GRACE)
            if profiler is not None:
                await profiler.wait()
            await asyncio.sleep(2)  # the last events reach the agents
            cpu = {name: round(value, 2) for name, value in meter.stop().items()}
            results["load"] = {
                "target_rate": args.rate, "sent_rate": round(sent_rate, 1), "completed_rate": round(completed_rate, 1),
                "messages": len(run.acks),
                "errors": run.errors,
                # Saturation, counted instead of raised: slots with every visitor still waiting for an
                # answer, messages without an ack GRACE s after the last send, messages no agent saw.
                "saturated": bool(run.unsent or unanswered),
                "unsent": run.unsent, "unanswered": unanswered,
                "without_agent_event": max(0, run.said - len(run.first)),
                "agent_first_ms": {"p50": pct(run.first, 0.5), "p99": pct(run.first, 0.99), "n": len(run.first)},
                "agent_all_ms": {"p50": pct(run.fanout, 0.5), "p99": pct(run.fanout, 0.99), "n": len(run.fanout)},
                "ack_ms": {"p50": pct(run.acks, 0.5), "p99": pct(run.acks, 0.99)},
                "cpu_seconds": cpu,
                "asgi_cpu_ms_per_message": round(cpu.get("asgi server", 0) / len(run.acks) * 1000, 1) if run.acks else None,
            }
            if results["load"]["saturated"]:
                common.log(f"saturated: {run.unsent} sends skipped (every visitor had a message in flight), "
                           f"{unanswered} unanswered after {GRACE:g} s")
    finally:
        stop.set()
        # Closed together and bounded: a saturated server may take long to answer each close.
        await asyncio.wait([asyncio.create_task(ws.close()) for ws, _token in sockets + warm] or [asyncio.sleep(0)],
                           timeout=15)
        await asyncio.wait(agents, timeout=5)
        for task in agents:
            task.cancel()
        await asyncio.gather(*agents, return_exceptions=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=500, help="widget sockets (default 500)")
    parser.add_argument("--rate", type=float, default=100, help="visitor messages/s in the measured run (default 100)")
    parser.add_argument("--duration", type=float, default=15, help="seconds of the measured run (default 15)")
    parser.add_argument("--ws", default="auto", choices=["auto", "websockets", "websockets-sansio"],
                        help="uvicorn's websocket implementation (default auto, as deployed)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="record the server's stacks during the measured run with py-spy (collapsed stacks, "
                             "for flamegraph.pl or speedscope); py-spy must be installed in .venv")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="memory only, with the server under tracemalloc: where the bytes per idle socket go "
                             "(the RSS figure of such a run includes tracing's own cost)")
    parser.add_argument("--ws-deflate", action="store_true",
                        help="let uvicorn negotiate per-message deflate (not deployed: about 50 KB per socket)")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    args = parser.parse_args(argv)
    common.stop_on_sigterm()
    var_dir = Path(tempfile.mkdtemp(prefix="omnicenter-bench-"))
    env = common.production_env(db_name=DB_NAME, var_dir=var_dir, extra={
        # The benchmark is one address sending on purpose: the abuse limits would be what it measures.
        "WEBCHAT_RATE_SESSIONS_IP": "1000000", "WEBCHAT_RATE_IP": "1000000", "WEBCHAT_RATE_VISITOR": "1000000",
        # As the websocket process is deployed (run_production.process_environment, docker-compose):
        # a new PostgreSQL connection for each database call of a consumer.
        "DB_CONN_MAX_AGE": os.environ.get("DB_CONN_MAX_AGE", "0"),
    })
    results: dict = {"machine": common.machine_info(), "args": {k: str(v) for k, v in vars(args).items()}}
    common.log(f"machine: {results['machine']['nproc']} cores, load average {results['machine']['load_average']}")
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, var_dir, True)
        common.db_recreate(DB_NAME)
        stack.callback(common.db_drop, DB_NAME)
        common.redis_flush()
        stack.callback(common.redis_flush)
        common.run_checked([common.PYTHON, "manage.py", "migrate", "--no-input", "-v", "0"], env=env)
        common.django_setup(env)
        from django.db import connections

        stack.callback(connections.close_all)
        key, cookies = prepare(env)

        def tickets_of(tokens_: list[str]) -> list[int]:
            from channels_inbound.webchat import services, tokens

            found = [services.visitor_ticket(tokens.read(t, channel_key=key)) for t in tokens_]
            return [ticket.pk if ticket else None for ticket in found]

        port = common.free_port()
        launcher = [UVICORN]
        if args.tracemalloc:
            trace_dir = var_dir / "tracemalloc"
            trace_dir.mkdir()
            env["BENCH_TRACEMALLOC_DIR"] = os.environ["BENCH_TRACEMALLOC_DIR"] = str(trace_dir)
            launcher = [common.PYTHON, str(common.BENCH_DIR / "traced_server.py")]
        server = common.start_service(stack, "omnicenter-uvicorn", [
            *launcher, "omnicenter.asgi:application", "--host", common.HOST, "--port", str(port),
            "--log-level", "warning", "--no-access-log", "--ws", args.ws,
            # As deployed (run_production's WS_OPTIONS, docker-compose.yml), unless --ws-deflate.
            "--ws-per-message-deflate", "true" if args.ws_deflate else "false"], env=env, log_dir=LOG_DIR)
        base = f"http://{common.HOST}:{port}"
        common.wait_http(base + "/healthz", service=server)
        results.update(common.run_async(scenario(args, base, key, cookies, server.process.pid, tickets_of)))
    if args.tracemalloc:
        common.write_json(args.json, results)
        return 0
    load = results["load"]
    print(json.dumps({"idle": results["idle"], "load": load}, indent=2))
    common.write_json(args.json, results)
    ok = load["errors"] == 0 and load["agent_first_ms"]["n"] > 0 and not load["saturated"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
