"""A real Dovecot IMAP server for the email tests, one per session (per xdist worker).

It runs from its own configuration in a temporary directory, listens on a free loopback port with
plain IMAP (no TLS), and never touches a system instance. Each test gets its own IMAP account (from
a pool written to the passwd-file at start), so mailboxes, UIDs and UIDVALIDITY start fresh in
every test.
"""

from __future__ import annotations

import imaplib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ports import free_port, stop
from tests.tickets.test_services import layer  # noqa: F401 - the live-event fixture, for the email tests too

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
STARTUP_LIMIT = 30.0  # seconds; a bound on waiting, not an assertion on speed
TEST_USER = "omnitest"
# Accounts are written before Dovecot starts: it re-reads a changed passwd-file at most once a second.
ACCOUNTS = 500


def _password(n: int) -> str:
    return f"pw-{n}-Secret!"


def _system_user() -> pwd.struct_passwd:
    """The unprivileged user Dovecot's processes run as: `omnitest`, created if missing, when we are root."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER],
                       check=True)
        return pwd.getpwnam(TEST_USER)


CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {user}
default_login_user = {user}
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@dataclass
class Dovecot:
    host: str
    port: int
    root: Path
    _users: itertools.count

    def add_account(self) -> ImapAccount:
        n = next(self._users)
        if n > ACCOUNTS:
            pytest.fail(f"More than {ACCOUNTS} IMAP accounts in one session: raise ACCOUNTS")
        return ImapAccount(server=self, user=f"user{n}@example.test", password=_password(n))


@dataclass
class ImapAccount:
    server: Dovecot
    user: str
    password: str

    def settings(self, **overrides) -> dict:
        return {
            "address": "support@example.test", "imap_host": self.server.host, "imap_port": self.server.port,
            "imap_security": "none", "imap_user": self.user, "imap_folder": "INBOX", **overrides,
        }

    def client(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.server.host, self.server.port, timeout=10)
        conn.login(self.user, self.password)
        return conn

    def append(self, raw: bytes, *, folder: str = "INBOX") -> None:
        conn = self.client()
        try:
            typ, data = conn.append(folder, None, None, raw)
            assert typ == "OK", data
        finally:
            conn.logout()

    def create_folder(self, folder: str) -> None:
        conn = self.client()
        try:
            typ, data = conn.create(folder)
            assert typ == "OK", data
        finally:
            conn.logout()

    def delete_folder(self, folder: str) -> None:
        conn = self.client()
        try:
            typ, data = conn.delete(folder)
            assert typ == "OK", data
        finally:
            conn.logout()

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        """UID -> flags of every message in the folder, read without changing anything."""
        conn = self.client()
        try:
            conn.select(folder, readonly=True)
            _typ, data = conn.uid("FETCH", "1:*", "(FLAGS)")
            result = {}
            for line in data:
                if not isinstance(line, bytes):
                    continue
                text = line.decode()
                uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
                flags = text.split("FLAGS (")[1].split(")")[0].split()
                result[uid] = set(flags)
            return result
        finally:
            conn.logout()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    if not os.path.exists(DOVECOT):
        pytest.fail("Dovecot is missing: apt-get install -y dovecot-imapd")
    user = _system_user()
    root = Path(tempfile.mkdtemp(prefix="oc-dovecot-"))
    root.chmod(0o755)
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir()
    if os.geteuid() == 0:
        os.chown(root / "mail", user.pw_uid, user.pw_gid)
    (root / "users").write_text("".join(
        f"user{n}@example.test:{{PLAIN}}{_password(n)}\n" for n in range(1, ACCOUNTS + 1)
    ))
    port = free_port()
    config = root / "dovecot.conf"
    config.write_text(CONFIG.format(root=root, user=user.pw_name, uid=user.pw_uid, gid=user.pw_gid, port=port))
    process = subprocess.Popen([DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + STARTUP_LIMIT
        while True:
            if process.poll() is not None:
                log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
                pytest.fail(f"Dovecot exited: {process.stderr.read().decode()}\n{log}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("Dovecot did not start listening")
                time.sleep(0.1)
        yield Dovecot(host="127.0.0.1", port=port, root=root, _users=itertools.count(1))
    finally:
        stop(process)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def imap_account(dovecot) -> ImapAccount:
    """A fresh IMAP account with an empty INBOX."""
    return dovecot.add_account()
