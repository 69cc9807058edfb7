"""The audit log: JSON lines, redaction, rotation across processes, never raising."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

from comfyvn_gui.core.redaction import RedactingFilter, redact, register_secret
from comfyvn_gui.store.audit import AuditLog, get_audit_log, read_events
from comfyvn_gui.store.paths import Home, resolve_home

PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END RSA PRIVATE KEY-----"
)


@pytest.fixture
def home() -> Home:
    return resolve_home()


@pytest.fixture
def audit(home: Home) -> Iterator[AuditLog]:
    log = AuditLog(home)
    yield log
    log.close()


def _raw_lines(path: Path) -> list[str]:
    return [line for line in path.read_text("utf-8").split("\n") if line]


# ------------------------------------------------------------------------------- format


def test_event_is_one_json_object_a_line(home: Home, audit: AuditLog) -> None:
    audit.event(
        "provider.created",
        provider="runpod-1",
        template_id="runpod",
        secrets_changed=["api_key"],
    )
    audit.event("health.changed", provider="runpod-1", status="unhealthy", level="warning")

    lines = _raw_lines(home.advisor_log)
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert list(first)[:4] == ["ts", "level", "event", "pid"]
    assert first["event"] == "provider.created"
    assert first["level"] == "INFO"
    assert first["pid"] == os.getpid()
    assert first["provider"] == "runpod-1"
    assert first["secrets_changed"] == ["api_key"]
    ts = datetime.fromisoformat(first["ts"])
    assert ts.utcoffset() is not None
    assert ts.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert second["level"] == "WARNING"
    assert read_events(home) == [first, second]


def test_reserved_names_and_odd_values_are_kept_as_json(home: Home, audit: AuditLog) -> None:
    audit.event(
        "job.assigned",
        pid="shadow",
        ts="shadow",
        cost=float("nan"),
        path=Path("/tmp/x"),
        zones={"eu"},
        error=ValueError("boom"),
        text="line one\nline two \u2028 ünïcode",
    )
    (line,) = _raw_lines(home.advisor_log)
    event = json.loads(line)
    assert event["pid"] == os.getpid()
    assert event["field_pid"] == "shadow"
    assert event["field_ts"] == "shadow"
    assert event["cost"] == "nan"
    assert event["path"] == "/tmp/x"
    assert event["zones"] == ["eu"]
    assert event["error"] == "ValueError: boom"
    assert event["text"] == "line one\nline two \u2028 ünïcode"


def test_log_file_and_lock_are_private_and_in_the_log_folder(home: Home, audit: AuditLog) -> None:
    assert not home.log_dir.exists()  # lazy: nothing happens before the first event
    audit.event("x")
    assert stat.S_IMODE(home.advisor_log.stat().st_mode) == 0o600
    locks = [p for p in home.log_dir.iterdir() if p.name.endswith(".lock")]
    assert locks, "the lock file lives in the log folder"
    for lock in locks:
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600


def test_get_audit_log_is_one_per_path(home: Home) -> None:
    log = get_audit_log(home)
    assert get_audit_log(resolve_home()) is log
    log.event("once")
    log.event("twice")
    assert [e["event"] for e in read_events(home)] == ["once", "twice"]
    log.close()
    log.event("after close")  # reopens lazily
    assert [e["event"] for e in read_events(home)][-1] == "after close"
    log.close()


def test_audit_logger_does_not_reach_the_root_logger(
    audit: AuditLog, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        audit.event("private.event", provider="p")
    assert not [r for r in caplog.records if "private.event" in r.getMessage()]


# ------------------------------------------------------------------------------- redaction


def test_registered_secret_masked_everywhere(home: Home, audit: AuditLog) -> None:
    secret = "rp_live_9f8e7d6c5b4a"
    register_secret(secret)
    register_secret("abc")  # too short: ignored, ordinary text stays readable
    audit.event(
        f"weird {secret} event",
        provider="runpod-1",
        note=f"request failed with key {secret}!",
        nested={"deep": [{"deeper": (f"x{secret}y", 1)}], secret: "as a key"},
        plain="abc stays",
    )
    text = home.advisor_log.read_text("utf-8")
    assert secret not in text
    (event,) = read_events(home)
    assert event["event"] == "weird *** event"
    assert event["note"] == "request failed with key ***!"
    assert event["nested"] == {"deep": [{"deeper": ["x***y", 1]}], "***": "as a key"}
    assert event["plain"] == "abc stays"


def test_each_secret_is_masked_from_the_moment_it_is_registered() -> None:
    """The pattern of registered secrets is rebuilt when next used, not on each registration
    (an import registers hundreds): a secret registered between two redactions, and one that
    contains an earlier one, are still masked whole at once."""
    from comfyvn_gui.core.redaction import redact_text

    for i in range(50):
        secret = f"lazy-secret-{i:04d}-qwerty"
        assert redact_text(f"before {secret}") == f"before {secret}"
        register_secret(secret)
        assert redact_text(f"key {secret} used") == "key *** used"
    register_secret("lazy-secret-0007-qwerty-and-more")
    assert redact_text("x lazy-secret-0007-qwerty-and-more y") == "x *** y"
    register_secret("lazy-secret-0007-qwerty")  # already known: nothing changes
    assert redact_text("lazy-secret-0049-qwerty") == "***"


def test_secret_with_quotes_masked_in_serialised_text(home: Home, audit: AuditLog) -> None:
    sa_json = '{"type": "service_account", "client_email": "a@b.iam", "x": "line\nbreak"}'
    register_secret(sa_json)
    audit.event("x", dump=json.dumps({"blob": sa_json}), raw=sa_json)
    text = home.advisor_log.read_text("utf-8")
    assert "a@b.iam" not in text
    (event,) = read_events(home)
    assert event["raw"] == "***"


def test_exception_traceback_is_redacted(home: Home, audit: AuditLog) -> None:
    secret = "tb-secret-0123456789"
    register_secret(secret)
    try:
        raise RuntimeError(f"provider said: invalid key {secret}; Bearer abc.def.ghi")
    except RuntimeError as exc:
        audit.event("validation.result", provider="p", status="error", exc_info=exc)
        audit.event("validation.result", provider="p", status="error", exc_info=True)
    text = home.advisor_log.read_text("utf-8")
    assert secret not in text
    assert "abc.def.ghi" not in text
    events = read_events(home)
    assert len(events) == 2
    for event in events:
        assert "Traceback (most recent call last)" in event["exc"]
        assert "RuntimeError: provider said: invalid key ***; Bearer ***" in event["exc"]


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "API_KEY",
        "apikey",
        "apiKey",
        "X-Api-Key",
        "access_key",
        "aws_secret_access_key",
        "secret",
        "secret_key",
        "client_secret",
        "clientSecret",
        "token",
        "api_token",
        "access_token",
        "password",
        "db_password",
        "passphrase",
        "key_passphrase",
        "webhook_secret",
        "service_account_json",
        "private_key",
        "Authorization",
        "credential",
        "credentials",
    ],
)
def test_secret_looking_keys_are_masked(key: str) -> None:
    assert redact({key: "hunter2-value"}) == {key: "***"}
    assert redact({key: 12345}) == {key: "***"}
    assert redact({key: {"any": "structure"}}) == {key: "***"}
    assert redact({key: None}) == {key: None}  # nothing to hide: shows "not set"


@pytest.mark.parametrize(
    "key",
    ["secrets_set", "fields", "fields_changed", "secrets_changed", "provider", "token_uri", "key"],
)
def test_field_name_keys_are_not_masked(key: str) -> None:
    value = ["api_key", "client_secret"]
    assert redact({key: value}) == {key: value}


def test_secret_keys_masked_in_the_log(home: Home, audit: AuditLog) -> None:
    audit.event(
        "provider.registered",
        provider="aws-1",
        config={"region": "eu-west-1", "access_key": "AKIAzzz", "endpoints": {"aws": "x"}},
        secrets={"secret_key": "s3cr3t-v4lue"},
        secrets_set=["access_key", "secret_key"],
        password="pw-value-123",
    )
    text = home.advisor_log.read_text("utf-8")
    assert "s3cr3t-v4lue" not in text
    assert "pw-value-123" not in text
    (event,) = read_events(home)
    assert event["config"] == {
        "region": "eu-west-1",
        "access_key": "***",
        "endpoints": {"aws": "x"},
    }
    assert event["secrets"] == "***"
    assert event["secrets_set"] == ["access_key", "secret_key"]
    assert event["password"] == "***"


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("GET /v2/x with Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig-_~+/=", "eyJhbGciOi"),
        ("header bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
        ("aws key AKIA" + "IOSFODNN7EXAMPLE in use", "AKIA" + "IOSFODNN7EXAMPLE"),
        ("session ASIAY34FZKBOKMUTVV7A!", "ASIAY34FZKBOKMUTVV7A"),
        (f"key file:\n{PEM}\nend", "MIIEowIBAAKCAQEAu1SU1"),
        ("truncated -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B", "MIIEvQIBADAN"),
        ('{"type": "service_account", "private_key": "abc\\ndef\\"ghi"}', "abc\\ndef"),
        ("{'client_secret': 'cs-value-42'}", "cs-value-42"),
        ("https://console.vast.ai/api/v0/instances?api_key=vast-key-77&owner=me", "vast-key-77"),
        ("password=pw-in-text token: tok-in-text", "-in-text"),
        ('    token = "tok in source line"', "tok in source"),
        ("""{"note": "said {'password': 'nested-pw'}"}""", "nested-pw"),
        ('{\\"private_key\\": \\"escaped-json-key\\"}', "escaped-json-key"),
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "K7MDENG"),
    ],
)
def test_credential_patterns_in_free_text(text: str, leak: str) -> None:
    out = redact(text)
    assert leak not in out
    assert "***" in out
    assert redact(out) == out  # idempotent


def test_pattern_redaction_keeps_ordinary_text() -> None:
    text = 'status=healthy, provider: runpod-1, "private_key_id": "abc123", token_uri=https://x'
    assert redact(text) == text
    assert redact({"k": ("a", 1, None, 2.5)}) == {"k": ("a", 1, None, 2.5)}
    marker = object()
    assert redact(marker) is marker


def test_redact_returns_a_copy() -> None:
    original = {"config": {"api_key": "v-123456", "items": ["a"]}}
    copy = redact(original)
    copy["config"]["items"].append("b")
    assert original == {"config": {"api_key": "v-123456", "items": ["a"]}}


def test_redacting_filter_on_an_ordinary_handler() -> None:
    secret = "stderr-secret-value-1"
    register_secret(secret)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s %(provider_token)s"))
    logger = logging.getLogger("comfyvn_gui.test_redacting_filter")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning(
            "using %s with %r",
            secret,
            {"password": "pw-987654"},
            extra={"provider_token": "tok-extra-value"},
        )
        try:
            raise KeyError(f"lookup of {secret} failed")
        except KeyError:
            logger.exception("lookup failed", extra={"provider_token": None})
        logger.error("stack", stack_info=True, extra={"provider_token": None})
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert secret not in out
    assert "pw-987654" not in out
    assert "tok-extra-value" not in out
    assert "WARNING using *** with {'password': '***'} ***" in out
    assert "KeyError: 'lookup of *** failed'" in out


# ------------------------------------------------------------------------------- concurrency

_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from comfyvn_gui.store.audit import AuditLog
    from comfyvn_gui.store.paths import resolve_home

    go, worker = Path(sys.argv[1]), sys.argv[2]
    count, max_bytes = int(sys.argv[3]), int(sys.argv[4])
    log = AuditLog(resolve_home(), max_bytes=max_bytes, backup_count=20)
    deadline = time.monotonic() + 30
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.002)
    for seq in range(count):
        log.event("test.concurrent", worker=worker, seq=seq, padding="x" * 40)
    log.close()
    """
)


@pytest.mark.slow
def test_processes_write_every_line_whole_across_rotation(home: Home, tmp_path: Path) -> None:
    workers, count, max_bytes = 4, 300, 32 * 1024
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(go), f"w{i}", str(count), str(max_bytes)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(workers)
    ]
    time.sleep(0.3)  # let them start, so they write at the same time
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert err == ""

    files = sorted(home.log_dir.glob(home.advisor_log.name + "*"))
    assert len(files) >= 3, "small max_bytes forced several rotations"
    raw: list[str] = []
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        raw.extend(_raw_lines(path))
    assert len(raw) == workers * count
    parsed = [json.loads(line) for line in raw]  # every line is whole, valid JSON
    seen = sorted((e["worker"], e["seq"]) for e in parsed)
    assert seen == sorted((f"w{i}", s) for i in range(workers) for s in range(count))
    assert len({e["pid"] for e in parsed}) == workers
    switches = sum(a["worker"] != b["worker"] for a, b in pairwise(parsed))
    assert switches >= workers, "the writers ran at the same time (their lines alternate)"

    events = read_events(home)
    assert len(events) == workers * count
    for i in range(workers):  # oldest file first: each writer's events come in order
        mine = [e["seq"] for e in events if e["worker"] == f"w{i}"]
        assert mine == list(range(count))


def test_threads_share_one_log(home: Home) -> None:
    log = AuditLog(home, max_bytes=16 * 1024, backup_count=50)

    def write(worker: int) -> None:
        for seq in range(150):
            log.event("test.thread", worker=worker, seq=seq)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    events = read_events(home)
    assert sorted((e["worker"], e["seq"]) for e in events) == sorted(
        (w, s) for w in range(4) for s in range(150)
    )


# ------------------------------------------------------------------------------- failures


def test_unwritable_log_folder_never_raises_and_warns_once(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    home.log_dir.parent.mkdir(parents=True, exist_ok=True)
    home.log_dir.write_text("a file where the log folder should be")  # works as root too
    log = AuditLog(home)
    secret = "warn-secret-value-42"
    register_secret(secret)
    log.event("first", note=secret)
    log.event("second")
    log.close()
    err = capsys.readouterr().err
    assert err.count("cannot write the audit log") == 1
    assert str(home.advisor_log) in err
    assert secret not in err


def test_unwritable_log_file_never_raises_and_warns_once(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    home.advisor_log.mkdir(parents=True)  # the log file's name is taken by a folder
    log = AuditLog(home)
    for i in range(3):
        log.event("dropped", seq=i)
    log.close()
    err = capsys.readouterr().err
    assert err.count("cannot write the audit log") == 1
    assert read_events(home) == []


def test_read_events_skips_broken_lines(home: Home, audit: AuditLog) -> None:
    audit.event("good", n=1)
    audit.close()
    with home.advisor_log.open("a", encoding="utf-8") as fh:
        fh.write('{"truncated": \n[1, 2]\n\nnot json\n')
    (home.log_dir / (home.advisor_log.name + ".1")).write_text('{"event": "older"}\n')
    audit.event("good", n=2)
    assert [e["event"] for e in read_events(home)] == ["older", "good", "good"]
