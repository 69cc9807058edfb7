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


def test_many_values_read_together_are_the_values_read_one_by_one() -> None:
    """Validate-all reads every provider's secrets in one batch (the Secret Service answers
    many entries in one GetSecrets call): each value must be its own provider's, chunked
    values put together, missing ones absent."""
    store = SecretStore("batch-home")
    other = SecretStore("batch-other-home")  # another home's entries must never be mixed in
    long_value = "ya29." + "x" * 2600  # stored as three parts
    keys = []
    for i in range(30):
        store.set(f"p{i}", "api_key", f"batch-key-{i}-0123456789")
        store.set(f"p{i}", "api_secret", f"batch-secret-{i}-abcdef")
        other.set(f"p{i}", "api_key", f"other-home-{i}-0123456789")
        keys += [(f"p{i}", "api_key"), (f"p{i}", "api_secret")]
    store.set("gcp", "service_account_json", long_value)
    keys += [("gcp", "service_account_json"), ("gone", "api_key")]
    try:
        together = store.get_many(keys)
        assert together == {key: store.get(*key) for key in keys}
        assert together[("p7", "api_secret")] == "batch-secret-7-abcdef"
        assert together[("gcp", "service_account_json")] == long_value
        assert together[("gone", "api_key")] is None
        assert store.get_many([]) == {}
    finally:
        for i in range(30):
            for s in (store, other):
                s.delete(f"p{i}", "api_key")
            store.delete(f"p{i}", "api_secret")
        store.delete("gcp", "service_account_json")


def test_a_batch_read_on_a_backend_without_one_reads_one_by_one() -> None:
    backend = _RacingBackend(losses=0)
    store = SecretStore("race-home", backend=backend)
    store.set("p", "api_key", "race-secret-0001")
    store.set("q", "api_key", "race-secret-0002")
    backend.losses = 1  # the first read loses the race and is read again
    assert store.get_many([("p", "api_key"), ("q", "api_key"), ("r", "api_key")]) == {
        ("p", "api_key"): "race-secret-0001",
        ("q", "api_key"): "race-secret-0002",
        ("r", "api_key"): None,
    }
