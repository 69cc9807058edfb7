"""The secret store under concurrency: the checks read credentials from several threads at once."""

from __future__ import annotations

import concurrent.futures

import pytest
from keyring.backend import KeyringBackend

from comfyvn_gui.store.secrets import SecretStore, SecretStoreError

pytestmark = pytest.mark.usefixtures("secret_service")


def test_concurrent_reads_from_threads_never_fail() -> None:
    """Validate all reads each provider's key in a pool of 4 threads. Against the real Secret
    Service, about one such read in a thousand used to fail (InitError or
    ItemNotFoundException), and the check then reported a working provider as broken."""
    store = SecretStore("concurrency-home")
    values = {f"p{i}": f"rpa_KEY{i}_0123456789abcdef" for i in range(4)}
    for pid, value in values.items():
        store.set(pid, "api_key", value)
    failures: list[str] = []
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for _ in range(200):
            futures = {pid: pool.submit(store.get, pid, "api_key") for pid in values}
            for pid, future in futures.items():
                try:
                    if future.result() != values[pid]:
                        failures.append(f"{pid}: a wrong value")
                except SecretStoreError as exc:
                    failures.append(f"{pid}: {exc.message}")
    for pid in values:
        store.delete(pid, "api_key")
    assert failures == []


class _RacingBackend(KeyringBackend):
    """A keyring whose first read of an entry loses the find-then-read race, as the Secret
    Service does while another process rewrites the entry."""

    priority = 1  # type: ignore[assignment]

    def __init__(self, losses: int) -> None:
        super().__init__()
        self.values: dict[tuple[str, str], str] = {}
        self.losses = losses
        self.reads = 0

    def get_password(self, service: str, username: str) -> str | None:
        self.reads += 1
        if self.losses:
            self.losses -= 1
            raise type("ItemNotFoundException", (Exception,), {})("item vanished")
        return self.values.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.values[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.values.pop((service, username), None)


@pytest.mark.parametrize("losses", [1, 2])
def test_a_lost_find_then_read_race_is_read_again(losses: int) -> None:
    backend = _RacingBackend(losses=0)
    store = SecretStore("race-home", backend=backend)
    store.set("p", "api_key", "race-secret-0001")
    backend.losses = losses
    assert store.get("p", "api_key") == "race-secret-0001"
    assert backend.reads == 1 + losses + 1  # set() reads the old value first, then the retries


def test_a_race_lost_every_time_is_a_clear_error() -> None:
    backend = _RacingBackend(losses=0)
    store = SecretStore("race-home", backend=backend)
    store.set("p", "api_key", "race-secret-0001")
    backend.losses = 99
    with pytest.raises(SecretStoreError, match="failed to read a credential"):
        store.get("p", "api_key")
    assert backend.losses == 99 - 3  # three attempts, then the error


def test_one_connection_serves_every_call_and_survives_a_keyring_restart() -> None:
    """The Secret Service is used over one D-Bus connection (one session) for the process,
    not one per call; when gnome-keyring restarts, the next call connects again by itself."""
    from comfyvn_gui.store.secret_service import SharedSecretService
    from tests.conftest import _SESSION_KEYRING

    store = SecretStore("one-connection-home")
    store.set("p", "api_key", "shared-conn-secret-0001")
    backend = store.backend
    assert isinstance(backend, SharedSecretService)
    assert store.backend_name == "keyring.backends.SecretService.Keyring"
    connection = backend._collection.connection
    for _ in range(20):
        assert store.get("p", "api_key") == "shared-conn-secret-0001"
    assert backend._collection.connection is connection  # no new connection was made
    assert SecretStore("another-home").backend is backend  # one for the process

    [session] = _SESSION_KEYRING
    session.restart()  # same keyring file, a new daemon: the old connection's session is gone
    assert store.get("p", "api_key") == "shared-conn-secret-0001"
    store.delete("p", "api_key")
    assert store.get("p", "api_key") is None
