"""Email import benchmark: generated .eml files through `manage.py import_mail` on PostgreSQL.

The production code path: `manage.py import_mail --channel KEY DIR --quiet-progress` run as a
subprocess with the production environment (DEBUG=0, encrypted channel secrets, PostgreSQL database
`bench_email`, created, migrated and dropped here, and the benchmarks' Redis DB). import_mail stores
each mail as an InboundEvent and processes it itself, in batches, in worker processes of its own
(`--workers`, default: one per CPU, at most 4), so no Celery worker is involved. Peak RSS and CPU
are those of import_mail with its workers (`os.wait4` counts the children it reaped).

What it measures and prints:

1. Import: N generated mails (a mix of sizes, charsets - utf-8, koi8-r, windows-1251, iso-8859-2 -,
   HTML alternatives, replies and attachments), emails/s over the command's wall time, peak RSS of
   the command (`os.wait4`: that process alone).
2. The same N files again: every mail is a duplicate. Emails/s and the speed-up over the import.
3. Peak RSS of an import of the first N/4 of the same mails (a copy of the migrated database, so
   the same starting state), to show memory does not grow with the archive.

Targets: >= 300 emails/s, peak RSS at N within 10% (and 20 MiB) of the one at N/4, duplicates >= 5x
faster. A run that imports fewer mails than it generated exits non-zero.

    .venv/bin/python bench/email.py --messages 1000      # quick
    .venv/bin/python bench/email.py                      # full: 10,000 mails
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script, this file's folder is sys.path[0], and this file would shadow the standard
    # library's `email` package: the project root takes its place.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

import argparse
import contextlib
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr

from bench import common

DB_NAME = "bench_email"
DB_QUARTER = "bench_email_quarter"
ADDRESS = "support@bench.example"
RESULTS = common.ROOT / "var" / "bench" / "email.json"

TARGET_RATE = 300.0
TARGET_DUP_SPEEDUP = 5.0

# Words per charset: each must be encodable in its charset, so the bytes on disk are really that charset.
_RU_TEXT = ("здравствуйте заказ посылка доставка счёт возврат оплата карта пароль адрес номер отслеживания "
       "пришёл повреждён неправильный размер цвет гарантия ремонт подписка отмена спасибо пожалуйста "
       "срочно вчера сегодня завтра неделя ещё жду помощь поддержка телефон магазин ошибка кнопка")
_PL_CS_TEXT = ("dzień dobry zamówienie przesyłka dostawa faktura zwrot płatność karta hasło adres numer "
          "uszkodzony rozmiar kolor gwarancja naprawa dziękuję proszę pilne wczoraj dzisiaj jutro "
          "objednávka zásilka doručení faktura vrácení platba heslo číslo poškozený záruka děkuji prosím "
          "naléhavé včera dnes zítra týden ještě čekám pomoc podpora")
_UTF8_TEXT = "naïve café Größe Grüße délai reçu señor año — “quoted” ✓ €"
_RU = tuple(_RU_TEXT.split())
_PL_CS = tuple(_PL_CS_TEXT.split())
_UTF8_EXTRA = tuple(_UTF8_TEXT.split())

# (share, charset, words): the charset of the text part and of the subject.
CHARSETS = (
    (0.45, "utf-8", common.WORDS + _UTF8_EXTRA),
    (0.20, "koi8-r", _RU),
    (0.20, "windows-1251", _RU),
    (0.15, "iso-8859-2", _PL_CS),
)


def _pick_charset(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    x = rng.random()
    for share, charset, words in CHARSETS:
        if x < share:
            return charset, words
        x -= share
    return CHARSETS[0][1], CHARSETS[0][2]


def _text(rng: random.Random, words: tuple[str, ...], count: int) -> str:
    lines, line = [], []
    for _ in range(count):
        line.append(rng.choice(words))
        if len(line) >= 12:
            lines.append(" ".join(line))
            line = []
    lines.append(" ".join(line))
    return "\n".join(lines).strip() + "\n"


def _attachment(rng: random.Random, size: int) -> MIMEApplication:
    kind = rng.choice((("pdf", "application", "pdf"), ("png", "image", "png"), ("txt", "text", "plain")))
    ext, maintype, subtype = kind
    if maintype == "text":
        data = _text(rng, common.WORDS, max(1, size // 6)).encode()[:size]
    else:
        data = rng.randbytes(size)
    part = MIMEApplication(data, _subtype=subtype)
    part.replace_header("Content-Type", f"{maintype}/{subtype}")
    part.add_header("Content-Disposition", "attachment", filename=f"file-{rng.randrange(10**6)}.{ext}")
    return part


def make_mail(i: int, rng: random.Random, *, senders: int, sent: list[tuple[str, int]]) -> bytes:
    """One mail: charset, size, HTML alternative, attachments and threading drawn from `rng`."""
    charset, words = _pick_charset(rng)
    sender = rng.randrange(senders)
    # Sizes: mostly short notes, some long mails (quoted history); 15% carry attachments.
    length = rng.choice((15, 30, 60, 120)) if rng.random() < 0.85 else rng.randint(400, 1500)
    body = _text(rng, words, length)
    text = MIMEText(body, "plain", charset)
    roll = rng.random()
    if roll < 0.15:
        html = "<html><body>" + "".join(f"<p>{line}</p>" for line in body.splitlines()) + "</body></html>"
        alternative = MIMEMultipart("alternative")
        alternative.attach(text)
        alternative.attach(MIMEText(html, "html", charset))
        message = alternative
    else:
        message = text
    attach = rng.random()
    if attach < 0.15:
        mixed = MIMEMultipart("mixed")
        mixed.attach(message)
        # 12%: one small file (2-40 KB); 3%: two files, one of 200-600 KB.
        mixed.attach(_attachment(rng, rng.randint(2_000, 40_000)))
        if attach < 0.03:
            mixed.attach(_attachment(rng, rng.randint(200_000, 600_000)))
        message = mixed
    message_id = f"<bench-{i}.{rng.randrange(10**9)}@mail.bench.example>"
    subject = " ".join(rng.choice(words) for _ in range(rng.randint(2, 7)))
    if sent and rng.random() < 0.2:  # a follow-up by the same customer to one of their earlier mails
        parent, sender = rng.choice(sent[-200:])
        message["In-Reply-To"] = parent
        message["References"] = parent
        subject = "Re: " + subject
    message["Subject"] = Header(subject, charset)
    name = " ".join(rng.choice(words).capitalize() for _ in range(2))
    message["From"] = formataddr((name, f"customer{sender}@mail{sender % 50}.example"), charset=charset)
    message["To"] = ADDRESS
    message["Date"] = format_datetime(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=7 * i))
    message["Message-ID"] = message_id
    sent.append((message_id, sender))
    return message.as_bytes()


def generate(directory: Path, count: int, *, quarter: int) -> dict:
    """Write `count` mails, deterministic (random.Random(1)): the first `quarter` in `q1/`, the
    rest in `rest/`, so the quarter run reads the very same files as the start of the full run."""
    rng = random.Random(1)
    senders = max(1, count // 4)  # about 4 mails per customer
    sent: list[tuple[str, int]] = []
    sizes = []
    (directory / "q1").mkdir(parents=True)
    (directory / "rest").mkdir(parents=True)
    for i in range(count):
        raw = make_mail(i, rng, senders=senders, sent=sent)
        sizes.append(len(raw))
        (directory / ("q1" if i < quarter else "rest") / f"{i:06d}.eml").write_bytes(raw)
    sizes.sort()
    return {
        "mails": count, "bytes": sum(sizes), "mean_bytes": round(sum(sizes) / count),
        "median_bytes": sizes[count // 2], "max_bytes": sizes[-1],
    }


# --- Running import_mail ------------------------------------------------------------------------

WORKERS: int | None = None  # --workers: passed on to import_mail when given


def run_import(env: dict[str, str], channel_key: str, path: Path, *, timeout: float = 3600,
               profile: Path | None = None) -> dict:
    """One import_mail run: wall time, and peak RSS of that process alone (os.wait4)."""
    cmd = [common.PYTHON]
    if profile is not None:
        cmd += ["-m", "cProfile", "-o", str(profile)]
    cmd += ["manage.py", "import_mail", f"--channel={channel_key}", str(path), "--quiet-progress"]
    if WORKERS is not None:
        cmd.append(f"--workers={WORKERS}")
    elif profile is not None:
        cmd.append("--workers=1")  # cProfile sees this process only
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        process = subprocess.Popen(cmd, env=env, cwd=common.ROOT, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = started + timeout
            while True:
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    os.killpg(process.pid, 9)
                    raise RuntimeError(f"import_mail did not finish within {timeout:.0f} s")
                time.sleep(0.02)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(process.pid, 0)
            raise
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        output = out.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"import_mail failed ({process.returncode}):\n{output}")
    summary = re.search(r"(\d+) mails in ([\d.]+) s: (\d+) imported, (\d+) already imported, (\d+) skipped", output)
    if summary is None:
        raise RuntimeError(f"import_mail printed no summary:\n{output}")
    total, loop_s, imported, duplicates, skipped = summary.groups()
    return {
        "mails": int(total), "imported": int(imported), "duplicates": int(duplicates), "skipped": int(skipped),
        "wall_s": round(wall, 2), "loop_s": float(loop_s), "emails_per_s": round(int(total) / wall, 1),
        "loop_emails_per_s": round(int(total) / max(float(loop_s), 1e-6), 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "output": output.strip(),
    }


def baseline_rss(env: dict[str, str]) -> float:
    """Peak RSS of `manage.py check` in the same environment: what Django itself costs."""
    process = subprocess.Popen([common.PYTHON, "manage.py", "check"], env=env, cwd=common.ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    _pid, _status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(_status)
    return round(usage.ru_maxrss / 1024, 1)


def create_channel(env: dict[str, str]) -> str:
    common.django_setup(env)
    from django.db import connections

    from channels_inbound.services import channel_create

    channel, _secrets = channel_create(kind="email", name="Bench import", settings_data={"address": ADDRESS})
    connections.close_all()  # the database is copied as a template next: no session may stay on it
    return channel.key


def db_copy(source: str, target: str) -> None:
    import psycopg
    from psycopg import sql

    assert source.startswith(common.DB_PREFIX) and target.startswith(common.DB_PREFIX)
    with psycopg.connect(f"{common.PG_SERVER}/postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(target),
                                                                       sql.Identifier(source)))


def database_counts(db_name: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(common.database_url(db_name), connect_timeout=5) as conn:
        def one(query: str) -> int:
            return conn.execute(query).fetchone()[0]

        return {
            "events": one("SELECT count(*) FROM channels_inbound_inboundevent"),
            "events_processed": one("SELECT count(*) FROM channels_inbound_inboundevent WHERE status = 'processed'"),
            "tickets": one("SELECT count(*) FROM tickets_ticket"),
            "customers": one("SELECT count(*) FROM customers_customer"),
            "timeline_entries": one("SELECT count(*) FROM tickets_timelineentry"),
            "database_mib": round(one(f"SELECT pg_database_size('{db_name}')") / 2**20),
        }


def profile_top(path: Path, *, top: int = 25) -> list[str]:
    """The top functions by cumulative time, then by own time."""
    import io
    import pstats

    stream = io.StringIO()
    stats = pstats.Stats(str(path), stream=stream).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return [line for line in stream.getvalue().splitlines() if line.strip()]


# --- Main -----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000, help="mails in the archive (default 10000)")
    parser.add_argument("--skip-quarter", action="store_true", help="no N/4 run (no memory comparison)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also import the first N mails under cProfile (not counted) and print the top")
    parser.add_argument("--keep-db", action="store_true", help=f"leave {DB_NAME} for inspection")
    parser.add_argument("--workers", type=int, default=None, help="import_mail --workers (default: its own)")
    args = parser.parse_args(argv)
    global WORKERS
    WORKERS = args.workers
    common.stop_on_sigterm()
    quarter = max(1, args.messages // 4)

    results: dict = {"machine": common.machine_info(), "args": {k: str(v) for k, v in vars(args).items()}}
    common.log(f"load average: {results['machine']['load_average']}")
    failures: list[str] = []
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="bench-email-"))
        stack.callback(shutil.rmtree, work, True)
        mails = work / "mails"
        common.log(f"generating {args.messages} mails")
        started = time.perf_counter()
        results["archive"] = generate(mails, args.messages, quarter=quarter)
        results["archive"]["generate_s"] = round(time.perf_counter() - started, 1)
        archive = results["archive"]
        common.log(f"archive: {archive['bytes'] / 2**20:.1f} MiB, mean {archive['mean_bytes']} B, "
                   f"median {archive['median_bytes']} B, max {archive['max_bytes']} B")

        env = common.production_env(db_name=DB_NAME, var_dir=work / "var")
        common.db_recreate(DB_NAME)
        if not args.keep_db:
            stack.callback(common.db_drop, DB_NAME)
        stack.callback(common.db_drop, DB_QUARTER)
        common.redis_flush()
        stack.callback(common.redis_flush)
        common.log(f"migrating {DB_NAME}")
        common.run_checked([common.PYTHON, "manage.py", "migrate", "--no-input", "-v", "0"], env=env)
        key = create_channel(env)
        results["django_check_rss_mib"] = baseline_rss(env)

        if not args.skip_quarter:
            db_copy(DB_NAME, DB_QUARTER)
            quarter_env = {**env, "DATABASE_URL": common.database_url(DB_QUARTER)}
            common.log(f"import of the first {quarter} mails ({DB_QUARTER})")
            results["quarter"] = run_import(quarter_env, key, mails / "q1")
            common.log(_line(results["quarter"]))
            common.db_drop(DB_QUARTER)

        if args.profile:
            profiled = work / "profiled"
            profiled.mkdir()
            for path in sorted(mails.rglob("*.eml"))[:args.profile]:
                os.link(path, profiled / path.name)
            db_copy(DB_NAME, DB_QUARTER)
            profile_env = {**env, "DATABASE_URL": common.database_url(DB_QUARTER)}
            common.log(f"import of {args.profile} mails under cProfile (not counted)")
            results["profile_run"] = run_import(profile_env, key, profiled, profile=work / "import.prof")
            results["profile_top"] = profile_top(work / "import.prof")
            common.db_drop(DB_QUARTER)

        common.redis_flush()
        common.log(f"import of {args.messages} mails")
        results["import"] = run_import(env, key, mails)
        common.log(_line(results["import"]))
        common.log(f"again, the same {args.messages} mails (all duplicates)")
        results["duplicates"] = run_import(env, key, mails)
        common.log(_line(results["duplicates"]))
        results["database"] = database_counts(DB_NAME)

    imp, dup = results["import"], results["duplicates"]
    if imp["imported"] != args.messages:
        failures.append(f"imported {imp['imported']} of {args.messages} mails ({imp['skipped']} skipped)")
    if dup["duplicates"] != args.messages:
        failures.append(f"second pass found {dup['duplicates']} duplicates of {args.messages}")
    results["duplicate_speedup"] = round(imp["wall_s"] / dup["wall_s"], 1)
    results["targets"] = {
        f"import >= {TARGET_RATE:.0f} emails/s": imp["emails_per_s"] >= TARGET_RATE,
        f"duplicates >= {TARGET_DUP_SPEEDUP:.0f}x faster": results["duplicate_speedup"] >= TARGET_DUP_SPEEDUP,
    }
    if "quarter" in results:
        grow = imp["peak_rss_mib"] - results["quarter"]["peak_rss_mib"]
        results["rss_growth_mib"] = round(grow, 1)
        results["targets"]["peak RSS independent of size"] = grow <= max(20.0, 0.1 * results["quarter"]["peak_rss_mib"])
    results["failures"] = failures
    common.write_json(RESULTS, results)
    print_summary(results)
    return 1 if failures else 0


def _line(run: dict) -> str:
    return (f"{run['mails']} mails: {run['imported']} imported, {run['duplicates']} duplicates, "
            f"{run['skipped']} skipped in {run['wall_s']} s = {run['emails_per_s']}/s "
            f"(loop {run['loop_emails_per_s']}/s), peak RSS {run['peak_rss_mib']} MiB, CPU {run['cpu_s']} s")


def print_summary(results: dict) -> None:
    print()
    print("Email import (manage.py import_mail, production settings, PostgreSQL)")
    archive = results["archive"]
    print(f"  archive: {archive['mails']} .eml files, {archive['bytes'] / 2**20:.1f} MiB "
          f"(mean {archive['mean_bytes']} B, median {archive['median_bytes']} B, max {archive['max_bytes']} B)")
    print(f"  import:     {_line(results['import'])}")
    print(f"  duplicates: {_line(results['duplicates'])}")
    print(f"  duplicate pass {results['duplicate_speedup']}x faster than the import")
    if "quarter" in results:
        print(f"  N/4 import: {_line(results['quarter'])}")
        print(f"  peak RSS: {results['quarter']['peak_rss_mib']} MiB at N/4, {results['import']['peak_rss_mib']} MiB "
              f"at N (Django alone, manage.py check: {results['django_check_rss_mib']} MiB)")
    print(f"  database after: {results['database']}")
    for name, ok in results["targets"].items():
        print(f"  target {name}: {'met' if ok else 'NOT met'}")
    if results.get("profile_top"):
        print("\n  cProfile of the profiled run, top cumulative:")
        for line in results["profile_top"]:
            print("   ", line)
    for failure in results["failures"]:
        print(f"  FAILED: {failure}")
    print(f"  results: {RESULTS.relative_to(common.ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
