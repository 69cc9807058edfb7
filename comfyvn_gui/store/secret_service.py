"""keyring's Secret Service backend over one D-Bus connection, kept for the process.

keyring's ``SecretService.Keyring`` opens a new D-Bus connection for every call (connect,
authenticate, ``Hello``, then a new Secret Service session with a Diffie-Hellman exchange
before the first secret travels) and closes it afterwards: 24-28 ms a secret in a team import,
and, from several threads, about one call in a thousand failed. :class:`SharedSecretService`
is the same backend (same collection, same item attributes, so entries written by either are
read by both) that keeps its collection, and with it the connection and the session, for the
next call; ``store/secrets.py`` calls it one thread at a time.

When the connection is lost (the Secret Service restarted, the bus closed it) the call is made
once more on a new connection; a collection locked in the meantime is reported as
``KeyringLocked`` as keyring does, never prompted for from a worker thread. Linux only: other
platforms keep keyring's own backends.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from keyring.backends.SecretService import Keyring as _KeyringSecretService
from keyring.errors import InitError, KeyringLocked, PasswordDeleteError

__all__ = ["SharedSecretService", "shared"]

T = TypeVar("T")

_LIVE: weakref.WeakSet[SharedSecretService] = weakref.WeakSet()
_SHARED: list[SharedSecretService] = []
_SHARED_LOCK = threading.Lock()


def shared(like: Any) -> SharedSecretService:
    """The process's one :class:`SharedSecretService`, set up as keyring's backend ``like``
    (its preferred collection and scheme)."""
    with _SHARED_LOCK:
        if not _SHARED:
            backend = SharedSecretService()
            for attr in ("preferred_collection", "scheme"):
                if attr in vars(like):
                    setattr(backend, attr, getattr(like, attr))
            _SHARED.append(backend)
        return _SHARED[0]


class SharedSecretService(_KeyringSecretService):
    """keyring's Secret Service backend, reusing one connection and session."""

    #: The keyring backend this one stands for (what ``about`` and diagnostics name).
    keyring_name = "keyring.backends.SecretService.Keyring"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._guard = threading.RLock()
        self._collection: Any = None
        self._address: str | None = None
        _LIVE.add(self)

    # -- the connection ---------------------------------------------------------------------

    def _open(self) -> Any:
        """The cached collection, or a new one, opened as keyring opens it (``InitError`` when
        there is no Secret Service, ``KeyringLocked`` when it stays locked) except that the new
        connection is closed again on every failure (keyring's own leaks it)."""
        address = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
        if self._collection is not None and address != self._address:
            self.close()  # another session bus than the one we are connected to
        if self._collection is None:
            self._collection = self._connect()
            self._address = address
        return self._collection

    def _connect(self) -> Any:
        import secretstorage
        from secretstorage import exceptions as ss_exceptions

        try:
            bus = secretstorage.dbus_init()
        except ss_exceptions.SecretStorageException as exc:
            raise InitError(f"Failed to connect to the Secret Service: {exc}.") from exc
        try:
            if hasattr(self, "preferred_collection"):
                collection = secretstorage.Collection(bus, self.preferred_collection)
            else:
                collection = secretstorage.get_default_collection(bus)
            if collection.is_locked():
                collection.unlock()  # the desktop's unlock prompt, as keyring does
                if collection.is_locked():
                    raise KeyringLocked("Failed to unlock the collection!")
        except ss_exceptions.SecretStorageException as exc:
            bus.close()
            raise InitError(f"Failed to create the collection: {exc}.") from exc
        except BaseException:
            bus.close()
            raise
        return collection

    def close(self) -> None:
        """Close the connection (a later call opens a new one)."""
        with self._guard:
            collection, self._collection = self._collection, None
            if collection is not None:
                try:
                    collection.connection.close()
                except OSError:
                    pass

    def _call(self, action: Callable[[Any], T]) -> T:
        """``action(collection)``; on a lost connection, once more on a new one."""
        with self._guard:
            for attempt in (1, 2):
                collection = self._open()
                try:
                    if collection.is_locked():
                        raise KeyringLocked("The collection is locked")
                    return action(collection)
                except (KeyringLocked, PasswordDeleteError):
                    raise
                except Exception as exc:
                    self.close()
                    if attempt == 2 or not _connection_lost(exc):
                        raise
            raise AssertionError("unreachable")

    # -- keyring's API ----------------------------------------------------------------------

    def get_password(self, service: str, username: str) -> str | None:
        def read(collection: Any) -> str | None:
            for item in collection.search_items(self._query(service, username)):
                self.unlock(item)  # type: ignore[no-untyped-call]
                return str(item.get_secret().decode("utf-8"))
            return None

        return self._call(read)

    def get_passwords(self, service: str, usernames: list[str]) -> dict[str, str | None]:
        """Many entries of ``service`` at once: ``{username: value or None}``.

        One ``SearchItems`` per entry and then one ``GetSecrets`` for all of them, instead of
        six round trips an entry (lock checks, search, unlock, read): 50 entries in about 25 ms
        rather than 150. An entry the service leaves out of the answer (locked, or deleted
        meanwhile) is read on its own, as :meth:`get_password` reads it.
        """

        def read(collection: Any) -> dict[str, str | None]:
            from secretstorage.defines import SS_PATH
            from secretstorage.util import SERVICE_IFACE, DBusAddressWrapper, open_session

            paths: dict[str, str] = {}
            for name in usernames:
                (found,) = collection._collection.call(
                    "SearchItems", "a{ss}", self._query(service, name)
                )
                if found:
                    paths[name] = found[0]
            if not paths:
                return dict.fromkeys(usernames)
            if collection.session is None:
                collection.session = open_session(collection.connection)
            session = collection.session
            proxy = DBusAddressWrapper(SS_PATH, SERVICE_IFACE, collection.connection)
            (answer,) = proxy.call("GetSecrets", "aoo", list(paths.values()), session.object_path)
            out: dict[str, str | None] = dict.fromkeys(usernames)
            missing = []
            for name, path in paths.items():
                if path in answer:
                    out[name] = _decrypt(session, answer[path]).decode("utf-8")
                else:
                    missing.append(name)
            for name in missing:
                out[name] = self.get_password(service, name)
            return out

        return self._call(read)

    def set_password(self, service: str, username: str, password: str) -> None:
        attributes = self._query(service, username, application=self.appid)
        label = f"Password for '{username}' on '{service}'"
        self._call(lambda c: c.create_item(label, attributes, password, replace=True))

    def delete_password(self, service: str, username: str) -> None:
        def delete(collection: Any) -> None:
            for item in collection.search_items(self._query(service, username)):
                item.delete()
                return
            raise PasswordDeleteError("No such password!")

        self._call(delete)


def _decrypt(session: Any, secret: Any) -> bytes:
    """A Secret Service ``Secret`` struct's value (as ``secretstorage``'s Item.get_secret)."""
    value = bytes(secret[2])
    if not session.encrypted:
        return value
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    decryptor = Cipher(algorithms.AES(session.aes_key), modes.CBC(bytes(secret[1]))).decryptor()
    padded = decryptor.update(value) + decryptor.finalize()
    return padded[: -padded[-1]]


def _connection_lost(exc: BaseException) -> bool:
    """A failure of the connection or of the service behind it, not of the request."""
    name = type(exc).__name__
    if isinstance(exc, OSError | EOFError):  # ConnectionResetError, BrokenPipeError ...
        return True
    # jeepney's DBusErrorResponse for a vanished service or session object; secretstorage's
    # wrapping of it
    text = str(exc)
    return name in ("DBusErrorResponse", "SecretServiceNotAvailableException") or any(
        marker in text
        for marker in (
            "ServiceUnknown",
            "NoReply",
            "Disconnected",
            "UnknownObject",
            "UnknownMethod",
        )
    )


@atexit.register
def _close_all() -> None:
    for backend in list(_LIVE):
        backend.close()
