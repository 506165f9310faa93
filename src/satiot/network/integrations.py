"""Integrations (where a tenant's messages go) and the operations on their delivery log.

An integration is a signed webhook or an MQTT topic tree. Its webhook secret, and the password
it logs in to a customer's own MQTT broker with, are sealed under the KEK with the
integration's id and the value's purpose bound in as associated data, so a sealed value copied
onto another integration's row (or into the other column) does not open; neither is ever
returned or audited. A customer's broker may be named ``mqtts://`` (TLS, the server
certificate and host name always verified) with a CA certificate of its own to trust instead of
the system store; the PEM is checked when it is registered. Every change
is audited with :func:`~satiot.core.changes.record_change`, and so is every replay of a dead
letter, because a replay re-sends data to a customer's system.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from satiot.core import events
from satiot.core.auth.principal import Principal
from satiot.core.auth.users import require_tenant
from satiot.core.changes import record_change
from satiot.core.errors import InvalidInput, NotFound
from satiot.core.ids import new_id
from satiot.core.lengths import CONTROL_RE, optional_text
from satiot.network.destinations import Resolver
from satiot.network.integration_targets import (
    check_allowed,
    check_ca_pem,
    check_webhook_url,
    parse_mqtt_url,
)
from satiot.network.keys import Kek
from satiot.network.models import Delivery, Integration
from satiot.network.states import DELIVERY, INTEGRATION
from satiot.network.target_guard import check_host

KINDS = ("webhook", "mqtt")
MIN_SECRET_CHARS = 16
MAX_SECRET_CHARS = 256
MAX_USERNAME_CHARS = 256
MAX_PASSWORD_CHARS = 256
#: What an MQTT integration logs in to its own broker with (``None`` in a change removes one).
MQTT_LOGIN_FIELDS = ("username", "password", "ca_pem")


def _check_secret(secret: str) -> bytes:
    if not MIN_SECRET_CHARS <= len(secret) <= MAX_SECRET_CHARS:
        raise InvalidInput(
            f"the secret must be {MIN_SECRET_CHARS}-{MAX_SECRET_CHARS} characters",
            field="secret",
        )
    return secret.encode()


def _aad(integration_id: uuid.UUID) -> bytes:
    return b"satiot:integration-secret:" + integration_id.bytes


def _password_aad(integration_id: uuid.UUID) -> bytes:
    return b"satiot:integration-mqtt-password:" + integration_id.bytes


def seal_secret(kek: Kek, integration: Integration, secret: str) -> None:
    integration.secret_sealed = kek.seal(_check_secret(secret), _aad(integration.id))
    integration.kek_id = kek.id


def open_secret(kek: Kek, integration_id: uuid.UUID, sealed: bytes) -> bytes:
    """The webhook secret in clear, for signing; raises KekError if it does not open."""
    return kek.open(sealed, _aad(integration_id))


def _check_password(password: str) -> bytes:
    if not 1 <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidInput(
            f"the password must be 1-{MAX_PASSWORD_CHARS} characters", field="password"
        )
    return password.encode()


def seal_password(kek: Kek, integration: Integration, password: str) -> None:
    """Seal the MQTT broker password (1-256 characters) on the integration's row."""
    integration.password_sealed = kek.seal(_check_password(password), _password_aad(integration.id))
    integration.kek_id = kek.id


def open_password(kek: Kek, integration_id: uuid.UUID, sealed: bytes) -> str:
    """The MQTT broker password in clear, for logging in; raises KekError if it does not
    open."""
    return kek.open(sealed, _password_aad(integration_id)).decode()


def integration_view(integration: Integration) -> dict[str, Any]:
    """What the audit log records about an integration: never the secret or password."""
    view: dict[str, Any] = {
        "kind": integration.kind,
        "name": integration.name,
        "url": integration.url,
        "status": integration.status,
        "max_attempts": integration.max_attempts,
        "has_secret": integration.secret_sealed is not None,
    }
    if integration.kind == "mqtt":
        view["username"] = integration.username
        view["has_password"] = integration.password_sealed is not None
        view["ca_pem_sha256"] = (
            hashlib.sha256(integration.ca_pem.encode()).hexdigest() if integration.ca_pem else None
        )
    return view


def _check_username(username: str) -> str:
    """MQTT forbids NUL in a UTF-8 string and says control characters should not be sent
    (3.1.1 §1.5.3, 5.0 §1.5.4); a broker may drop the connection for one, which would show up
    only later, as deliveries failing. Other characters are the broker's business."""
    if not 1 <= len(username) <= MAX_USERNAME_CHARS or CONTROL_RE.search(username):
        raise InvalidInput(
            f"the username must be 1-{MAX_USERNAME_CHARS} characters without control characters",
            field="username",
        )
    return username


def _check_mqtt_login(
    url: str | None,
    username: str | None,
    has_password: bool,
    ca_pem: str | None,
    changed: Collection[str],
) -> None:
    """Username, password and CA as a whole, for the broker ``url`` names. A conflict that a
    new url caused (the other field unchanged) is blamed on ``url``, otherwise on the field."""

    def blame(field: str) -> str:
        return "url" if "url" in changed and field not in changed else field

    if url is None:
        for field, given in (
            ("username", username is not None),
            ("password", has_password),
            ("ca_pem", ca_pem is not None),
        ):
            if given:
                raise InvalidInput(
                    f"{field} is for your own broker (url); the platform broker needs none",
                    field=blame(field),
                )
        return
    tls = parse_mqtt_url(url).tls
    if has_password and username is None:
        raise InvalidInput("a password needs a username", field="password")
    if has_password and not tls:
        raise InvalidInput(
            "a password is sent only over TLS: name the broker as mqtts://",
            field=blame("password"),
        )
    if ca_pem is not None and not tls:
        raise InvalidInput(
            "a CA certificate is for TLS: name the broker as mqtts://", field=blame("ca_pem")
        )


def _check_target(
    kind: str,
    url: str | None,
    secret: str | None,
    platform_mqtt: str | None,
    allow_private: bool,
) -> None:
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    if kind == "webhook":
        if not url:
            raise InvalidInput("a webhook needs a url", field="url")
        check_webhook_url(url, allow_private=allow_private)
        if secret is None:
            raise InvalidInput("a webhook needs a secret to sign with", field="secret")
        return
    if secret is not None:
        raise InvalidInput("an MQTT integration takes no secret", field="secret")
    if url:
        broker = parse_mqtt_url(url)
        if not allow_private:
            check_host(broker.host)
    elif not platform_mqtt:
        raise InvalidInput(
            "this platform runs no MQTT broker (SATIOT_MQTT_URL); name your own broker's url",
            field="url",
        )


def _check_attempts(max_attempts: object) -> None:
    if not isinstance(max_attempts, int) or isinstance(max_attempts, bool):
        raise InvalidInput("max_attempts must be a whole number, 1-100", field="max_attempts")
    if not 1 <= max_attempts <= 100:
        raise InvalidInput("max_attempts must be 1-100", field="max_attempts")


def _check_login_fields(
    kind: str,
    url: str | None,
    fields: dict[str, Any],
    current: dict[str, Any],
) -> None:
    """The MQTT login fields in ``fields`` (what a request sets) over ``current`` (what is
    stored), checked as a whole against the broker ``url`` names."""
    given = [f for f in MQTT_LOGIN_FIELDS if f in fields]
    if kind != "mqtt":
        if given and any(fields[f] is not None for f in given):
            raise InvalidInput(f"a webhook takes no {given[0]}", field=given[0])
        return
    if fields.get("username") is not None:
        _check_username(fields["username"])
    if fields.get("password") is not None:
        _check_password(fields["password"])
    if fields.get("ca_pem") is not None:
        check_ca_pem(fields["ca_pem"])
    merged = current | {f: fields[f] for f in given}
    _check_mqtt_login(
        url,
        merged.get("username"),
        merged.get("password") is not None,
        merged.get("ca_pem"),
        changed=fields.keys(),
    )


def _apply_login(kek: Kek, integration: Integration, fields: dict[str, Any]) -> None:
    if "username" in fields:
        integration.username = fields["username"]
    if "ca_pem" in fields:
        integration.ca_pem = fields["ca_pem"]
    if "password" in fields:
        if fields["password"] is None:
            integration.password_sealed = None
        else:
            seal_password(kek, integration, fields["password"])


def create_integration(
    session: Session,
    principal: Principal,
    kek: Kek,
    *,
    tenant_id: uuid.UUID,
    kind: str,
    at: datetime,
    url: str | None = None,
    secret: str | None = None,
    username: str | None = None,
    password: str | None = None,
    ca_pem: str | None = None,
    name: str = "",
    max_attempts: int,
    platform_mqtt_url: str | None = None,
    allow_private: bool = False,
    resolve: Resolver | None = None,
) -> Integration:
    """Create an active integration; it is owed the events logged after this transaction.

    An MQTT integration naming its own broker may log in with ``username`` and ``password``
    (the password only over ``mqtts://``) and trust ``ca_pem`` instead of the system store.
    The target must be on the tenant's destination allow-list, if it has one (``resolve``
    looks a host name up when only its addresses can decide)."""
    name = optional_text(name, Integration.name, "name")
    _check_target(kind, url, secret, platform_mqtt_url, allow_private)
    _check_attempts(max_attempts)
    login = {"username": username, "password": password, "ca_pem": ca_pem}
    _check_login_fields(kind, url or None, login, {})
    require_tenant(session, tenant_id)
    check_allowed(session, tenant_id, kind, url, resolve)
    integration = Integration(
        id=new_id(),
        tenant_id=tenant_id,
        kind=kind,
        name=name,
        url=url or None,
        status=INTEGRATION.initial,
        max_attempts=max_attempts,
        from_seq=events.head(session),
        created_at=at,
        updated_at=at,
    )
    if secret is not None:
        seal_secret(kek, integration, secret)
    _apply_login(kek, integration, login)
    session.add(integration)
    session.flush()
    view = integration_view(integration)
    record_change(
        session,
        principal,
        at=at,
        action="integration.created",
        target=("integration", integration.id),
        tenant_id=tenant_id,
        after=view,
        payload={"kind": kind, "name": name},
    )
    return integration


def get_integration(session: Session, integration_id: uuid.UUID) -> Integration:
    integration = session.get(Integration, integration_id)
    if integration is None:
        raise NotFound(f"integration {integration_id} not found")
    return integration


def update_integration(
    session: Session,
    principal: Principal,
    kek: Kek,
    integration_id: uuid.UUID,
    *,
    at: datetime,
    changes: dict[str, Any],
    platform_mqtt_url: str | None = None,
    allow_private: bool = False,
    resolve: Resolver | None = None,
) -> Integration:
    """Apply ``changes`` (any of url, secret, username, password, ca_pem, name,
    max_attempts; ``None`` removes an MQTT login field); audit what changed (a new secret or
    password is recorded only as "rotated"). Everything is checked before anything changes."""
    integration = get_integration(session, integration_id)
    before = integration_view(integration)
    name = (
        optional_text(changes["name"], Integration.name, "name")
        if "name" in changes
        else integration.name
    )
    url = (changes["url"] or None) if "url" in changes else integration.url
    if "url" in changes:
        if integration.kind == "webhook":
            if not url:
                raise InvalidInput("a webhook needs a url", field="url")
            check_webhook_url(url, allow_private=allow_private)
        else:
            _check_target("mqtt", url, None, platform_mqtt_url, allow_private)
        check_allowed(session, integration.tenant_id, integration.kind, url, resolve)
    if "secret" in changes:
        if integration.kind != "webhook":
            raise InvalidInput("an MQTT integration takes no secret", field="secret")
        if changes["secret"] is None:
            raise InvalidInput("a webhook needs a secret to sign with", field="secret")
        _check_secret(changes["secret"])
    if "max_attempts" in changes:
        _check_attempts(changes["max_attempts"])
    login = {f: changes[f] for f in MQTT_LOGIN_FIELDS if f in changes}
    if login or "url" in changes:
        current = {
            "username": integration.username,
            "password": "" if integration.password_sealed is not None else None,
            "ca_pem": integration.ca_pem,
        }
        _check_login_fields(
            integration.kind, url, login | ({"url": url} if "url" in changes else {}), current
        )
    integration.url = url
    if "secret" in changes:
        seal_secret(kek, integration, changes["secret"])
    _apply_login(kek, integration, login)
    if "name" in changes:
        integration.name = name
    if "max_attempts" in changes:
        integration.max_attempts = changes["max_attempts"]
    after = integration_view(integration)
    if "secret" in changes:
        after["secret_rotated"] = True
    if login.get("password") is not None:
        after["password_rotated"] = True
    if after != before:
        integration.updated_at = at
        record_change(
            session,
            principal,
            at=at,
            action="integration.updated",
            target=("integration", integration.id),
            tenant_id=integration.tenant_id,
            before=before,
            after=after,
            payload={"changed": sorted(k for k in after if after[k] != before.get(k))},
        )
    return integration


def set_integration_status(
    session: Session,
    principal: Principal,
    integration_id: uuid.UUID,
    status: str,
    *,
    at: datetime,
    reason: str | None,
) -> Integration:
    """Enable or disable through the lifecycle. A disabled integration is owed nothing new and
    its pending deliveries wait; enabling starts it again from the current log head, so events
    logged while it was disabled are not owed afterwards."""
    integration = get_integration(session, integration_id)
    if integration.status == status:
        return integration
    INTEGRATION.check(integration.status, status, principal.role)
    before = integration_view(integration)
    integration.status = status
    integration.updated_at = at
    if status == "active":
        integration.from_seq = events.head(session)
    record_change(
        session,
        principal,
        at=at,
        action="integration.status-changed",
        target=("integration", integration.id),
        tenant_id=integration.tenant_id,
        before=before,
        after=integration_view(integration),
        reason=reason,
        payload={"status": status},
    )
    return integration


def get_delivery(session: Session, integration_id: uuid.UUID, delivery_id: uuid.UUID) -> Delivery:
    """A delivery of this integration (either missing reads the same: 'not found')."""
    get_integration(session, integration_id)
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.integration_id != integration_id:
        raise NotFound(f"delivery {delivery_id} not found")
    return delivery


def _reset(delivery: Delivery, at: datetime) -> None:
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = at
    delivery.last_error = None


def replay_delivery(
    session: Session,
    principal: Principal,
    integration_id: uuid.UUID,
    delivery_id: uuid.UUID,
    *,
    at: datetime,
    reason: str | None = None,
) -> Delivery:
    """Put one dead letter back in the queue with its attempts reset. It keeps its id, body
    and place in its device's order, so the customer receives the same message id again."""
    delivery = get_delivery(session, integration_id, delivery_id)
    DELIVERY.check(delivery.status, "pending", principal.role)
    before = {"status": delivery.status, "attempts": delivery.attempts}
    _reset(delivery, at)
    record_change(
        session,
        principal,
        at=at,
        action="delivery.replayed",
        target=("delivery", delivery.id),
        tenant_id=delivery.tenant_id,
        before=before,
        after={"status": "pending", "attempts": 0},
        reason=reason,
        payload={"integration_id": str(integration_id), "message_id": delivery.message_id},
    )
    return delivery


def replay_dead_letters(
    session: Session,
    principal: Principal,
    integration_id: uuid.UUID,
    *,
    at: datetime,
    reason: str | None = None,
) -> int:
    """Put every dead letter of the integration back in the queue, in one statement and one
    audit entry (a dead-letter queue can hold many thousands of messages)."""
    integration = get_integration(session, integration_id)
    DELIVERY.check("dead", "pending", principal.role)
    result = session.execute(
        update(Delivery)
        .where(Delivery.integration_id == integration.id, Delivery.status == "dead")
        .values(status="pending", attempts=0, next_attempt_at=at, last_error=None)
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        record_change(
            session,
            principal,
            at=at,
            action="integration.dead-letters-replayed",
            target=("integration", integration.id),
            tenant_id=integration.tenant_id,
            after={"replayed": count},
            reason=reason,
            payload={"replayed": count},
        )
    return count
