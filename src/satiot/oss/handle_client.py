"""Registering handles at the external identification node (the secondary node) over HTTP.

The node speaks the Handle REST API: ``PUT /api/handles/{handle}`` with ``{"values": […]}``
creates or replaces a record (``?overwrite=false``: create only), ``GET`` reads it and
``DELETE`` removes it; answers carry a Handle ``responseCode``. The client maps the codes a
caller must tell apart to domain errors (101 exists, 102 invalid handle, 202 invalid value,
402 authentication needed, 100 not found) and retries server errors (HTTP 5xx, code 2) and
connection failures with exponential backoff.

Batches. The plain Handle API has no batch operation; Chinese secondary nodes take batches of
at most :data:`MAX_BATCH` (2000). :meth:`HandleNodeClient.register_many` sends each chunk of
at most 2000 to ``batch_path`` when one is configured — ``POST {"handles": [{"handle", "values"}
…]}`` answered by ``{"responseCode": 1, "results": [{"handle", "responseCode", "message"}…]}``
(satiot's own shape; an adapter for a node's own batch format goes here) — and otherwise PUTs
the handles one by one. Either way a failed item is reported with its index and reason.

Registration is an effect outside the database: run it after the handle's transaction
commits (:func:`register_pending` finds handles whose node copy is missing or stale). PUT
replaces the whole record, so a repeat is harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from satiot.core.config import Settings
from satiot.core.errors import DomainError, InvalidInput
from satiot.oss.identifiers import (
    HandleExists,
    HandleNotFound,
    InvalidHandle,
    value_json,
    values_of,
)
from satiot.oss.models import Handle

MAX_BATCH = 2000
#: Handle permission strings: admin read, admin write, public read, public write.
PUBLIC_READ, ADMIN_ONLY = "1110", "1100"


class IdentifierNodeError(DomainError):
    """The identification node refused or failed a request."""

    slug = "identifier-node-error"
    title = "Identification node error"
    status = 502


class IdentifierNodeUnavailable(IdentifierNodeError):
    slug = "identifier-node-unavailable"
    title = "Identification node unavailable"
    status = 503


class IdentifierNodeAuthFailed(IdentifierNodeError):
    slug = "identifier-node-auth-failed"
    title = "Identification node refused our credentials"


class InvalidHandleValue(InvalidInput):
    slug = "invalid-handle-value"
    title = "Invalid handle value"


_BY_CODE: dict[int, type[DomainError]] = {
    100: HandleNotFound,
    101: HandleExists,
    102: InvalidHandle,
    202: InvalidHandleValue,
    402: IdentifierNodeAuthFailed,
}
_BY_HTTP: dict[int, type[DomainError]] = {
    404: HandleNotFound,
    409: HandleExists,
    401: IdentifierNodeAuthFailed,
}


@dataclass(frozen=True)
class NodeConfig:
    """Where the node is and how patiently to talk to it."""

    base_url: str
    token: str | None = None
    timeout_s: float = 10.0
    max_attempts: int = 4
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    batch_path: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> NodeConfig | None:
        """The configured node, or None when handles stay local."""
        if not settings.handle_node_url:
            return None
        return cls(base_url=settings.handle_node_url, token=settings.handle_node_token)


@dataclass(frozen=True)
class BatchFailure:
    index: int
    handle: str
    code: int | None
    reason: str


@dataclass
class BatchResult:
    registered: list[str] = field(default_factory=list)
    failed: list[BatchFailure] = field(default_factory=list)


def _error_for(handle: str, status: int, body: dict[str, Any]) -> DomainError:
    code = body.get("responseCode")
    message = str(body.get("message") or f"HTTP {status}")
    cls = _BY_CODE.get(code) if isinstance(code, int) else None
    cls = cls or _BY_HTTP.get(status) or IdentifierNodeError
    return cls(f"identification node, {handle}: {message}", node_code=code, node_status=status)


class HandleNodeClient:
    """A synchronous client of one identification node (use as a context manager)."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"Accept": "application/json"}
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        self.config = config
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=config.base_url.rstrip("/"),
            headers=headers,
            timeout=config.timeout_s,
            transport=transport,
        )

    def __enter__(self) -> HandleNodeClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(
        self,
        method: str,
        path: str,
        *,
        subject: str,
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """One logical request, retried on connection failures and server errors."""
        last = "no attempt made"
        for attempt in range(self.config.max_attempts):
            if attempt:
                delay = self.config.backoff_s * 2 ** (attempt - 1)
                self._sleep(min(delay, self.config.backoff_max_s))
            try:
                r = self._http.request(method, path, json=json, params=params)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            try:
                body = r.json()
            except ValueError:
                body = {}
            if not isinstance(body, dict):
                body = {}
            if r.status_code >= 500 or body.get("responseCode") == 2:
                last = f"HTTP {r.status_code}: {body.get('message') or r.reason_phrase}"
                continue
            if r.status_code >= 400 or body.get("responseCode", 1) != 1:
                raise _error_for(subject, r.status_code, body)
            return r.status_code, body
        raise IdentifierNodeUnavailable(
            f"identification node {self.config.base_url} failed {self.config.max_attempts} "
            f"times for {subject}: {last}"
        )

    @staticmethod
    def _path(handle: str) -> str:
        return "/api/handles/" + quote(handle, safe="/")

    def put(self, handle: str, values: Sequence[dict[str, Any]], *, overwrite: bool = True) -> bool:
        """Create or replace the record; True if the node created it (HTTP 201)."""
        status, _ = self._send(
            "PUT",
            self._path(handle),
            subject=handle,
            json={"values": list(values)},
            params=None if overwrite else {"overwrite": "false"},
        )
        return status == 201

    def get(self, handle: str) -> list[dict[str, Any]]:
        _, body = self._send("GET", self._path(handle), subject=handle)
        values: list[dict[str, Any]] = body.get("values", [])
        return values

    def delete(self, handle: str) -> None:
        self._send("DELETE", self._path(handle), subject=handle)

    def register_many(self, records: Sequence[tuple[str, list[dict[str, Any]]]]) -> BatchResult:
        """Register many handles, in chunks of at most :data:`MAX_BATCH`; never raises for
        one item's refusal (it is reported with its index), only when the node is down."""
        result = BatchResult()
        for start in range(0, len(records), MAX_BATCH):
            chunk = records[start : start + MAX_BATCH]
            if self.config.batch_path:
                self._batch(chunk, start, result)
                continue
            for offset, (handle, values) in enumerate(chunk):
                try:
                    self.put(handle, values)
                except IdentifierNodeUnavailable:
                    raise
                except DomainError as exc:
                    code = exc.extensions.get("node_code")
                    result.failed.append(BatchFailure(start + offset, handle, code, exc.detail))
                else:
                    result.registered.append(handle)
        return result

    def _batch(
        self, chunk: Sequence[tuple[str, list[dict[str, Any]]]], start: int, result: BatchResult
    ) -> None:
        assert self.config.batch_path is not None
        _, body = self._send(
            "POST",
            self.config.batch_path,
            subject=f"a batch of {len(chunk)} handles",
            json={"handles": [{"handle": h, "values": v} for h, v in chunk]},
        )
        answers = body.get("results")
        if not isinstance(answers, list) or len(answers) != len(chunk):
            raise IdentifierNodeError("the node's batch answer does not list every handle")
        for offset, ((handle, _values), answer) in enumerate(zip(chunk, answers, strict=True)):
            code = answer.get("responseCode") if isinstance(answer, dict) else None
            if code == 1:
                result.registered.append(handle)
            else:
                reason = str(answer.get("message", "refused")) if isinstance(answer, dict) else ""
                result.failed.append(BatchFailure(start + offset, handle, code, reason))


def node_values(session: Session, handle: Handle) -> list[dict[str, Any]]:
    """A stored handle's values as the node receives them, with Handle permissions."""
    return [
        value_json(v) | {"permissions": PUBLIC_READ if v.public else ADMIN_ONLY}
        for v in values_of(session, handle.id)
    ]


def register_at_node(
    session: Session, client: HandleNodeClient, handle: Handle, *, at: datetime
) -> None:
    """PUT one handle's record at the node and note when; the node's error is noted and
    raised. Call after the transaction that created or changed the handle has committed."""
    try:
        client.put(handle.handle, node_values(session, handle))
    except DomainError as exc:
        handle.node_error = exc.detail
        raise
    handle.registered_at, handle.node_error = at, None


def register_pending(
    session: Session, client: HandleNodeClient, *, at: datetime, limit: int = MAX_BATCH
) -> BatchResult:
    """Register handles never registered or changed since (one batch of at most ``limit``)."""
    pending = list(
        session.scalars(
            select(Handle)
            .where(or_(Handle.registered_at.is_(None), Handle.registered_at < Handle.updated_at))
            .order_by(Handle.updated_at, Handle.id)
            .limit(min(limit, MAX_BATCH))
        )
    )
    result = client.register_many([(h.handle, node_values(session, h)) for h in pending])
    failed = {f.handle: f.reason for f in result.failed}
    for h in pending:
        if h.handle in failed:
            h.node_error = failed[h.handle]
        else:
            h.registered_at, h.node_error = at, None
    return result
