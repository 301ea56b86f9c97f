"""CURVE keys for the Work-API: the server keypair, worker keypairs, and who is authorised.

Layout under ``<data_dir>/keys``::

    server.key, server.key_secret     the Producer's and Collector's keypair
    authorized/NAME.key               public keys of the workers allowed in
    workers/NAME/worker.key_secret    a worker's keypair, and beside it the server's
    workers/NAME/server.key           public key: copy this folder to the worker box
                                      and start it with ``--keys DIR``

Servers start a ``ThreadAuthenticator`` that lets in only keys found in ``authorized/``, as
the :class:`KeyRing` reads them: again whenever the folder changes, so ``edgeapp keys revoke``
applies to the next handshake, and the Producer and Collector drop a revoked worker that is
already connected. Binding a non-loopback address without keys is refused unless the operator
says insecure. A file that is not a key is a config error naming the file.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import zmq
from zmq.utils import z85

from edgeapp.errors import ConfigError, SecurityError

logger = logging.getLogger(__name__)

SERVER = "server"
WORKER = "worker"
AUTHORIZED = "authorized"
WORKERS = "workers"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def keys_dir(data_dir: str | Path) -> Path:
    """Where ``edgeapp keys`` keeps the keys for ``data_dir``."""
    return Path(data_dir) / "keys"


def _require_curve() -> None:
    if not zmq.has("curve"):
        raise SecurityError("this libzmq has no CURVE support; reinstall pyzmq")


def init_server(root: str | Path, force: bool = False) -> Path:
    """Make the server keypair (and ``authorized/``); refuse to overwrite unless ``force``."""
    import zmq.auth

    _require_curve()
    root = Path(root)
    secret = root / f"{SERVER}.key_secret"
    if secret.exists() and not force:
        raise SecurityError(f"{secret} exists; use --force to replace it (workers need new keys)")
    (root / AUTHORIZED).mkdir(parents=True, exist_ok=True)
    zmq.auth.create_certificates(root, SERVER)
    secret.chmod(0o600)
    return secret


def add_worker(root: str | Path, name: str) -> Path:
    """Make a keypair for worker ``name``, authorise it, return the folder to hand to it."""
    import zmq.auth

    _require_curve()
    if not _NAME.match(name):
        raise SecurityError(f"worker name {name!r}: use letters, digits, '.', '_' or '-'")
    root = Path(root)
    server_public = root / f"{SERVER}.key"
    if not server_public.exists():
        raise SecurityError(f"no server keys in {root}; run 'edgeapp keys init' first")
    folder = root / WORKERS / name
    if folder.exists():
        raise SecurityError(f"worker {name!r} exists; revoke it first")
    folder.mkdir(parents=True)
    public, secret = zmq.auth.create_certificates(folder, WORKER)
    Path(secret).chmod(0o600)
    shutil.copy(server_public, folder / f"{SERVER}.key")
    shutil.copy(public, root / AUTHORIZED / f"{name}.key")
    return folder


def revoke_worker(root: str | Path, name: str) -> bool:
    """Remove worker ``name``'s authorisation and keys; False when it was unknown."""
    root = Path(root)
    found = False
    cert = root / AUTHORIZED / f"{name}.key"
    if _NAME.match(name) and cert.exists():
        cert.unlink()
        found = True
    folder = root / WORKERS / name
    if _NAME.match(name) and folder.is_dir():
        shutil.rmtree(folder)
        found = True
    return found


def list_workers(root: str | Path) -> list[str]:
    """Names of the authorised workers."""
    folder = Path(root) / AUTHORIZED
    return sorted(p.stem for p in folder.glob("*.key")) if folder.is_dir() else []


@dataclass(frozen=True)
class ServerKeys:
    """The server keypair and the folder of authorised worker keys."""

    public: bytes
    secret: bytes
    authorized: Path


@dataclass(frozen=True)
class ClientKeys:
    """A worker's keypair and the server public key it trusts."""

    public: bytes
    secret: bytes
    server_public: bytes


def read_key_file(path: Path, secret: bool) -> tuple[bytes, bytes | None]:
    """(public, secret) z85 keys from a key file; ConfigError naming the file otherwise."""
    import zmq.auth

    try:
        public, secret_key = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a CURVE key file ({_one_line(exc)}); make keys with "
                          "'edgeapp keys'") from None
    for what, key in (("public", public), ("secret", secret_key)):
        if key is None and what == "secret" and not secret:
            continue
        if key is None:
            raise ConfigError(f"{path}: holds no {what} key; make keys with 'edgeapp keys'")
        if not _is_z85_key(key):
            raise ConfigError(f"{path}: the {what} key is not a 40-character Z85 CURVE key; "
                              "make keys with 'edgeapp keys'")
    return public, secret_key


def _is_z85_key(key: bytes) -> bool:
    if len(key) != 40:
        return False
    try:
        return len(z85.decode(key)) == 32
    except (ValueError, KeyError, TypeError):
        return False


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def load_server_keys(root: str | Path) -> ServerKeys:
    """Read the server keypair made by :func:`init_server` (and check ``authorized/``)."""
    _require_curve()
    root = Path(root)
    secret_file = root / f"{SERVER}.key_secret"
    if not secret_file.exists():
        raise SecurityError(f"no server keys at {secret_file}; run 'edgeapp keys init'")
    public, secret = read_key_file(secret_file, secret=True)
    assert secret is not None
    authorized = root / AUTHORIZED
    for path in sorted(authorized.glob("*.key")):
        read_key_file(path, secret=False)  # a bad file is named now, not skipped in silence
    return ServerKeys(public, secret, authorized)


def load_client_keys(folder: str | Path) -> ClientKeys:
    """Read a worker folder made by :func:`add_worker` (its keypair + ``server.key``);
    ConfigError naming what is missing or not a key."""
    _require_curve()
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"--keys {folder}: no such folder; copy the one 'edgeapp keys "
                          "add-worker NAME' printed")
    secrets = sorted(folder.glob("*.key_secret"))
    if len(secrets) != 1:
        raise ConfigError(f"--keys {folder}: expected exactly one *.key_secret, found "
                          f"{len(secrets)}; copy the folder 'edgeapp keys add-worker NAME' made")
    server_file = folder / f"{SERVER}.key"
    if not server_file.exists():
        raise ConfigError(f"--keys {folder}: no {SERVER}.key (the server's public key); copy "
                          "the folder 'edgeapp keys add-worker NAME' made")
    public, secret = read_key_file(secrets[0], secret=True)
    server_public, _ = read_key_file(server_file, secret=False)
    assert secret is not None
    return ClientKeys(public, secret, server_public)


class KeyRing:
    """The authorised workers' public keys (z85), re-read whenever ``authorized/`` changes.

    Thread-safe: the ZAP thread asks at every handshake (``callback``), the Producer and
    Collector threads for every message (``allowed``). The folder is looked at (one
    ``scandir``) at most every ``check_every_s``; a file that is not a key is skipped with a
    warning naming it (a half-copied file must not lock everybody out).
    """

    def __init__(self, folder: str | Path, check_every_s: float = 0.25) -> None:
        self.folder = Path(folder)
        self.check_every_s = check_every_s
        self.version = 0  # bumped whenever the set of keys changes
        self._lock = threading.Lock()
        self._signature: tuple | None = None
        self._keys: frozenset[str] = frozenset()
        self._checked = -1e9
        self.refresh(now=True)

    def allowed(self, user_id: str) -> bool:
        """Whether the key ``user_id`` (z85 text, as ZAP reports it) is authorised now."""
        self.refresh()
        return user_id in self._keys

    def callback(self, domain: str, key: bytes) -> bool:
        """ZAP's question (``configure_curve_callback``): is this z85 key authorised?

        A handshake costs far more than a look at the folder, so it always looks.
        """
        self.refresh(now=True)
        return key.decode("ascii", "replace") in self._keys

    def refresh(self, now: bool = False) -> None:
        """Re-read the keys if the folder changed (looked at most every ``check_every_s``,
        or at once with ``now``)."""
        t = time.monotonic()
        with self._lock:
            if not now and t - self._checked < self.check_every_s:
                return
            self._checked = t
            signature = self._scan()
            if signature == self._signature:
                return
            self._signature = signature
            keys = set()
            for name, *_ in signature:
                try:
                    public, _ = read_key_file(self.folder / name, secret=False)
                except ConfigError as exc:
                    logger.warning("authorised keys: skipping %s", exc)
                    continue
                keys.add(public.decode("ascii"))
            if frozenset(keys) != self._keys:
                self._keys = frozenset(keys)
                self.version += 1

    def _scan(self) -> tuple:
        """(name, mtime, size) of every ``*.key`` file: what changes when keys come or go."""
        found = []
        try:
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    if entry.name.endswith(".key"):
                        st = entry.stat()
                        found.append((entry.name, st.st_mtime_ns, st.st_size))
        except OSError:
            pass
        return tuple(sorted(found))


def make_server_secure(socket: zmq.Socket, keys: ServerKeys) -> None:
    """Turn CURVE on for a server socket (call before ``bind``)."""
    socket.curve_secretkey = keys.secret
    socket.curve_publickey = keys.public
    socket.curve_server = True


def make_client_secure(socket: zmq.Socket, keys: ClientKeys) -> None:
    """Turn CURVE on for a worker socket (call before ``connect``)."""
    socket.curve_secretkey = keys.secret
    socket.curve_publickey = keys.public
    socket.curve_serverkey = keys.server_public


def start_authenticator(context: zmq.Context, ring: KeyRing):  # type: ignore[no-untyped-def]
    """A started ``ThreadAuthenticator`` on ``context`` that admits only the keys ``ring``
    holds at the time of each handshake.

    One per context (ZAP is per context); stop it after closing the context's sockets.
    """
    from zmq.auth.thread import ThreadAuthenticator

    auth = ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve_callback(domain="*", credentials_provider=ring)
    return auth


def is_local_address(address: str) -> bool:
    """True for ``ipc://``, ``inproc://`` and TCP on a loopback host."""
    scheme, _, rest = address.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    host = rest.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # '*', an interface name or a host name: reachable from outside
        return False


def check_bind(address: str, keys: ServerKeys | None, insecure: bool) -> None:
    """Refuse to expose a server on the network without CURVE, unless ``insecure``."""
    if keys is None and not insecure and not is_local_address(address):
        raise SecurityError(
            f"refusing to bind {address} without CURVE keys: anyone on the network could send "
            "work or results. Run 'edgeapp keys init' and 'edgeapp keys add-worker NAME', or "
            "pass --insecure on a trusted network.")
