"""Where the Redis server is and how to log in; the names of edgeapp's keys in it.

The password comes from the config (``redis.password``), else from the environment variable
``redis.password_env``, else from a ``--redis`` URL; it is never logged or shown:
``describe()`` is what messages print.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from edgeapp.errors import ConfigError, TransportError

if TYPE_CHECKING:
    import redis

    from edgeapp.config.schema import RedisConfig

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
CONNECT_TIMEOUT_S = 3.0
# Longer than the longest blocking read (XREADGROUP BLOCK), so a wait is never cut as dead.
SOCKET_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class RedisTarget:
    """One Redis server and edgeapp's namespace in it (picklable: sent to station processes)."""

    host: str = "localhost"
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    tls: bool = False
    ca_file: Path | None = None
    namespace: str = "edgeapp"

    @classmethod
    def from_config(cls, cfg: RedisConfig) -> RedisTarget:
        """The target of the config's ``redis`` section (password: config, then env)."""
        password = cfg.password or os.environ.get(cfg.password_env) or None
        return cls(cfg.host, cfg.port, cfg.db, cfg.username, password, cfg.tls,
                   cfg.tls_ca_file, cfg.namespace)

    def with_url(self, url: str) -> RedisTarget:
        """This target moved to ``url`` (``redis://`` or ``rediss://`` ``[USER[:PASS]@]HOST
        [:PORT][/DB]``); a password in the URL wins, else this one's is kept."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ConfigError(f"--redis: expected redis://HOST:6379/0 or rediss://…, got "
                              f"{redact(url)!r}")
        try:
            port = parts.port or 6379
            db = int(parts.path.strip("/") or 0)
        except ValueError:
            raise ConfigError(f"--redis: bad port or database number in {redact(url)!r}"
                              ) from None
        return dataclasses.replace(
            self, host=parts.hostname, port=port, db=db, tls=parts.scheme == "rediss",
            username=unquote(parts.username) if parts.username else self.username,
            password=unquote(parts.password) if parts.password else self.password)

    def describe(self) -> str:
        """The server as a URL without the password (for messages and logs)."""
        scheme = "rediss" if self.tls else "redis"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}/{self.db}"

    def connect(self) -> redis.Redis:
        """A client (a pool of connections; commands are thread-safe). Connects lazily."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        if not _NAME.match(self.namespace):
            raise ConfigError(f"config error: redis.namespace = {self.namespace!r}: expected "
                              "letters, digits and _ . : - (at most 64)")
        extra: dict[str, Any] = {}
        if self.tls:
            extra = {"ssl": True, "ssl_ca_certs": str(self.ca_file) if self.ca_file else None}
        # No retries inside redis-py: the callers retry with their own backoff and say so.
        return redis.Redis(host=self.host, port=self.port, db=self.db, username=self.username,
                           password=self.password, socket_connect_timeout=CONNECT_TIMEOUT_S,
                           socket_timeout=SOCKET_TIMEOUT_S, retry=Retry(NoBackoff(), 0),
                           health_check_interval=0, **extra)

    def check(self, client: redis.Redis) -> None:
        """Ping the server; a clear ``TransportError`` / ``ConfigError`` when it fails."""
        import redis

        try:
            client.ping()
        except (redis.AuthenticationError, redis.ResponseError) as exc:
            login = isinstance(exc, redis.AuthenticationError) or "NOAUTH" in str(exc)
            if login and self.password is None:
                raise ConfigError(f"Redis at {self.describe()} needs a password: set "
                                  "redis.password or the variable named by "
                                  "redis.password_env") from None
            if login:
                raise ConfigError(f"Redis at {self.describe()} refused the login: check "
                                  "redis.username and the password (redis.password or the "
                                  "variable named by redis.password_env)") from None
            raise TransportError(f"Redis at {self.describe()}: {exc}") from None
        except redis.RedisError as exc:
            raise TransportError(f"cannot reach Redis at {self.describe()}: "
                                 f"{why_down(exc)}") from None

    def keys(self) -> Keys:
        """The key names in this target's namespace."""
        return Keys(self.namespace)


def why_down(exc: BaseException) -> str:
    """A Redis connection error in a few words (never with the password: redis-py's
    messages name host and port only)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    return re.sub(r"(?<=://)([^:/@]*):[^@/]*@", r"\1:***@", url)


@dataclass(frozen=True)
class Keys:
    """The Redis keys of one namespace (streams and markers)."""

    ns: str

    @property
    def up(self) -> str:
        """Stream: every station's status, metrics, notices and heartbeats."""
        return f"{self.ns}:up"

    @property
    def requests(self) -> str:
        """Stream: VLM requests (with their frames as JPEG), read by the engine's group."""
        return f"{self.ns}:vlm:requests"

    @property
    def results(self) -> str:
        """Stream: verdicts, read by the engine's group."""
        return f"{self.ns}:results"

    @property
    def engine(self) -> str:
        """Hash: the running engine's addresses (where stations send frames)."""
        return f"{self.ns}:engine"

    def down(self, station: str) -> str:
        """Stream: answers and control for one station only."""
        return f"{self.ns}:station:{station}:down"

    def preview(self, station: str) -> str:
        """Stream: the station's newest JPEG frames (a few), for the window's tile."""
        return f"{self.ns}:station:{station}:preview"

    def answered(self, request_id: str) -> str:
        """Marker: this VLM request was answered (so a request claimed again is not)."""
        return f"{self.ns}:answered:{request_id}"
