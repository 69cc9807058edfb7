"""The secret store: the OS keyring through ``keyring``, and nothing else.

docs/architecture.md, "Storage".

Entries live under the service ``comfyvn-gui/<home_id>`` with the username
``<provider_id>/<field>``, so two homes never see each other's secrets. A value longer than
:data:`CHUNK_SIZE` characters (a Google service-account JSON is ~2,300; Windows Credential
Manager holds ~1,280) is stored as parts ``<provider_id>/<field>#1..N`` and the main entry
holds ``comfyvn-chunks:N``.

There is no plaintext fallback of any kind: when no secure backend is available, or it is
locked, or it refuses, a typed :class:`SecretStoreError` says so and how to fix it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from comfyvn_gui.core.errors import OperationError
from comfyvn_gui.core.redaction import register_secret
from comfyvn_gui.core.wording import keyring_backend

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

CHUNK_SIZE = 1000
CHUNK_MARK = "comfyvn-chunks:"
SERVICE_PREFIX = "comfyvn-gui"
#: Reads of one entry before a lost find-then-read race counts as a failure (see _read).
_READ_ATTEMPTS = 3
#: What a lost find-then-read race raises (secretstorage's, or the D-Bus error under it).
_RACES = ("ItemNotFoundException", "DBusErrorResponse")
#: One keyring call at a time in this process. The Secret Service backend opens a D-Bus
#: connection per call; from several threads at once, about one read in a thousand failed
#: (InitError, ItemNotFoundException), and a check then reported a working provider as broken.
_BACKEND_LOCK = threading.RLock()
#: ``previous`` of :meth:`SecretStore.set` when the caller has not read the value there now.
UNREAD: object = object()

# Backends that do not protect a secret: never used, whatever the user's keyring config says.
_INSECURE_BACKEND_MODULES = ("keyrings.alt", "keyring.backends.fail", "keyring.backends.null")

_FIX_HINT = (
    "comfyvn-gui keeps credentials only in the OS keyring, never in files. On Linux install and "
    "start a Secret Service (gnome-keyring or KWallet) in your desktop session; on macOS and "
    "Windows the system keychain / Credential Manager is used."
)


class SecretStoreError(OperationError):
    """The keyring could not be used. Nothing was written."""

    code = "keyring_error"


class KeyringUnavailableError(SecretStoreError):
    code = "keyring_unavailable"


class KeyringLockedError(SecretStoreError):
    code = "keyring_locked"


class KeyringDeniedError(SecretStoreError):
    code = "keyring_denied"


def username(provider_id: str, field: str) -> str:
    return f"{provider_id}/{field}"


class SecretStore:
    """Typed access to one home's keyring entries. The backend is resolved lazily."""

    def __init__(
        self, home_id: str | Callable[[], str], backend: KeyringBackend | None = None
    ) -> None:
        # The home id may be given lazily, so that a missing or locked keyring is reported
        # before anything (even the home's id file) is written.
        self._home_id = home_id
        self._service: str | None = None
        self._backend = backend
        self._lock = threading.RLock()

    @property
    def service(self) -> str:
        with self._lock:
            if self._service is None:
                if callable(self._home_id):
                    self.backend  # noqa: B018 - resolve (and probe) the backend first
                    home_id = self._home_id()
                else:
                    home_id = self._home_id
                self._service = f"{SERVICE_PREFIX}/{home_id}"
            return self._service

    # -- backend -------------------------------------------------------------------------

    @property
    def backend(self) -> KeyringBackend:
        with self._lock:
            if self._backend is None:
                backend = _resolve_backend()
                with _translate("read"):  # a locked keyring says so here, before any write
                    backend.get_password(f"{SERVICE_PREFIX}/probe", "probe")
                self._backend = backend
            return self._backend

    @property
    def backend_name(self) -> str:
        """Which backend holds the secrets, e.g. ``keyring.backends.SecretService.Keyring``."""
        try:
            b = self.backend
        except SecretStoreError:
            return "none"
        return getattr(b, "keyring_name", None) or f"{type(b).__module__}.{type(b).__qualname__}"

    @property
    def backend_label(self) -> str:
        """The backend in a user's words: "Secret Service", "macOS Keychain" ..."""
        return keyring_backend(self.backend_name)

    def check(self) -> None:
        """Raise a typed error unless the keyring can be read now (it may be locked)."""
        with _BACKEND_LOCK, _translate("read"):
            self.backend.get_password(f"{SERVICE_PREFIX}/probe", "probe")

    # -- logical values (chunked transparently) --------------------------------------------

    def get(self, provider_id: str, field: str) -> str | None:
        return self.get_raw(username(provider_id, field))

    def set(self, provider_id: str, field: str, value: str, *, previous: object = UNREAD) -> None:
        """Store a value. ``previous``: the value there now when the caller has just read it
        (with :meth:`get_many`), which saves reading it again; else it is read here."""
        self.set_raw(username(provider_id, field), value, previous=previous)

    def delete(self, provider_id: str, field: str) -> None:
        self.delete_raw(username(provider_id, field))

    def _read(self, user: str) -> str | None:
        """One entry's value (the caller holds ``_BACKEND_LOCK``). The Secret Service can lose
        the race between finding an item and reading it while another process writes
        (secretstorage's ItemNotFoundException): the read is tried again, a few times, before it
        counts as a failure. A missing entry is ``None``, not an exception, so a retry never
        hides one."""
        for attempt in range(_READ_ATTEMPTS):
            try:
                return self.backend.get_password(self.service, user)
            except Exception as exc:
                if type(exc).__name__ != "ItemNotFoundException" or attempt == _READ_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def get_raw(self, user: str) -> str | None:
        with _BACKEND_LOCK, _translate("read"):
            main = self._read(user)
            if main is None or not main.startswith(CHUNK_MARK):
                if main is not None:
                    register_secret(main)
                return main
            n = _chunk_count(main)
            parts = []
            for i in range(1, n + 1):
                part = self._read(f"{user}#{i}")
                if part is None:
                    raise SecretStoreError(
                        f"the keyring entry {self.service} {user} is incomplete (part {i} of "
                        f"{n} is missing); enter the credential again"
                    )
                parts.append(part)
        value = "".join(parts)
        register_secret(value)
        return value

    def get_many(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """Many values at once, ``{(provider_id, field): value or None}``: one batch of
        keyring round trips where the backend reads many entries together (the Secret
        Service), else one read after another. Chunked values are put together as in
        :meth:`get`."""
        users = {username(pid, field): (pid, field) for pid, field in keys}
        with _BACKEND_LOCK, _translate("read"):
            found = self._read_many(list(users))
            chunked = {
                u: _chunk_count(v) for u, v in found.items() if v and v.startswith(CHUNK_MARK)
            }
            part_names = [f"{u}#{i}" for u, n in chunked.items() for i in range(1, n + 1)]
            parts = self._read_many(part_names)
        out: dict[tuple[str, str], str | None] = {}
        for user, key in users.items():
            value = found.get(user)
            if user in chunked:
                pieces = [parts.get(f"{user}#{i}") for i in range(1, chunked[user] + 1)]
                if any(piece is None for piece in pieces):
                    raise SecretStoreError(
                        f"the keyring entry {self.service} {user} is incomplete; enter the "
                        "credential again"
                    )
                value = "".join(p for p in pieces if p is not None)
            if value is not None:
                register_secret(value)
            out[key] = value
        return out

    def _read_many(self, users: list[str]) -> dict[str, str | None]:
        """Entries' raw values (the caller holds ``_BACKEND_LOCK``)."""
        if not users:
            return {}
        batch = getattr(self.backend, "get_passwords", None)
        if batch is not None:
            for attempt in range(_READ_ATTEMPTS):
                try:
                    result: dict[str, str | None] = batch(self.service, users)
                    return result
                except Exception as exc:
                    if type(exc).__name__ not in _RACES or attempt == _READ_ATTEMPTS - 1:
                        raise
        return {u: self._read(u) for u in users}

    def set_raw(self, user: str, value: str, *, previous: object = UNREAD) -> None:
        """Store a raw entry (chunked when long). ``previous`` as in :meth:`set`: the logical
        value there now, whose parts beyond the new value's are deleted."""
        if not isinstance(value, str):
            raise TypeError("secret values are strings")
        register_secret(value)
        with _BACKEND_LOCK, _translate("write"):
            if previous is UNREAD:
                old = self.backend.get_password(self.service, user)
                old_n = _chunk_count(old) if old and old.startswith(CHUNK_MARK) else 0
            else:
                old_n = _parts_of(previous) if isinstance(previous, str) else 0
            if len(value) <= CHUNK_SIZE and not value.startswith(CHUNK_MARK):
                self.backend.set_password(self.service, user, value)
                new_n = 0
            else:
                parts = [value[i : i + CHUNK_SIZE] for i in range(0, len(value), CHUNK_SIZE)]
                for i, part in enumerate(parts, 1):  # parts first: the marker completes it
                    self.backend.set_password(self.service, f"{user}#{i}", part)
                new_n = len(parts)
                self.backend.set_password(self.service, user, f"{CHUNK_MARK}{new_n}")
            for i in range(old_n, new_n, -1):  # from the end: a kill leaves a contiguous run
                self._delete_quiet(f"{user}#{i}")

    def delete_raw(self, user: str, *, previous: object = UNREAD) -> None:
        """Delete a value and all its parts; also sweeps parts a killed writer left behind.

        Parts are always written 1..N before the main entry and deleted N..1 after it, so
        whatever a process killed half-way leaves is a run of parts starting at 1 (or, after
        a shrinking write, continuing from the new count): an upward sweep finds them all.
        """
        with _BACKEND_LOCK, _translate("delete"):
            if previous is UNREAD:
                main = self.backend.get_password(self.service, user)
                n = _chunk_count(main) if main and main.startswith(CHUNK_MARK) else 0
            else:  # the caller knows the logical value there (``previous`` as in set())
                main = previous if isinstance(previous, str) else None
                n = _parts_of(main) if main is not None else 0
            if main is not None:
                self._delete_quiet(user)
            for i in range(n, 0, -1):
                self._delete_quiet(f"{user}#{i}")
            i = n + 1
            while self.backend.get_password(self.service, f"{user}#{i}") is not None:
                self._delete_quiet(f"{user}#{i}")
                i += 1

    def _delete_quiet(self, user: str) -> None:
        import keyring.errors

        try:
            self.backend.delete_password(self.service, user)
        except keyring.errors.PasswordDeleteError:
            # Missing already; a real refusal shows up when the entry is read back.
            if self.backend.get_password(self.service, user) is not None:
                raise


def _parts_of(value: str) -> int:
    """How many parts a logical value is stored in (0: in the main entry itself)."""
    if len(value) <= CHUNK_SIZE and not value.startswith(CHUNK_MARK):
        return 0
    return -(-len(value) // CHUNK_SIZE)


def _chunk_count(main: str) -> int:
    try:
        n = int(main[len(CHUNK_MARK) :])
    except ValueError:
        n = 0
    if n < 1:
        raise SecretStoreError(
            "a keyring entry of comfyvn-gui is damaged; enter the credential again"
        )
    return n


def _resolve_backend() -> KeyringBackend:
    import keyring
    from keyring.backends import chainer

    with _translate("open"):
        backend = keyring.get_keyring()
    candidates = (
        list(backend.backends) if isinstance(backend, chainer.ChainerBackend) else [backend]
    )
    secure = [b for b in candidates if not type(b).__module__.startswith(_INSECURE_BACKEND_MODULES)]
    if not secure:
        name = ", ".join(f"{type(b).__module__}.{type(b).__name__}" for b in candidates)
        raise KeyringUnavailableError(
            f"No usable OS keyring was found (backend: {name or 'none'}). {_FIX_HINT} "
            "Nothing was saved.",
        )
    if len(secure) == 1 or not isinstance(backend, chainer.ChainerBackend):
        return _reusing_connections(secure[0])
    return backend


def _reusing_connections(backend: KeyringBackend) -> KeyringBackend:
    """keyring's Secret Service backend is replaced by the same backend over one D-Bus
    connection for the process (``store/secret_service.py``); any other backend is kept."""
    if f"{type(backend).__module__}.{type(backend).__qualname__}" != (
        "keyring.backends.SecretService.Keyring"
    ):
        return backend
    from .secret_service import shared

    return shared(backend)


@contextmanager
def _translate(action: str) -> Iterator[None]:
    """Turn keyring's and the backends' exceptions into our typed errors (no values in them)."""
    import keyring.errors as kerr

    try:
        yield
    except SecretStoreError:
        raise
    except kerr.KeyringLocked as exc:
        raise KeyringLockedError(
            f"The OS keyring is locked, so the credential could not be {_past(action)}. Unlock "
            "it (log in to your desktop session, or open your keyring manager) and try again; "
            "nothing was changed."
        ) from exc
    except (kerr.NoKeyringError, kerr.InitError) as exc:
        raise KeyringUnavailableError(
            f"The OS keyring could not be opened ({type(exc).__name__}). {_FIX_HINT} "
            "Nothing was changed."
        ) from exc
    except (kerr.PasswordSetError, kerr.PasswordDeleteError) as exc:
        raise KeyringDeniedError(
            f"The OS keyring refused to {action} the credential ({type(exc).__name__}). "
            "Check that comfyvn-gui may use your keyring; nothing else was changed."
        ) from exc
    except Exception as exc:  # backend-specific (D-Bus, Win32 ...): report, never leak
        raise SecretStoreError(
            f"The OS keyring failed to {action} a credential ({type(exc).__name__}). "
            "Check that your keyring service is running and unlocked."
        ) from exc


def _past(action: str) -> str:
    return {"read": "read", "write": "saved", "delete": "deleted", "open": "opened"}.get(
        action, action
    )
