"""CURVE keys for the Work-API: the server keypair, worker keypairs, and who is authorised.

Layout under ``<data_dir>/keys``::

    server.key, server.key_secret     the Producer's and Collector's keypair
    authorized/NAME.key               public keys of the workers allowed in
    workers/NAME/worker.key_secret    a worker's keypair, and beside it the server's
    workers/NAME/server.key           public key: copy this folder to the worker box
                                      and start it with ``--keys DIR``

Servers start a ``ThreadAuthenticator`` that lets in only keys found in ``authorized/``.
Binding a non-loopback address without keys is refused unless the operator says insecure.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import zmq

from edgeapp.errors import SecurityError

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


def load_server_keys(root: str | Path) -> ServerKeys:
    """Read the server keypair made by :func:`init_server`."""
    import zmq.auth

    _require_curve()
    root = Path(root)
    secret_file = root / f"{SERVER}.key_secret"
    if not secret_file.exists():
        raise SecurityError(f"no server keys at {secret_file}; run 'edgeapp keys init'")
    public, secret = zmq.auth.load_certificate(secret_file)
    if secret is None:
        raise SecurityError(f"{secret_file} holds no secret key")
    return ServerKeys(public, secret, root / AUTHORIZED)


def load_client_keys(folder: str | Path) -> ClientKeys:
    """Read a worker folder made by :func:`add_worker` (its keypair + ``server.key``)."""
    import zmq.auth

    _require_curve()
    folder = Path(folder)
    secrets = sorted(folder.glob("*.key_secret"))
    if len(secrets) != 1:
        raise SecurityError(f"{folder}: expected exactly one *.key_secret, found {len(secrets)}")
    server_file = folder / f"{SERVER}.key"
    if not server_file.exists():
        raise SecurityError(f"{folder}: no {SERVER}.key (the server's public key)")
    public, secret = zmq.auth.load_certificate(secrets[0])
    server_public, _ = zmq.auth.load_certificate(server_file)
    if secret is None:
        raise SecurityError(f"{secrets[0]} holds no secret key")
    return ClientKeys(public, secret, server_public)


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


def start_authenticator(context: zmq.Context, keys: ServerKeys):  # type: ignore[no-untyped-def]
    """A started ``ThreadAuthenticator`` on ``context`` that admits only authorised keys.

    One per context (ZAP is per context); stop it after closing the context's sockets.
    """
    from zmq.auth.thread import ThreadAuthenticator

    auth = ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve(domain="*", location=str(keys.authorized))
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
