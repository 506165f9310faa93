"""Runtime configuration, read once from the environment (``SATIOT_*``).

Settings are passed explicitly to whatever needs them rather than read from a global, so that
tests and the CLI can run several differently configured instances in one process.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from satiot.core.runtime import DEFAULT_YOUNG


class Settings(BaseSettings):
    """Every knob an operator can turn; the README's configuration table mirrors this class."""

    model_config = SettingsConfigDict(env_prefix="SATIOT_", extra="ignore")

    data_dir: Path = Field(
        default=Path("var"), description="Where the embedded database and other state live."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; empty means SQLite (WAL) at <data_dir>/satiot.db.",
    )
    admin_password: str | None = Field(
        default=None,
        description="Password of the seeded `admin` user; generated and printed once if unset.",
    )
    max_body_bytes: int = Field(
        default=1_048_576, description="Largest request body the API accepts (413 above)."
    )
    max_upload_bytes: int = Field(
        default=16 * 1_048_576,
        description="Largest uploaded file (a text/csv or multipart/form-data body) the API "
        "and the console accept (413 above): a 10,000-row order or a 100,000-line "
        "suspend/resume file is larger than other requests need to be.",
    )
    access_token_ttl_s: int = Field(
        default=3600, description="Lifetime of bearer tokens from /api/v1/auth/token."
    )
    session_ttl_s: int = Field(default=8 * 3600, description="Lifetime of a console login.")
    idempotency_ttl_s: int = Field(
        default=24 * 3600, description="How long an Idempotency-Key is remembered."
    )
    page_size_max: int = Field(default=500, description="Largest page a list endpoint returns.")
    bus_url: str | None = Field(
        default=None,
        description="nats://host:port to relay the event log to NATS JetStream; empty: off.",
    )
    bus_stream: str = Field(default="satiot-events", description="JetStream stream name.")
    cookie_secure: bool = Field(
        default=False, description="Mark console cookies Secure (set when served over HTTPS)."
    )

    kek: str | None = Field(
        default=None,
        description=(
            "Key-encryption key for device session keys and integration secrets: 32 bytes, "
            "base64. Unset: generated once into <data_dir>/kek (mode 0600)."
        ),
    )
    mqtt_url: str | None = Field(
        default=None,
        description=(
            "mqtt://host:port of the broker for ground-station ingest (satiot/gs/+/up) and "
            "customer delivery; empty: MQTT off."
        ),
    )
    mqtt_ca_file: Path | None = Field(
        default=None,
        description=(
            "PEM file of the CA that issued the broker's certificate, for an mqtts:// broker "
            "with a private CA; empty: the system's trusted CAs."
        ),
    )
    fcnt_window: int = Field(
        default=16384,
        description="How far below a device's newest frame counter a late copy is still taken.",
    )
    downlink_queue_cap: int = Field(
        default=16, description="Most downlinks one device may have waiting (409 above)."
    )
    downlink_loads_per_pass: int = Field(
        default=1000,
        ge=1,
        description="Commands a ground station can load onto one satellite in one pass.",
    )
    downlink_emergency_reserve: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description=(
            "Share of each pass's load room held for devices with downlink priority "
            "(the emergency-priority add-on)."
        ),
    )
    webhook_max_attempts: int = Field(
        default=12, description="Attempts before a delivery becomes a dead letter."
    )
    webhook_timeout_s: float = Field(default=10.0, description="Timeout of one webhook call.")
    delivery_allow_private: bool = Field(
        default=False,
        description=(
            "Let customers' webhooks and MQTT brokers be on loopback or private addresses "
            "(off: a tenant could otherwise make the platform call its own internal services)."
        ),
    )
    gc_young: int = Field(
        default=DEFAULT_YOUNG,
        ge=0,
        description=(
            "Allocations between collections of Python's youngest generation (0: CPython's "
            "700); batches of ingest and rating make tens of thousands of short-lived objects."
        ),
    )
    twin: bool = Field(
        default=True, description="`satiot up` runs the default twin scenario as live traffic."
    )
    twin_scenario: Path | None = Field(
        default=None,
        description="Scenario the live twin runs; empty: the packaged tianqi-like scenario.",
    )
    twin_speed: float = Field(
        default=1.0, description="Simulated seconds per wall-clock second for the live twin."
    )

    handle_prefix: str | None = Field(
        default=None,
        pattern=r"^(?:86|88)(?:\.[0-9A-Za-z]+)+$",
        description=(
            "The operator's industrial-internet identifier prefix (e.g. 88.608.8899); device "
            "handles are <prefix>/<suffix>. Empty: no handle can be minted, so no activation."
        ),
    )
    handle_node_url: str | None = Field(
        default=None,
        description=(
            "Base URL of the identification node (secondary node) where handles are "
            "registered, e.g. https://node.example.cn; empty: handles stay local."
        ),
    )
    handle_node_token: str | None = Field(
        default=None,
        description="Credential sent to the identification node as 'Authorization: Bearer …'.",
    )
    number_blocks_file: Path | None = Field(
        default=None,
        description="TOML file of the IoT number blocks MIIT assigned (see docs/oss.md).",
    )
    number_quarantine_days: int = Field(
        default=90,
        ge=90,
        description="Days a cancelled IoT number rests before reuse (at least 90).",
    )

    business_timezone: str = Field(
        default="Asia/Shanghai",
        description="Time zone of the business calendar: billing months and invoice dates.",
    )
    tax_rate_bp: int = Field(
        default=600,
        ge=0,
        le=10_000,
        description=(
            "VAT on invoices, in basis points (600 = 6 %: satellite data transmission is a "
            "value-added telecom service; basic telecom services such as voice are 9 %)."
        ),
    )
    invoice_series_prefix: str = Field(
        default="SAT",
        pattern=r"^[A-Z0-9]{1,8}$",
        description="Invoice numbers are <prefix><year>-<8 digits> and credit notes "
        "<prefix>CN<year>-<8 digits>, each gap-free per year.",
    )
    payment_terms_days: int = Field(
        default=30, ge=0, le=365, description="Days from an invoice's issue to its due date."
    )
    operator_name: str = Field(
        default="卫星物联网运营商（示例）有限公司",
        description="The operator's legal name printed on invoices.",
    )
    operator_tax_id: str = Field(
        default="91110000XXXXXXXXXX",
        description="The operator's taxpayer id (its credit code) printed on invoices.",
    )
    payment_instructions: str = Field(
        default="开户行 Bank: 示例银行北京分行 · 账号 Account: 0000 0000 0000 0000",
        description="How customers pay, printed at the foot of every invoice.",
    )

    def resolved_database_url(self) -> str:
        """The URL to connect to: the configured one, or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'satiot.db').resolve()}"
