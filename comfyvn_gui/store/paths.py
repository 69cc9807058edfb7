"""Where the application keeps its files (docs/architecture.md, "Storage").

``COMFYVN_GUI_HOME=DIR`` puts everything under DIR (``config/``, ``data/``, ``logs/``);
otherwise platformdirs' user folders for the app name ``comfyvn-gui`` are used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from comfyvn_gui.core.errors import OperationError

if TYPE_CHECKING:
    from collections.abc import Callable

APP_NAME = "comfyvn-gui"
HOME_ENV = "COMFYVN_GUI_HOME"


class Home(NamedTuple):
    """The set of folders one installation writes to (immutable; a NamedTuple rather than a
    dataclass: the window's start-up imports this module, and dataclasses is not cheap)."""

    config_dir: Path
    data_dir: Path
    log_dir: Path

    @property
    def registry_file(self) -> Path:
        return self.config_dir / "providers.json"

    @property
    def lock_file(self) -> Path:
        return self.config_dir / ".registry.lock"

    @property
    def journal_file(self) -> Path:
        return self.config_dir / "registry-journal.json"

    @property
    def backups_dir(self) -> Path:
        return self.config_dir / "backups"

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def home_file(self) -> Path:
        return self.config_dir / "home.json"

    @property
    def qt_settings_file(self) -> Path:
        return self.config_dir / "gui.ini"

    @property
    def jobs_file(self) -> Path:
        return self.data_dir / "jobs.sqlite3"

    @property
    def advisor_log(self) -> Path:
        return self.log_dir / "compute_advisor.log"

    @property
    def api_token_file(self) -> Path:
        return self.config_dir / "api-token"

    def ensure(self) -> None:
        """Create the folders (private to the user) if they are missing."""
        try:
            for d in (self.config_dir, self.data_dir, self.log_dir):
                d.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise OperationError(
                f"cannot create the application folders ({exc.strerror}: {exc.filename}); "
                f"check the permissions or set {HOME_ENV} to a writable folder"
            ) from exc

    def _made_once(
        self, lock_name: str, read: Callable[[], str | None], make: Callable[[], str]
    ) -> str:
        """The value ``read`` finds, else one ``make`` writes: under a file lock, so that every
        process of this home ends up with the same value."""
        value = read()
        if value is not None:
            return value
        self.ensure()
        from filelock import FileLock  # (not at import: the window's start-up needs paths)

        with FileLock(str(self.config_dir / lock_name), timeout=30):
            value = read()
            return value if value is not None else make()

    def home_id(self) -> str:
        """The random id of this home, made once; it namespaces the keyring entries."""
        import json

        def read() -> str | None:
            try:
                return str(json.loads(self.home_file.read_text("utf-8"))["home_id"])
            except (OSError, ValueError, KeyError, TypeError):
                return None

        def make() -> str:
            import secrets

            home_id = secrets.token_hex(8)
            atomic_write_text(self.home_file, json.dumps({"home_id": home_id}) + "\n")
            return home_id

        return self._made_once(".home.lock", read, make)

    def api_token(self) -> str:
        """The local HTTP API's bearer token, made at first use and kept in
        ``config/api-token`` (mode 0600). A file that others can read is made private again;
        an empty or too short one is replaced by a new token; an unreadable one is an
        :class:`OperationError`."""
        path = self.api_token_file

        def read() -> str | None:
            try:
                if path.stat().st_mode & 0o077:
                    os.chmod(path, 0o600)
                token = path.read_text("utf-8").strip()
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise OperationError(
                    f"cannot read the API token file {path} ({exc.strerror}); check its "
                    "permissions, or delete it to have a new token made"
                ) from exc
            return token if len(token) >= 32 else None

        def make() -> str:
            import secrets

            token = secrets.token_urlsafe(32)
            atomic_write_text(path, token + "\n", mode=0o600)
            return token

        return self._made_once(".api-token.lock", read, make)


def resolve_home(env: dict[str, str] | None = None) -> Home:
    env = dict(os.environ) if env is None else env
    root = env.get(HOME_ENV)
    if root:
        base = Path(root).expanduser().resolve()
        return Home(base / "config", base / "data", base / "logs")
    import platformdirs  # (only here: the window's start-up imports this module)

    return Home(
        Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
    )


def atomic_write(path: Path, write: Callable[[BinaryIO], object], *, mode: int = 0o600) -> None:
    """Write ``path`` atomically with ``write(file)``: a temp file in the same folder with
    ``mode``, fsync, replace, then fsync of the folder (best effort: the file is in place by
    then). Raises ``OSError``; whatever fails, the temp file is removed and ``path`` is as it
    was."""
    import secrets

    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    try:  # (no contextlib: the window's start-up imports this module)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def atomic_write_text(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`); creates the
    folder. :class:`OperationError` when it cannot, and then nothing was changed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda fh: fh.write(text.encode("utf-8")), mode=mode)
    except OSError as exc:
        raise OperationError(
            f"could not write {path} ({exc.strerror or exc}); nothing was changed"
        ) from exc
