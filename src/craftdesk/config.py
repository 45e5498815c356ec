"""Settings, read from the environment (prefix ``CRAFTDESK_``) and from ``.env``."""

import logging
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from craftdesk.clients import Network, parse_network

DEVELOPMENT_PEPPER = "development-pepper-not-for-production"
MIN_PEPPER_LENGTH = 32

Plan = Literal["free", "pro", "business"]

logger = logging.getLogger("craftdesk")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRAFTDESK_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./craftdesk.db"
    key_pepper: str = ""
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The proxies whose X-Forwarded-For is believed (CIDRs, comma separated): none by default.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: str = "INFO"
    # GitHub's secret scanning public keys, its JSON as published at
    # https://api.github.com/meta/public_keys/secret_scanning (read at start-up and again
    # whenever the file changes). Unset: POST /v1/secret-scanning/github answers 404.
    github_scanning_keys_file: Path | None = None

    quota_free: int = Field(1_000, ge=0)
    quota_pro: int = Field(100_000, ge=0)
    quota_business: int = Field(1_000_000, ge=0)

    session_ttl_seconds: int = Field(8 * 3600, gt=0)
    login_max_failures: int = Field(5, gt=0)
    login_max_failures_per_ip: int = Field(20, gt=0)
    login_lockout_seconds: int = Field(15 * 60, gt=0)
    max_body_bytes: int = Field(64 * 1024, gt=0)
    db_timeout_seconds: float = Field(2.0, gt=0)
    db_max_connections: int = Field(30, ge=2)
    db_pool_timeout_seconds: float = Field(30.0, gt=0)
    activity_retention_days: int = Field(30, ge=1, le=3660)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                "(the server's async drivers)"
            )
        return url

    @field_validator("github_scanning_keys_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="before")
    @classmethod
    def _split_origins(cls, values: dict[str, object]) -> dict[str, object]:
        for name in ("cors_origins", "trusted_proxies"):
            listed = values.get(name)
            if isinstance(listed, str):
                values[name] = [item.strip() for item in listed.split(",") if item.strip()]
        return values

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, proxies: list[str]) -> list[str]:
        try:
            return [str(parse_network(proxy)) for proxy in proxies]
        except ValueError as exc:
            raise ValueError(
                f"CRAFTDESK_TRUSTED_PROXIES must list CIDR ranges, e.g. 10.0.0.0/8 ({exc})"
            ) from None

    @cached_property
    def trusted_networks(self) -> list[Network]:
        return [parse_network(proxy) for proxy in self.trusted_proxies]

    @model_validator(mode="after")
    def _refuse_any_origin(self) -> "Settings":
        # Allowed with credentials, "*" would let any site read a signed-in user's session
        # (and its CSRF token): the origins must be named.
        if "*" in self.cors_origins:
            raise ValueError(
                "CRAFTDESK_CORS_ORIGINS cannot be '*' (any site could act as a signed-in "
                "user): list the dashboard's origins, e.g. https://app.example.com"
            )
        return self

    @model_validator(mode="after")
    def _require_real_pepper_in_production(self) -> "Settings":
        if self.env == "production" and (
            not self.key_pepper
            or self.key_pepper == DEVELOPMENT_PEPPER
            or len(self.key_pepper) < MIN_PEPPER_LENGTH
        ):
            raise ValueError(
                "CRAFTDESK_KEY_PEPPER must be set to a random secret of at least "
                f"{MIN_PEPPER_LENGTH} characters when CRAFTDESK_ENV=production"
            )
        return self

    @cached_property
    def pepper(self) -> bytes:
        if not self.key_pepper:
            logger.warning(
                "CRAFTDESK_KEY_PEPPER is not set: using the development pepper. "
                "Never run production like this."
            )
            return DEVELOPMENT_PEPPER.encode()
        return self.key_pepper.encode()

    @property
    def is_development(self) -> bool:
        return self.env == "development"

    def plan_quota(self, plan: str) -> int:
        quotas: dict[str, int] = {
            "free": self.quota_free,
            "pro": self.quota_pro,
            "business": self.quota_business,
        }
        return quotas[plan]
