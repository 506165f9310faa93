"""Integrations (webhooks, MQTT), their delivery log, dead letters and replay.

A webhook's secret and an MQTT broker's password go in once and never come back out: answers
say only ``has_secret`` and ``has_password``.
Everything here is tenant-scoped by the caller's session; operator staff may name a tenant.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.api.common import (
    CursorParam,
    IdempotencyKey,
    Input,
    LimitParam,
    Output,
    Page,
    create_idempotently,
    page_response,
)
from satiot.api.deps import Call, requires
from satiot.core.pagination import paginate
from satiot.network import integrations as domain
from satiot.network.destinations import Policy, policies_of, policy_of
from satiot.network.integration_targets import destination_state
from satiot.network.models import Delivery, DeliveryAttempt, Integration

router = APIRouter(prefix="/integrations", tags=["integrations"])
Reader = Annotated[Call, Depends(requires("integrations:read"))]
Writer = Annotated[Call, Depends(requires("integrations:write"))]

Kind = Literal["webhook", "mqtt"]
DeliveryStatus = Literal["pending", "delivered", "dead"]
_SIGNING_HELP = "Shared secret the webhook is signed with (16-256 characters); never shown again"
_USERNAME_HELP = "MQTT, your own broker: the username to log in with (1-256 characters)"
_LOGIN_HELP = (
    "MQTT, your own broker over mqtts:// only: the password (1-256 characters); never shown again"
)
_CA_HELP = (
    "MQTT over mqtts://: PEM certificate(s) of the CA to trust for your broker instead of the "
    "public CAs (for a private CA); the server certificate and host name are always verified"
)


class IntegrationIn(Input):
    kind: Kind
    url: str | None = Field(
        default=None,
        max_length=2000,
        description="Webhook: http(s) URL (required). MQTT: mqtt://host:port (1883) or "
        "mqtts://host:port (TLS, 8883) of your own broker (optional; default the platform "
        "broker).",
        examples=["https://example.com/satiot/hook", "mqtts://broker.example.com:8883"],
    )
    secret: SecretStr | None = Field(default=None, description=_SIGNING_HELP)
    username: str | None = Field(default=None, max_length=256, description=_USERNAME_HELP)
    password: SecretStr | None = Field(default=None, description=_LOGIN_HELP)
    ca_pem: str | None = Field(default=None, max_length=65536, description=_CA_HELP)
    name: str = Field(default="", max_length=100)
    max_attempts: int | None = Field(
        default=None, ge=1, le=100, description="Attempts before a dead letter (default 12)"
    )
    tenant_id: uuid.UUID | None = Field(
        default=None, description="Operator staff: the customer's tenant (default: yours)."
    )


class IntegrationPatch(Input):
    url: str | None = Field(default=None, max_length=2000)
    secret: SecretStr | None = Field(default=None, description=_SIGNING_HELP)
    username: str | None = Field(
        default=None, max_length=256, description=_USERNAME_HELP + "; null removes it"
    )
    password: SecretStr | None = Field(
        default=None, description=_LOGIN_HELP + "; a new one rotates it, null removes it"
    )
    ca_pem: str | None = Field(
        default=None, max_length=65536, description=_CA_HELP + "; null trusts the public CAs"
    )
    name: str | None = Field(default=None, max_length=100)
    max_attempts: int | None = Field(
        default=None, ge=1, le=100, description="null restores the platform's default"
    )


class IntegrationStatusIn(Input):
    status: Literal["active", "disabled"]
    reason: str | None = Field(default=None, max_length=500)


class ReplayIn(Input):
    reason: str | None = Field(default=None, max_length=500)


class DestinationOut(Output):
    state: Literal["unrestricted", "allowed", "by-address", "refused"] = Field(
        description="by-address: allowed only while every address its host resolves to lies "
        "in a listed network (checked at each delivery); refused: nothing is sent to it"
    )
    reason: str | None = Field(default=None, description="Why it is refused")


class IntegrationOut(Output):
    id: uuid.UUID
    tenant_id: uuid.UUID
    kind: str
    name: str
    url: str | None
    status: str
    max_attempts: int
    has_secret: bool
    username: str | None = Field(description="MQTT: the username for your own broker")
    has_password: bool = Field(description="MQTT: whether a password is set (never shown)")
    ca_pem: str | None = Field(description="MQTT over mqtts://: the CA certificate(s) trusted")
    destination: DestinationOut = Field(
        description="Whether your contract's destination allow-list lets messages reach it"
    )
    created_at: datetime
    updated_at: datetime


class DeliveryOut(Output):
    id: uuid.UUID
    integration_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    message_id: str = Field(description="What the customer de-duplicates on (X-Satiot-Id)")
    dev_eui: str | None
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class AttemptOut(Output):
    id: uuid.UUID
    at: datetime
    outcome: str
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryDetail(DeliveryOut):
    body: dict[str, Any]
    history: list[AttemptOut] = Field(description="Every attempt, oldest first")


class ReplayedOut(BaseModel):
    replayed: int


def _out(integration: Integration, policy: Policy | None) -> IntegrationOut:
    judged = destination_state(policy, integration.kind, integration.url)
    return IntegrationOut(
        id=integration.id,
        tenant_id=integration.tenant_id,
        kind=integration.kind,
        name=integration.name,
        url=integration.url,
        status=integration.status,
        max_attempts=integration.max_attempts,
        has_secret=integration.secret_sealed is not None,
        username=integration.username,
        has_password=integration.password_sealed is not None,
        ca_pem=integration.ca_pem,
        destination=DestinationOut(state=judged.state, reason=judged.reason),
        created_at=integration.created_at,
        updated_at=integration.updated_at,
    )


@router.get("", response_model=Page[IntegrationOut], summary="List integrations, oldest first")
def list_integrations(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
    kind: Annotated[Kind | None, Query()] = None,
    status: Annotated[Literal["active", "disabled"] | None, Query()] = None,
) -> Page[IntegrationOut]:
    stmt = select(Integration)
    if kind is not None:
        stmt = stmt.where(Integration.kind == kind)
    if status is not None:
        stmt = stmt.where(Integration.status == status)
    with call.read() as session:
        page = paginate(session, stmt, Integration.id, cursor=cursor, limit=limit)
        policies = policies_of(session, {i.tenant_id for i in page.items})
        return page_response(request, response, page, lambda i: _out(i, policies.get(i.tenant_id)))


@router.post("", status_code=201, response_model=IntegrationOut, summary="Create an integration")
def post_integration(
    call: Writer, request: Request, body: IntegrationIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    settings = call.ctx.settings

    def create(session: Session) -> IntegrationOut:
        integration = domain.create_integration(
            session,
            call.principal,
            call.ctx.kek,
            tenant_id=body.tenant_id or call.principal.tenant_id,
            kind=body.kind,
            at=call.now(),
            url=body.url,
            secret=body.secret.get_secret_value() if body.secret is not None else None,
            username=body.username,
            password=body.password.get_secret_value() if body.password is not None else None,
            ca_pem=body.ca_pem,
            name=body.name,
            max_attempts=body.max_attempts or settings.webhook_max_attempts,
            platform_mqtt_url=settings.mqtt_url,
            allow_private=settings.delivery_allow_private,
        )
        return _out(integration, policy_of(session, integration.tenant_id))

    return create_idempotently(call, request, idempotency_key, body, create)


@router.get("/{integration_id}", response_model=IntegrationOut, summary="One integration")
def get_integration(call: Reader, integration_id: uuid.UUID) -> IntegrationOut:
    with call.read() as session:
        found = domain.get_integration(session, integration_id)
        return _out(found, policy_of(session, found.tenant_id))


@router.patch(
    "/{integration_id}",
    response_model=IntegrationOut,
    summary="Change url, secret (rotate), MQTT login (username, password, ca_pem), name or "
    "max_attempts",
)
def patch_integration(
    call: Writer, integration_id: uuid.UUID, body: IntegrationPatch
) -> IntegrationOut:
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    if "secret" in changes:
        changes["secret"] = body.secret.get_secret_value() if body.secret is not None else None
    if "password" in changes:
        changes["password"] = (
            body.password.get_secret_value() if body.password is not None else None
        )
    if "max_attempts" in changes and changes["max_attempts"] is None:
        changes["max_attempts"] = call.ctx.settings.webhook_max_attempts
    with call.write() as session:
        integration = domain.update_integration(
            session,
            call.principal,
            call.ctx.kek,
            integration_id,
            at=call.now(),
            changes=changes,
            platform_mqtt_url=call.ctx.settings.mqtt_url,
            allow_private=call.ctx.settings.delivery_allow_private,
        )
        return _out(integration, policy_of(session, integration.tenant_id))


@router.post(
    "/{integration_id}/status",
    response_model=IntegrationOut,
    summary="Enable or disable (a disabled integration is owed nothing new)",
)
def post_status(
    call: Writer, integration_id: uuid.UUID, body: IntegrationStatusIn
) -> IntegrationOut:
    with call.write() as session:
        integration = domain.set_integration_status(
            session, call.principal, integration_id, body.status, at=call.now(), reason=body.reason
        )
        return _out(integration, policy_of(session, integration.tenant_id))


@router.get(
    "/{integration_id}/deliveries",
    response_model=Page[DeliveryOut],
    summary="The delivery log (newest first); status=dead lists the dead letters",
)
def list_deliveries(
    call: Reader,
    request: Request,
    response: Response,
    integration_id: uuid.UUID,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
    status: Annotated[DeliveryStatus | None, Query()] = None,
) -> Page[DeliveryOut]:
    stmt = select(Delivery).where(Delivery.integration_id == integration_id)
    if status is not None:
        stmt = stmt.where(Delivery.status == status)
    with call.read() as session:
        domain.get_integration(session, integration_id)
        page = paginate(
            session, stmt, Delivery.event_id, cursor=cursor, limit=limit, descending=True
        )
        return page_response(request, response, page, DeliveryOut.model_validate)


@router.get(
    "/{integration_id}/deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    summary="One delivery with its body and every attempt",
)
def get_delivery(call: Reader, integration_id: uuid.UUID, delivery_id: uuid.UUID) -> DeliveryDetail:
    with call.read() as session:
        found = domain.get_delivery(session, integration_id, delivery_id)
        attempts = session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == found.id)
            .order_by(DeliveryAttempt.at, DeliveryAttempt.id)
        ).all()
        return DeliveryDetail(
            **DeliveryOut.model_validate(found).model_dump(),
            body=found.body,
            history=[AttemptOut.model_validate(a) for a in attempts],
        )


@router.post(
    "/{integration_id}/deliveries/{delivery_id}/replay",
    response_model=DeliveryOut,
    summary="Send one dead letter again (same message id, attempts reset)",
)
def replay_one(
    call: Writer,
    integration_id: uuid.UUID,
    delivery_id: uuid.UUID,
    body: ReplayIn | None = None,
) -> DeliveryOut:
    with call.write() as session:
        replayed = domain.replay_delivery(
            session,
            call.principal,
            integration_id,
            delivery_id,
            at=call.now(),
            reason=body.reason if body else None,
        )
        return DeliveryOut.model_validate(replayed)


@router.post(
    "/{integration_id}/dead-letters/replay",
    response_model=ReplayedOut,
    summary="Send every dead letter of the integration again",
)
def replay_all(
    call: Writer, integration_id: uuid.UUID, body: ReplayIn | None = None
) -> ReplayedOut:
    with call.write() as session:
        count = domain.replay_dead_letters(
            session,
            call.principal,
            integration_id,
            at=call.now(),
            reason=body.reason if body else None,
        )
        return ReplayedOut(replayed=count)
