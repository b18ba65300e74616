"""Typed settings read from ``OMNIX_*`` environment variables. Adapters are chosen by URL."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


def _flag(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name} must be true or false, got {value!r}")


def _int(value: str, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError as e:
        raise SettingsError(f"{name} must be an integer, got {value!r}") from e
    if not low <= number <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {number}")
    return number


def _float(value: str, name: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except ValueError as e:
        raise SettingsError(f"{name} must be a number, got {value!r}") from e
    if not low <= number <= high:
        raise SettingsError(f"{name} must be between {low:g} (off) and {high:g}, got {number:g}")
    return number


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    store_url: str = ""
    events_url: str = "sqlite://"
    bus_url: str = "memory://"
    cache_url: str = "memory://"
    analyst_url: str = "local://"
    host: str = "127.0.0.1"
    port: int = 8000
    env: str = "development"
    auth: str = "dev"
    jwt_secret: str | None = field(default=None, repr=False)
    jwt_public_key: str | None = field(default=None, repr=False)
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    log_level: str = "INFO"
    max_basket_lines: int = 200
    subscriber_queue_size: int = 256
    max_subscriptions_per_socket: int = 50
    max_query_depth: int = 12
    max_query_tokens: int = 3000
    max_aliases: int = 30
    db_threads: int = 4
    db_timeout_seconds: float = 10.0
    gc_interval: float = 1.0
    compiled_queries: bool = True
    rate_limit: float = 0.0
    rate_burst: int = 0
    forecast_horizon_days: float = 365.0
    ws_init_timeout: float = 10.0
    annual_discount_rate: float = 0.10
    analysis_ttl_seconds: float = 86_400.0
    ai_prices: str = ""
    anomaly_sweep_seconds: float = 300.0
    segment_sweep_seconds: float = 3600.0
    segment_active_days: float = 365.0

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file behind the embedded store (``sqlite:///path`` or the data directory)."""
        url = self.store_url or "sqlite://"
        if urlsplit(url).scheme != "sqlite":
            raise SettingsError(f"not a sqlite store URL: {url!r}")
        # SQLAlchemy's convention: sqlite:///relative/path and sqlite:////absolute/path
        rest = url[len("sqlite://") :].split("?", 1)[0]
        if rest.startswith("/"):
            rest = rest[1:]
        return Path(rest) if rest else self.data_dir / "omnix.db"

    @property
    def burst(self) -> int:
        """Requests a caller may make at once before the rate applies (default: 2 s worth)."""
        return self.rate_burst or max(1, int(2 * self.rate_limit))

    @property
    def production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        base = cls()
        values: dict[str, object] = {}

        def get(name: str) -> str | None:
            return env.get(f"OMNIX_{name}")

        if (v := get("DATA_DIR")) is not None:
            values["data_dir"] = Path(v)
        for key, attr in (
            ("STORE", "store_url"),
            ("EVENTS", "events_url"),
            ("BUS", "bus_url"),
            ("CACHE", "cache_url"),
            ("ANALYST", "analyst_url"),
            ("HOST", "host"),
            ("ENV", "env"),
            ("AUTH", "auth"),
            ("JWT_SECRET", "jwt_secret"),
            ("JWT_PUBLIC_KEY", "jwt_public_key"),
            ("JWT_AUDIENCE", "jwt_audience"),
            ("JWT_ISSUER", "jwt_issuer"),
            ("LOG_LEVEL", "log_level"),
            ("AI_PRICES", "ai_prices"),
        ):
            if (v := get(key)) is not None and v != "":
                values[attr] = v
        for key, attr, low, high in (
            ("PORT", "port", 0, 65535),
            ("MAX_BASKET_LINES", "max_basket_lines", 1, 10_000),
            ("SUBSCRIBER_QUEUE_SIZE", "subscriber_queue_size", 1, 100_000),
            ("MAX_SUBSCRIPTIONS_PER_SOCKET", "max_subscriptions_per_socket", 1, 10_000),
            ("MAX_QUERY_DEPTH", "max_query_depth", 2, 100),
            ("MAX_QUERY_TOKENS", "max_query_tokens", 100, 1_000_000),
            ("MAX_ALIASES", "max_aliases", 1, 10_000),
            ("DB_THREADS", "db_threads", 1, 64),
        ):
            if (v := get(key)) is not None and v != "":
                values[attr] = _int(v, f"OMNIX_{key}", low, high)
        for key, attr, ceiling in (
            ("RATE_LIMIT", "rate_limit", 1_000_000.0),
            ("GC_INTERVAL", "gc_interval", 3600.0),
            ("ANNUAL_DISCOUNT_RATE", "annual_discount_rate", 1.0),
        ):
            if (v := get(key)) is not None and v != "":
                values[attr] = _float(v, f"OMNIX_{key}", 0.0, ceiling)
        if (v := get("WS_INIT_TIMEOUT")) is not None and v != "":
            timeout = _float(v, "OMNIX_WS_INIT_TIMEOUT", 0.0, 300.0)
            if timeout <= 0:
                raise SettingsError("OMNIX_WS_INIT_TIMEOUT must be more than 0 seconds")
            values["ws_init_timeout"] = timeout
        if (v := get("FORECAST_HORIZON_DAYS")) is not None and v != "":
            values["forecast_horizon_days"] = _float(v, "OMNIX_FORECAST_HORIZON_DAYS", 1.0, 3650.0)
        if (v := get("SEGMENT_SWEEP_SECONDS")) is not None and v != "":
            values["segment_sweep_seconds"] = _float(
                v, "OMNIX_SEGMENT_SWEEP_SECONDS", 0.0, 7 * 86_400.0
            )
        if (v := get("SEGMENT_ACTIVE_DAYS")) is not None and v != "":
            values["segment_active_days"] = _float(v, "OMNIX_SEGMENT_ACTIVE_DAYS", 1.0, 3650.0)
        if (v := get("ANOMALY_SWEEP_SECONDS")) is not None and v != "":
            values["anomaly_sweep_seconds"] = _float(
                v, "OMNIX_ANOMALY_SWEEP_SECONDS", 0.0, 7 * 86_400.0
            )
        if (v := get("ANALYSIS_TTL")) is not None and v != "":
            values["analysis_ttl_seconds"] = _float(v, "OMNIX_ANALYSIS_TTL", 1.0, 30 * 86_400.0)
        if (v := get("RATE_BURST")) is not None and v != "":
            values["rate_burst"] = _int(v, "OMNIX_RATE_BURST", 1, 10_000_000)
        if (v := get("COMPILED_QUERIES")) is not None and v != "":
            values["compiled_queries"] = _flag(v, "OMNIX_COMPILED_QUERIES")
        settings = replace(base, **values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.auth not in {"dev", "jwt"}:
            raise SettingsError(f"OMNIX_AUTH must be 'dev' or 'jwt', got {self.auth!r}")
        if self.auth == "jwt" and not (self.jwt_secret or self.jwt_public_key):
            raise SettingsError(
                "OMNIX_AUTH=jwt needs OMNIX_JWT_SECRET (HS256) or OMNIX_JWT_PUBLIC_KEY (RS256)"
            )
        if self.auth == "dev" and self.production:
            raise SettingsError("OMNIX_AUTH=dev is refused when OMNIX_ENV=production")
        if self.env not in {"development", "test", "production"}:
            raise SettingsError(
                f"OMNIX_ENV must be development, test or production, got {self.env!r}"
            )
        for name, url in (
            ("OMNIX_STORE", self.store_url or "sqlite://"),
            ("OMNIX_EVENTS", self.events_url),
            ("OMNIX_BUS", self.bus_url),
            ("OMNIX_CACHE", self.cache_url),
            ("OMNIX_ANALYST", self.analyst_url),
        ):
            if "://" not in url or not urlsplit(url).scheme:
                raise SettingsError(
                    f"{name} must be a URL such as sqlite:// or memory://, got {url!r}"
                )
