"""Settings: the only reader of the environment."""

import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from runwire.templating.renderer import RenderLimits


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RUNWIRE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=3026, ge=0, le=65535)
    data_dir: Path = Path(".runwire")
    database_url: str | None = None
    dbos_system_database_url: str | None = None
    database_pool_size: int = Field(default=8, ge=3)
    dbos_pool_size: int = Field(default=8, ge=2)
    session_ttl_hours: float = Field(default=168, gt=0)
    # argon2id's cost for each password (argon2's defaults; at least 8 KiB for each of its 4 lanes).
    password_hash_memory_kib: int = Field(default=65536, ge=32)
    password_hash_time_cost: int = Field(default=3, ge=1)
    secure_cookies: bool = False
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = 1024 * 1024
    tool_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    tool_max_response_bytes: int = 5 * 1024 * 1024
    application_version: str = "3"
    executor_id: str = "local"
    max_parallel_steps: int = Field(default=8, ge=1)
    # How often an executor looks at the run queue when nothing wakes it (queued and ended runs wake it at once).
    queue_poll_seconds: float = Field(default=5.0, gt=0)
    default_step_timeout_seconds: float = Field(default=300, gt=0)
    retry_backoff_seconds: float = Field(default=1.0, ge=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # `GET /api/metrics` answers only with `Authorization: Bearer <token>`; unset, it answers 404.
    metrics_token: SecretStr | None = None
    # The port `runwire worker` serves /api/metrics, /api/liveness and /api/readiness on; unset, it serves none.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # On SIGTERM: how long running steps and requests may take to finish before the process stops anyway.
    shutdown_grace_seconds: float = Field(default=30.0, ge=0, le=3600)
    template_timeout_seconds: float = Field(default=2.0, gt=0, le=300)
    template_memory_mb: int = Field(default=256, ge=16)
    template_workers: int = Field(default=4, ge=1, le=64)
    max_step_output_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Memory for the chat lists' bodies each process keeps (see runs/list_cache.py).
    list_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    # Rate limits: each a count per window, 0 turns the limit off.
    rate_limit_sign_in_per_email: int = Field(default=10, ge=0)
    rate_limit_sign_in_per_address: int = Field(default=50, ge=0)
    rate_limit_sign_in_window_seconds: int = Field(default=15 * 60, ge=1)
    rate_limit_sign_ups_per_address: int = Field(default=10, ge=0)
    rate_limit_sign_up_window_seconds: int = Field(default=3600, ge=1)
    rate_limit_starts_per_minute: int = Field(default=60, ge=0)
    rate_limit_writes_per_minute: int = Field(default=300, ge=0)
    rate_limit_reads_per_minute: int = Field(default=0, ge=0)
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(default_factory=list)
    # The `llm` tool's OpenAI-compatible Chat Completions endpoint (OpenAI, Ollama, vLLM, llama.cpp...).
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None
    # The longest wait for the model's next bytes (connecting included) before its step fails.
    llm_read_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    # The TOML file of MCP servers (see tools/mcp/config.py); unset, no MCP server.
    tools_config: Path | None = None
    # How long a starting process waits for its MCP servers' first connection before going on without them.
    tools_startup_wait_seconds: float = Field(default=5.0, ge=0, le=120)
    # The largest inputs (as JSON) sent to a tool from outside (an MCP server).
    tool_max_input_bytes: int = Field(default=1024 * 1024, ge=1024)

    @field_validator("allowed_origins", "tool_allowed_hosts", "trusted_proxies", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return _sqlalchemy_url(self.database_url)
        return f"sqlite:///{(self.data_dir / 'runwire.db').resolve()}"

    @cached_property
    def resolved_dbos_url(self) -> str:
        if self.dbos_system_database_url:
            return self.dbos_system_database_url
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'dbos.db').resolve()}"

    @cached_property
    def origins(self) -> frozenset[str]:
        own = {f"http://{self.host}:{self.port}", "http://localhost:3026"}
        return frozenset(own | {o.rstrip("/") for o in self.allowed_origins})

    @cached_property
    def tool_hosts(self) -> frozenset[str]:
        return frozenset(h.lower() for h in self.tool_allowed_hosts)

    @property
    def render_limits(self) -> RenderLimits:
        return RenderLimits(
            timeout_seconds=self.template_timeout_seconds,
            memory_bytes=self.template_memory_mb * 1024 * 1024,
            max_output_bytes=self.max_step_output_bytes,
        )

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


def _sqlalchemy_url(url: str) -> str:
    """Accept plain postgresql:// URLs and pick the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def process_environment() -> Mapping[str, str]:
    """This process's environment, for what takes values from it by name: the `${NAME}`s of RUNWIRE_TOOLS_CONFIG,
    and the environment an MCP server's command inherits."""
    return dict(os.environ)
