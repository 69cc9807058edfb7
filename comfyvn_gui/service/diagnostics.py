"""Help -> "Save diagnostics": one zip a user can attach to a bug report, without any secret.

:meth:`Diagnostics.write` (``Service.write_diagnostics``) collects what helps to understand a
problem report:

==================  =======================================================================
``README.txt``      what is inside, and how secrets were removed
``about.json``      versions (app, Python, platform, key packages, catalog), the home's
                    folders and the keyring backend and its problem
``settings.json``   the effective settings
``providers.json``  the registered providers (secret *names* only, never values)
``checks.json``     the latest validation and health result of each provider
``local-gpu.json``  this computer's GPUs (the NVML snapshot)
``jobs.json``       the job queue, when there is one: counts by status and the latest jobs
``logs/...``        every file of the home's log folder (the last 5 MB of each)
==================  =======================================================================

Redaction, in every text written (JSON and logs alike):

1. every secret value stored in the home's keyring for a provider is read (in the calling
   thread, which must not be the GUI thread) and each occurrence of it is replaced with
   ``[redacted]``: the value itself, its JSON- and repr-escaped spellings (also escaped twice,
   as in a log line holding JSON text), each line of a multi-line value and, for a value that
   is a JSON object (a service-account key), the values under its secret-looking keys
   (``private_key`` ...) and their lines;
2. then :func:`comfyvn_gui.core.redaction.redact` masks, with ``***``, every registered secret,
   every value under a secret-looking key and credential-looking text (bearer tokens, AWS key
   ids, PEM private keys ...);
3. each finished JSON text goes through step 1 once more (escaped forms made by serialising).

When the keyring cannot be read, the zip is still written: ``about.json`` says so and step 2
alone protects it. Values shorter than 4 characters are not searched for (as for
``register_secret``: masking them would mangle ordinary text; no credential is that short).

The zip is written atomically (a temporary file in the target's folder, then ``os.replace``)
with mode 0600; an error leaves nothing behind and raises :class:`OperationError`. A saved
report is recorded in the audit log (``diagnostics.saved``: path and counts).

:class:`Diagnostics` is handed a function for each thing it reads, called when a report is made
and inside that section's guard: a home whose registry, keyring or catalog is broken still gets
its report (docs/architecture.md, "The service: composition root and features").
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

from comfyvn_gui.core.checks import CheckResult, LocalSnapshot
from comfyvn_gui.core.errors import ComfyVNError, OperationError
from comfyvn_gui.core.jobs import JOB_STATUSES
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.core.redaction import MASK, MIN_SECRET_LENGTH, is_secret_key, redact
from comfyvn_gui.store.audit import AuditLog
from comfyvn_gui.store.jobs import JobStore
from comfyvn_gui.store.paths import Home, atomic_write

__all__ = [
    "KEY_PACKAGES",
    "LOG_CAP_BYTES",
    "RECENT_JOBS",
    "REDACTED",
    "Diagnostics",
    "DiagnosticsReport",
]

#: What replaces a secret value read from the keyring (``redact()`` itself writes ``***``).
REDACTED = "[redacted]"
#: At most this many bytes (the end) of each log file go into the zip.
LOG_CAP_BYTES = 5 * 1024 * 1024
#: How many of the latest jobs ``jobs.json`` lists.
RECENT_JOBS = 50
#: A line of a multi-line secret is searched for on its own when at least this long.
MIN_LINE_LENGTH = 8

#: Packages whose versions ``about.json`` reports: shown name -> distribution names to try.
#: Read from the installed metadata only: none of them is imported.
KEY_PACKAGES: dict[str, tuple[str, ...]] = {
    "PySide6": ("PySide6", "PySide6-Essentials"),
    "qasync": ("qasync",),
    "superqt": ("superqt",),
    "keyring": ("keyring",),
    "httpx": ("httpx",),
    "pydantic": ("pydantic",),
    "boto3": ("boto3",),
    "botocore": ("botocore",),
    "azure-identity": ("azure-identity",),
    "google-auth": ("google-auth",),
    "paramiko": ("paramiko",),
    "kubernetes": ("kubernetes",),
    "nvidia-ml-py": ("nvidia-ml-py",),
}
NOT_INSTALLED = "not installed"


@dataclass(frozen=True)
class DiagnosticsReport:
    """What :meth:`Diagnostics.write` wrote.

    ``files``: the member names of the zip, in order. ``redacted_count``: how many secret
    values and secret-looking pieces of text were replaced. ``keyring_read``: whether every
    stored secret value of the home's providers was read from the keyring (and so searched for
    verbatim); False means the redaction relied on the patterns of ``redact()`` alone."""

    path: Path
    files: list[str]
    redacted_count: int
    keyring_read: bool


# --------------------------------------------------------------------------- redaction


def _escaped_forms(value: str) -> set[str]:
    once = json.dumps(value)[1:-1]
    return {
        value,
        once,
        json.dumps(value, ensure_ascii=False)[1:-1],
        json.dumps(once)[1:-1],  # JSON text holding JSON text (a log line of a JSON dump)
        repr(value)[1:-1],
    }


def _variants(value: str) -> set[str]:
    """Every spelling of a secret value to search for (see the module docstring)."""
    out = _escaped_forms(value)
    if "\n" in value or "\r" in value:
        for line in value.splitlines():
            line = line.strip()
            if len(line) >= MIN_LINE_LENGTH:
                out |= _escaped_forms(line)
    stripped = value.strip()
    if stripped.startswith("{"):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        for inner in _secret_leaves(parsed):
            if inner != value:
                out |= _variants(inner)
    return {v for v in out if len(v) >= MIN_SECRET_LENGTH}


def _secret_leaves(obj: Any, depth: int = 0) -> Iterable[str]:
    """The string values under secret-looking keys of a parsed JSON value."""
    if depth > 16:
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(key, str) and is_secret_key(key) and isinstance(value, str):
                yield value
            else:
                yield from _secret_leaves(value, depth + 1)
    elif isinstance(obj, list):
        for value in obj:
            yield from _secret_leaves(value, depth + 1)


class _Scrubber:
    """Replaces the keyring's secret values in text and counts what it replaced."""

    def __init__(self, values: Iterable[str]) -> None:
        variants: set[str] = set()
        for value in values:
            if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
                variants |= _variants(value)
        # Longest first, so a value that contains another one is replaced whole.
        ordered = sorted(variants, key=lambda s: (-len(s), s))
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None
        self.count = 0

    def values(self, text: str) -> str:
        """Step 1 only: the keyring's values."""
        if self._pattern is None:
            return text
        text, n = self._pattern.subn(REDACTED, text)
        self.count += n
        return text

    def text(self, text: str) -> str:
        """Steps 1 and 2: the keyring's values, then ``redact()``'s patterns."""
        text = self.values(text)
        masked = redact(text)
        self.count += max(0, masked.count(MASK) - text.count(MASK))
        return str(masked)

    def tree(self, obj: Any) -> Any:
        """A JSON-native value with step 1 applied to every string (keys too), then step 2."""
        obj = self._values_deep(obj)
        before = json.dumps(obj, ensure_ascii=False)
        masked = redact(obj)
        after = json.dumps(masked, ensure_ascii=False)
        self.count += max(0, after.count(MASK) - before.count(MASK))
        return masked

    def _values_deep(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.values(obj)
        if isinstance(obj, dict):
            return {self._values_deep(k): self._values_deep(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self._values_deep(v) for v in obj]
        return obj

    def json_document(self, obj: Any) -> str:
        """``obj`` redacted and serialised (indented), with a last pass over the text."""
        native = json.loads(json.dumps(obj, default=str))  # datetimes, paths ... as text
        text = json.dumps(self.tree(native), indent=1, ensure_ascii=False, sort_keys=False)
        return self.values(text) + "\n"


# --------------------------------------------------------------------------- collectors


def _error_of(exc: BaseException) -> dict[str, str]:
    message = exc.message if isinstance(exc, ComfyVNError) else str(exc)
    return {"error": f"{type(exc).__name__}: {message}"}


def _guarded(collect: Callable[[], Any]) -> Any:
    """A section's content, or what went wrong collecting it (a report must still be made)."""
    try:
        return collect()
    except Exception as exc:  # noqa: BLE001 - diagnostics are most needed when things fail
        return _error_of(exc)


def _package_versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for shown, candidates in KEY_PACKAGES.items():
        out[shown] = NOT_INSTALLED
        for name in candidates:
            try:
                out[shown] = metadata.version(name)
                break
            except metadata.PackageNotFoundError:
                continue
            except Exception:  # noqa: BLE001 - broken metadata: report it as such
                out[shown] = "unknown (broken package metadata)"
                break
    return out


def _read_keyring(
    providers: Callable[[], Sequence[ProviderEntry]],
    read_secrets: Callable[[ProviderEntry], Mapping[str, str]],
) -> tuple[list[str], bool, str | None]:
    """(every stored secret value, whether all could be read, why not)."""
    try:
        entries = providers()
    except Exception as exc:  # noqa: BLE001 - a damaged registry: nothing to read
        return [], False, f"the providers could not be listed ({_error_of(exc)['error']})"
    values: list[str] = []
    for entry in entries:
        if not entry.secrets_set:
            continue
        try:
            values.extend(read_secrets(entry).values())
        except Exception as exc:  # noqa: BLE001 - SecretStoreError and anything untranslated
            return values, False, _error_of(exc)["error"]
    return values, True, None


def _about(
    about_home: Callable[[], dict[str, Any]],
    catalog_version: Callable[[], str],
    keyring_read: bool,
    keyring_error: str | None,
) -> dict[str, Any]:
    about: dict[str, Any] = _guarded(about_home)
    about = dict(about)
    about.update(
        {
            "diagnostics_created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": sys.version,
            "python_executable": sys.executable,
            "platform": platform.platform(),
            "machine": platform.machine(),
            "packages": _package_versions(),
            "secrets_read_from_keyring": keyring_read,
        }
    )
    if "catalog_version" not in about:
        about["catalog_version"] = _guarded(catalog_version)
    if not keyring_read:
        about["keyring_read_problem"] = (
            f"the stored secret values could not be read ({keyring_error}); secrets in this "
            "report were removed by pattern-based redaction only"
        )
    return about


def _providers(providers: Callable[[], Sequence[ProviderEntry]]) -> dict[str, Any]:
    entries = providers()
    return {"count": len(entries), "providers": [e.model_dump(mode="json") for e in entries]}


def _checks(check_results: Callable[[], dict[str, dict[str, CheckResult]]]) -> dict[str, Any]:
    results = check_results()
    return {
        pid: {kind: r.model_dump(mode="json") for kind, r in kinds.items()}
        for pid, kinds in results.items()
    }


def _jobs(home: Home) -> dict[str, Any] | None:
    store = JobStore(home)  # our own: its connection is closed before we return
    if not store.exists():
        return None
    try:
        jobs = store.select()
    finally:
        store.close()
    counts: Counter[str] = Counter(str(j.status) for j in jobs)
    latest = sorted(jobs, key=lambda j: j.id)[-RECENT_JOBS:]
    return {
        "total": len(jobs),
        "by_status": {s: counts.get(s, 0) for s in JOB_STATUSES},
        "latest": [
            {
                "id": j.id,
                "title": j.title,
                "kind": j.kind,
                "status": j.status,
                "provider": _job_provider(j.meta),
                "updated_at": j.updated_at.isoformat(),
            }
            for j in latest
        ],
    }


def _job_provider(meta: dict[str, Any]) -> Any:
    compute = meta.get("compute")
    return compute.get("provider") if isinstance(compute, dict) else None


def _log_files(log_dir: Path) -> list[Path]:
    """Regular files under the log folder (no links, no hidden lock files), sorted."""
    found: list[Path] = []
    try:
        for root, dirs, files in os.walk(log_dir, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                p = Path(root) / name
                if name.startswith(".") or p.is_symlink() or not p.is_file():
                    continue
                found.append(p)
    except OSError:
        pass
    return found


def _log_text(path: Path, scrub: _Scrubber) -> str:
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            skipped = max(0, size - LOG_CAP_BYTES)
            fh.seek(skipped)
            raw = fh.read(LOG_CAP_BYTES)
    except OSError as exc:
        return f"[this log file could not be read: {exc.strerror or exc}]\n"
    text = raw.decode("utf-8", errors="replace")
    lines = text.split("\n")
    head: list[str] = []
    if skipped:
        lines = lines[1:]  # started mid-line
        head = [f"[the first {skipped} bytes of this file were left out]"]
    out = [scrub.text(line) for line in lines]
    return scrub.values("\n".join(head + out))


def _readme(files: list[str], keyring_read: bool) -> str:
    what = {
        "about.json": "versions (app, Python, platform, packages, catalog), folders, keyring",
        "settings.json": "the effective settings",
        "providers.json": "the registered providers; secret field names only, never values",
        "checks.json": "the latest validation and health result of each provider",
        "local-gpu.json": "this computer's NVIDIA GPUs (NVML snapshot)",
        "jobs.json": f"the job queue: counts by status and the latest {RECENT_JOBS} jobs",
    }
    lines = [
        "comfyvn-gui diagnostics",
        "=======================",
        "",
        "Attach this file to a bug report. It holds:",
        "",
    ]
    for name in files:
        if name in what:
            lines.append(f"  {name:<16} {what[name]}")
    logs = [f for f in files if f.startswith("logs/")]
    if logs:
        lines.append(
            f"  logs/            the application's log files ({len(logs)}; at most the last "
            f"{LOG_CAP_BYTES // (1024 * 1024)} MB of each)"
        )
    lines += [
        "",
        "Secret values were redacted from every file:",
        f"  - each credential stored in the OS keyring is replaced with {REDACTED}",
        f"  - other secret-looking text (tokens, keys, passwords) is replaced with {MASK}",
    ]
    if not keyring_read:
        lines += [
            "",
            "The OS keyring could not be read when this report was made, so the stored",
            f"credentials were not searched for verbatim: only the secret-looking text ({MASK})",
            "was redacted. Check the files before sharing them (about.json says why).",
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- writing


def _check_target(path: Path) -> None:
    if path.is_dir():
        raise OperationError(
            f"cannot save the diagnostics to {path}: it is a folder; choose a file name"
        )
    folder = path.parent
    if not folder.is_dir():
        raise OperationError(
            f"cannot save the diagnostics to {path}: the folder {folder} does not exist"
        )


def _write_zip(path: Path, members: list[tuple[str, str]]) -> None:
    t = datetime.now()
    stamp = (t.year, t.month, t.day, t.hour, t.minute, t.second)

    def write(fh: BinaryIO) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, text in members:
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (0o100600 & 0xFFFF) << 16
                zf.writestr(info, text.encode("utf-8"))

    try:
        atomic_write(path, write, mode=0o600)
    except OSError as exc:
        raise OperationError(
            f"cannot save the diagnostics to {path} ({exc.strerror or exc}); choose a folder "
            "you can write to. Nothing was written."
        ) from exc


def _api_token(home: Home) -> list[str]:
    """The local API's token, if one was made: removed like a stored secret."""
    try:
        token = home.api_token_file.read_text("utf-8").strip()
    except OSError:
        return []
    return [token] if token else []


class Diagnostics:
    """Writes the diagnostics zip of one home (see the module docstring)."""

    def __init__(
        self,
        *,
        home: Home,
        audit: AuditLog,
        providers: Callable[[], Sequence[ProviderEntry]],
        read_secrets: Callable[[ProviderEntry], Mapping[str, str]],
        about: Callable[[], dict[str, Any]],
        catalog_version: Callable[[], str],
        settings: Callable[[], dict[str, Any]],
        check_results: Callable[[], dict[str, dict[str, CheckResult]]],
        local_snapshot: Callable[[], LocalSnapshot],
    ) -> None:
        self.home = home
        self.audit = audit
        self._providers = providers
        self._read_secrets = read_secrets
        self._about = about
        self._catalog_version = catalog_version
        self._settings = settings
        self._check_results = check_results
        self._local_snapshot = local_snapshot

    def write(self, path: Path) -> DiagnosticsReport:
        """Write the diagnostics zip to ``path`` (see the module docstring).

        Blocking (reads the keyring, the logs and NVML): call it off the GUI thread. Raises
        :class:`OperationError` when ``path`` cannot be written; nothing is left behind then.
        """
        path = Path(os.path.abspath(Path(path).expanduser()))
        _check_target(path)

        values, keyring_read, keyring_error = _read_keyring(self._providers, self._read_secrets)
        values.extend(_api_token(self.home))
        scrub = _Scrubber(values)
        del values

        sections: list[tuple[str, Any]] = [
            ("about.json", _about(self._about, self._catalog_version, keyring_read, keyring_error)),
            ("settings.json", _guarded(self._settings)),
            ("providers.json", _guarded(lambda: _providers(self._providers))),
            ("checks.json", _guarded(lambda: _checks(self._check_results))),
            ("local-gpu.json", _guarded(lambda: self._local_snapshot().model_dump(mode="json"))),
        ]
        jobs = _guarded(lambda: _jobs(self.home))
        if jobs is not None:
            sections.append(("jobs.json", jobs))

        members: list[tuple[str, str]] = [(n, scrub.json_document(obj)) for n, obj in sections]
        log_dir = self.home.log_dir
        for log in _log_files(log_dir):
            name = "logs/" + log.relative_to(log_dir).as_posix()
            members.append((name, _log_text(log, scrub)))

        names = ["README.txt", *(n for n, _ in members)]
        members.insert(0, ("README.txt", scrub.values(_readme(names, keyring_read))))

        _write_zip(path, members)
        report = DiagnosticsReport(
            path=path, files=names, redacted_count=scrub.count, keyring_read=keyring_read
        )
        self.audit.event(
            "diagnostics.saved",
            path=str(path),
            files=len(names),
            redacted_count=report.redacted_count,
            keyring_read=keyring_read,
        )
        return report
