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
        from websockets.asyncio.client import connect

        response = await client.post(f"{self.base}/widget/{self.key}/session", content="{}",
                                     headers={"Origin": ORIGIN, "Content-Type": "application/json"})
        response.raise_for_status()
        token = response.json()["token"]
        ws = await connect(f"{self.ws_base}/ws/widget/{self.key}/", origin=ORIGIN, max_queue=None)
        await ws.send(json.dumps({"type": "auth", "token": token}))
        while json.loads(await ws.recv())["type"] != "ready":
            pass
        return ws, token

    async def say(self, ws, client_id: str, ticket: int | None) -> None:
        started = time.perf_counter()
        if ticket is not None:
            self.sent[ticket] = started
            self.seen[ticket] = 0
        await ws.send(json.dumps({"type": "message", "id": client_id, "text": f"bench message {client_id}"}))
        while True:
            data = json.loads(await ws.recv())
            if data["type"] == "ack":
                self.acks.append(time.perf_counter() - started)
                return
            if data["type"] == "error":
                self.errors += 1
                return


async def open_loop(rate: float, duration: float, jobs) -> tuple[float, float]:
    """Start one job every 1/rate s for `duration` s whatever the answers. Returns the rate at
    which jobs were started and the rate at which they completed (until the last one ended)."""
    tasks, started, n = [], time.perf_counter(), 0
    for job in jobs:
        due = started + n / rate
        if due - started >= duration:
            break
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(job()))
        n += 1
    sending = time.perf_counter() - started
    await asyncio.gather(*tasks)
    return n / sending, n / (time.perf_counter() - started)


def pct(values: list[float], q: float) -> float:
    return round(common.percentile(values, q * 100) * 1000, 1) if values else float("nan")


async def scenario(args, base: str, key: str, cookies: list[str], server_pid: int, tickets_of) -> dict:
    import httpx

    run = Run(base, key)
    stop = asyncio.Event()
    agent_ready = [asyncio.Event() for _ in cookies]
    agents = [asyncio.create_task(run.agent(c, e, stop)) for c, e in zip(cookies, agent_ready, strict=True)]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in agent_ready)), 60)
    results: dict = {}
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=50)) as client:
        warm = [await run.visitor(client, i) for i in range(10)]
        sockets = []

        async def open_visitors(upto: int) -> int:
            for start in range(len(sockets), upto, 50):
                sockets.extend(await asyncio.gather(*(run.visitor(client, i) for i in range(start, min(start + 50, upto)))))
            await asyncio.sleep(2)
            return rss_kb(server_pid)

        # The slope between half and all of the sockets: fixed costs that the first connections
        # trigger (the thread pool's database connections, allocator arenas) are left out.
        half = await open_visitors(args.visitors // 2)
        full = await open_visitors(args.visitors)
        added = args.visitors - args.visitors // 2
        results["idle"] = {"connections": args.visitors, "rss_half_kb": half, "rss_full_kb": full,
                           "kb_per_connection": round((full - half) / added, 1)}
        common.log(f"memory: {results['idle']['kb_per_connection']} KB per idle authenticated widget socket")

        common.log(f"first message of each of {args.visitors} visitors (opens their tickets)")
        await open_loop(args.rate, args.visitors / args.rate + 1,
                        (lambda ws=ws, i=i: run.say(ws, f"first-{i}", None) for i, (ws, _t) in enumerate(sockets)))
        tickets = await asyncio.to_thread(tickets_of, [token for _ws, token in sockets])
        run.acks.clear()
        run.errors = 0

        common.log(f"measured run: {args.rate:g} messages/s for {args.duration:g} s")
        busy: set[int] = set()

        def jobs():
            i = 0
            while True:
                index = i % len(sockets)
                i += 1
                if index in busy:
                    if len(busy) >= len(sockets):
                        raise RuntimeError("every visitor has a message in flight: the server is saturated")
                    continue
                busy.add(index)

                async def job(index=index, n=i):
                    try:
                        await run.say(sockets[index][0], f"m-{n}", tickets[index])
                    finally:
                        busy.discard(index)
                yield job

        meter = common.CpuMeter({"asgi server": lambda: [server_pid]})
        meter.start()
        sent_rate, completed_rate = await open_loop(args.rate, args.duration, jobs())
        await asyncio.sleep(2)  # the last events reach the agents
        cpu = {name: round(value, 2) for name, value in meter.stop().items()}
        results["load"] = {
            "target_rate": args.rate, "sent_rate": round(sent_rate, 1), "completed_rate": round(completed_rate, 1),
            "messages": len(run.acks),
            "errors": run.errors,
            "agent_first_ms": {"p50": pct(run.first, 0.5), "p99": pct(run.first, 0.99), "n": len(run.first)},
            "agent_all_ms": {"p50": pct(run.fanout, 0.5), "p99": pct(run.fanout, 0.99), "n": len(run.fanout)},
            "ack_ms": {"p50": pct(run.acks, 0.5), "p99": pct(run.acks, 0.99)},
            "cpu_seconds": cpu,
        }
        stop.set()
        for ws, _token in sockets + warm:
            await ws.close()
    await asyncio.gather(*agents, return_exceptions=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=500, help="widget sockets (default 500)")
    parser.add_argument("--rate", type=float, default=100, help="visitor messages/s in the measured run (default 100)")
    parser.add_argument("--duration", type=float, default=15, help="seconds of the measured run (default 15)")
    parser.add_argument("--ws", default="auto", choices=["auto", "websockets", "websockets-sansio"],
                        help="uvicorn's websocket implementation (default auto, as deployed)")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    args = parser.parse_args(argv)
    common.stop_on_sigterm()
    var_dir = Path(tempfile.mkdtemp(prefix="omnicenter-bench-"))
    env = common.production_env(db_name=DB_NAME, var_dir=var_dir, extra={
        # The benchmark is one address sending on purpose: the abuse limits would be what it measures.
        "WEBCHAT_RATE_SESSIONS_IP": "1000000", "WEBCHAT_RATE_IP": "1000000", "WEBCHAT_RATE_VISITOR": "1000000",
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

            return [services.visitor_ticket(tokens.read(t, channel_key=key)).pk for t in tokens_]

        port = common.free_port()
        server = common.start_service(stack, "omnicenter-uvicorn", [
            UVICORN, "omnicenter.asgi:application", "--host", common.HOST, "--port", str(port),
            "--log-level", "warning", "--no-access-log", "--ws", args.ws], env=env, log_dir=LOG_DIR)
        base = f"http://{common.HOST}:{port}"
        common.wait_http(base + "/healthz", service=server)
        results.update(common.run_async(scenario(args, base, key, cookies, server.process.pid, tickets_of)))
    load = results["load"]
    print(json.dumps({"idle": results["idle"], "load": load}, indent=2))
    common.write_json(args.json, results)
    ok = load["errors"] == 0 and load["agent_first_ms"]["n"] > 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
