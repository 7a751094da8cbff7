"""One place for a user's state and settings: the data directory, the config file, and where each setting came from.

The data directory is ``$SCALEOUT_HOME``, else ``$XDG_DATA_HOME/scaleout``, else ``~/.local/share/scaleout``; it
holds the default SQLite database. Settings come from, weakest first: the defaults, ``$SCALEOUT_HOME/config.toml``,
``./scaleout.toml``, the environment (``SCALEOUT_DB_URL`` ...), then a command's flags.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict

__all__ = [
    "HOME_VAR",
    "KEYS",
    "ConfigError",
    "Setting",
    "data_dir",
    "default_db_path",
    "default_db_url",
    "config_files",
    "effective_settings",
    "setting",
    "apply_config_to_environment",
]

HOME_VAR = "SCALEOUT_HOME"
KEYS: dict[str, str] = {
    "db_url": "SCALEOUT_DB_URL",
    "orchestrator_url": "SCALEOUT_ORCHESTRATOR_URL",
    "registry_url": "SCALEOUT_REGISTRY_URL",
    "token_file": "SCALEOUT_TOKEN_FILE",
}
"""Each config-file key and the environment variable that overrides it."""
_MAX_CONFIG_BYTES = 64 * 1024


class ConfigError(ValueError):
    """A config file that cannot be read, is not TOML, or holds a key scaleout does not know."""


class Setting(BaseModel):
    """One effective setting: its value and where it came from (default, a file, an environment variable, a flag)."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: str
    source: str


def data_dir() -> Path:
    """Where scaleout keeps its state: ``$SCALEOUT_HOME``, else ``$XDG_DATA_HOME/scaleout``, else
    ``~/.local/share/scaleout`` (not created here)."""
    home = os.environ.get(HOME_VAR)
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "scaleout"


def default_db_path() -> Path:
    """The default SQLite database: ``scaleout.db`` in the data directory."""
    return data_dir() / "scaleout.db"


def default_db_url() -> str:
    """The default database URL (the SQLite file in the data directory)."""
    return f"sqlite:///{default_db_path()}"


def _defaults() -> dict[str, str]:
    return {
        "db_url": default_db_url(),
        "orchestrator_url": "http://127.0.0.1:8100",
        "registry_url": "http://127.0.0.1:8600",
        "token_file": str(Path("~/.config/scaleout/token").expanduser()),
    }


def config_files() -> list[Path]:
    """The config files read, weakest first: ``$SCALEOUT_HOME/config.toml`` (the data directory's), then
    ``./scaleout.toml``; only those that exist."""
    candidates = [data_dir() / "config.toml", Path.cwd() / "scaleout.toml"]
    return [path for path in candidates if path.is_file()]


def _read_config(path: Path) -> dict[str, str]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror or exc}") from None
    if len(raw) > _MAX_CONFIG_BYTES:
        raise ConfigError(f"the config file {path} is larger than {_MAX_CONFIG_BYTES} bytes; it holds a few keys")
    try:
        document = tomllib.loads(raw.decode("utf-8", errors="replace"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the config file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(document) - set(KEYS))
    if unknown:
        raise ConfigError(
            f"the config file {path} has unknown key(s) {', '.join(unknown)}; known keys: {', '.join(KEYS)}"
        )
    values: dict[str, str] = {}
    for key, value in document.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f'the config file {path}: {key} must be a non-empty string, e.g. {key} = "..."')
        values[key] = value.strip()
    return values


def _from_files() -> dict[str, Setting]:
    """The config files' settings, the later file's winning."""
    chosen: dict[str, Setting] = {}
    for path in config_files():
        for name, value in _read_config(path).items():
            chosen[name] = Setting(name=name, value=value, source=str(path))
    return chosen


def effective_settings(flags: Mapping[str, str | None] | None = None) -> dict[str, Setting]:
    """Every setting with its value and source: flags beat the environment, which beats the config files, which
    beat the defaults (raises ``ConfigError`` for a bad config file)."""
    chosen = {name: Setting(name=name, value=value, source="default") for name, value in _defaults().items()}
    chosen.update(_from_files())
    for name, variable in KEYS.items():
        value = os.environ.get(variable)
        if value:
            chosen[name] = Setting(name=name, value=value, source=f"${variable}")
    for name, value in (flags or {}).items():
        if value and name in chosen:
            chosen[name] = Setting(name=name, value=value, source="flag")
    return chosen


def setting(name: str, flag: str | None = None) -> str:
    """One setting's effective value: ``flag`` when given, else the environment, a config file or the default."""
    if name not in KEYS:
        raise KeyError(f"no setting {name!r}; known: {', '.join(KEYS)}")
    return effective_settings({name: flag})[name].value


def apply_config_to_environment() -> None:
    """Export the config files' values as their environment variables where those are unset, so every library
    reading the environment sees them (the environment still overrides the files)."""
    for name, chosen in _from_files().items():
        if not os.environ.get(KEYS[name]):
            os.environ[KEYS[name]] = chosen.value
