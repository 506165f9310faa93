"""Contracts: draft, sign, amend by a new version, terminate; show exactly what was signed.

Sales staff (``contracts:write``) draft and sign; a customer's own users read their contracts
and the signed text. ``GET …/rendered`` returns the stored text of a signed version with its
recorded SHA-256 and whether the text still hashes to it (for a draft: the text signing would
store now).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.api import problems
from satiot.api.common import (
    CursorParam,
    IdempotencyKey,
    Input,
    LimitParam,
    Page,
    create_idempotently,
    page_response,
)
from satiot.api.deps import Call, requires
from satiot.bss import contract_render, contracts
from satiot.bss.contract_terms import QUOTA_ACTIONS, SCENARIOS, ContractTerms
from satiot.bss.models import Contract
from satiot.core.pagination import paginate

router = APIRouter(prefix="/contracts", tags=["contracts"])
Reader = Annotated[Call, Depends(requires("contracts:read"))]
Writer = Annotated[Call, Depends(requires("contracts:write"))]

for _cls, _text in (
    (contracts.ContractNotFound, "No such contract, or none visible to this caller."),
    (
        contracts.ActivationNotAllowed,
        "No activation without a signed contract in force that covers the device's terminal "
        "model and application scenario, with room for one more device.",
    ),
):
    problems.CATALOG.setdefault(_cls.slug, (_cls.title, _text))

QuotaAction = Literal["suspend", "throttle", "notify"]
ContractStatus = Literal["draft", "signed", "terminated"]
#: Terms an amendment may remove by sending null (a cap of one kind, while the other stays).
_REMOVABLE = frozenset({"monthly_messages_per_device", "monthly_bytes_per_device"})
_SCENARIO_HELP = "; ".join(f"{s.code} ({s.name})" for s in SCENARIOS.values())


class TermsChangeIn(Input):
    """Terms of a new version: every field left out keeps the value of the version in force."""

    scenario: str | None = Field(default=None, max_length=64, description=_SCENARIO_HELP)
    scenario_description: str | None = Field(default=None, max_length=2000)
    allowed_models: list[str] | None = Field(default=None, max_length=100)
    max_devices: int | None = Field(default=None, ge=1, le=10_000_000)
    monthly_messages_per_device: int | None = Field(default=None, ge=1, le=1_000_000_000)
    monthly_bytes_per_device: int | None = Field(default=None, ge=1, le=1_000_000_000_000)
    quota_action: QuotaAction | None = None
    destination_allow_list: list[str] | None = Field(default=None, max_length=64)
    service_area: list[str] | None = Field(default=None, max_length=40)
    offering_ids: list[uuid.UUID] | None = Field(default=None, max_length=50)
    stop_at_zero_balance: bool | None = None


class ContractIn(Input):
    customer_id: uuid.UUID
    scenario: str = Field(max_length=64, description=_SCENARIO_HELP, examples=["maritime"])
    scenario_description: str = Field(default="", max_length=2000)
    allowed_models: list[str] = Field(min_length=1, max_length=100, examples=[["TQ-M100"]])
    max_devices: int = Field(ge=1, le=10_000_000)
    monthly_messages_per_device: int | None = Field(default=None, ge=1, le=1_000_000_000)
    monthly_bytes_per_device: int | None = Field(default=None, ge=1, le=1_000_000_000_000)
    quota_action: QuotaAction = Field(
        description="; ".join(f"{k}: {v}" for k, v in QUOTA_ACTIONS.items())
    )
    destination_allow_list: list[str] = Field(
        min_length=1,
        max_length=64,
        description="IP addresses or CIDR networks, domains (*.example.com for subdomains), "
        "each optionally with :port (IPv6 with a port in brackets)",
        examples=[["203.0.113.10:443", "iot.example.com:8883"]],
    )
    service_area: list[str] = Field(min_length=1, max_length=40, examples=[["11", "13"]])
    offering_ids: list[uuid.UUID] = Field(min_length=1, max_length=50)
    stop_at_zero_balance: bool = False

    def terms(self) -> ContractTerms:
        return ContractTerms(**self.model_dump(exclude={"customer_id"}))


class SignIn(Input):
    signer_name: str = Field(min_length=1, max_length=100, examples=["张伟"])
    signer_role: str = Field(
        min_length=1, max_length=100, examples=["legal representative", "authorised agent"]
    )


class TerminateIn(Input):
    reason: str = Field(min_length=1, max_length=500)


class SignatureOut(BaseModel):
    signer_name: str
    signer_role: str
    signed_at: datetime
    recorded_by: str
    sha256: str


class ContractOut(BaseModel):
    id: uuid.UUID
    href: str
    number: str
    version: int
    status: ContractStatus
    in_force: bool
    customer_id: uuid.UUID
    supersedes_id: uuid.UUID | None
    superseded_by_id: uuid.UUID | None
    scenario: str
    scenario_name: str
    scenario_description: str
    allowed_models: list[str]
    max_devices: int
    monthly_messages_per_device: int | None
    monthly_bytes_per_device: int | None
    quota_action: str
    destination_allow_list: list[str]
    service_area: list[str]
    offering_ids: list[uuid.UUID]
    stop_at_zero_balance: bool
    signature: SignatureOut | None
    terminated_at: datetime | None
    created_at: datetime


class RenderedOut(BaseModel):
    contract_id: uuid.UUID
    number: str
    version: int
    status: ContractStatus
    signed: bool = Field(description="True: the text below is the one signed, as stored")
    text: str
    sha256: str = Field(description="SHA-256 of the text (UTF-8)")
    recorded_sha256: str | None = Field(description="The SHA-256 recorded at signing")
    verified: bool | None = Field(
        description="Whether the stored text still hashes to the recorded value (signed only)"
    )


def contract_out(session: Session, contract: Contract) -> ContractOut:
    newer = contracts.superseded_by(session, contract)
    signature = None
    if contract.signed_at is not None:
        signature = SignatureOut(
            signer_name=contract.signer_name or "",
            signer_role=contract.signer_role or "",
            signed_at=contract.signed_at,
            recorded_by=contract.signed_by or "",
            sha256=contract.rendered_sha256 or "",
        )
    scenario = SCENARIOS.get(contract.scenario)
    return ContractOut(
        id=contract.id,
        href=f"/api/v1/contracts/{contract.id}",
        number=contract.number,
        version=contract.version,
        status=cast(ContractStatus, contract.status),
        in_force=contract.status == "signed" and newer is None,
        customer_id=contract.customer_id,
        supersedes_id=contract.supersedes_id,
        superseded_by_id=newer.id if newer else None,
        scenario=contract.scenario,
        scenario_name=scenario.name if scenario else "",
        scenario_description=contract.scenario_description,
        allowed_models=list(contract.allowed_models),
        max_devices=contract.max_devices,
        monthly_messages_per_device=contract.monthly_messages_per_device,
        monthly_bytes_per_device=contract.monthly_bytes_per_device,
        quota_action=contract.quota_action,
        destination_allow_list=list(contract.destination_allow_list),
        service_area=list(contract.service_area),
        offering_ids=[uuid.UUID(str(i)) for i in contract.offering_ids],
        stop_at_zero_balance=contract.stop_at_zero_balance,
        signature=signature,
        terminated_at=contract.terminated_at,
        created_at=contract.created_at,
    )


@router.get("", response_model=Page[ContractOut], summary="List contracts visible to the caller")
def list_contracts(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
    customer_id: Annotated[uuid.UUID | None, Query()] = None,
    status: Annotated[ContractStatus | None, Query()] = None,
) -> Page[ContractOut]:
    stmt = select(Contract)
    if customer_id is not None:
        stmt = stmt.where(Contract.customer_id == customer_id)
    if status is not None:
        stmt = stmt.where(Contract.status == status)
    with call.read() as session:
        page = paginate(session, stmt, Contract.id, cursor=cursor, limit=limit)
        return page_response(request, response, page, lambda c: contract_out(session, c))


@router.post("", status_code=201, response_model=ContractOut, summary="Draft a new contract")
def post_contract(
    call: Writer, request: Request, body: ContractIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    def create(session: Session) -> ContractOut:
        contract = contracts.draft(
            session, call.principal, body.customer_id, body.terms(), at=call.now()
        )
        return contract_out(session, contract)

    return create_idempotently(call, request, idempotency_key, body, create)


@router.get("/{contract_id}", response_model=ContractOut, summary="One contract version")
def get_contract(call: Reader, contract_id: uuid.UUID) -> ContractOut:
    with call.read() as session:
        return contract_out(session, contracts.get_contract(session, contract_id))


def _operator_name(call: Call) -> str | None:
    """The operator's name for a draft's text. A customer's session cannot see the operator's
    tenant row, so it is read outside the caller's scope (the name is no tenant's secret)."""
    with call.ctx.db.read() as session:
        return contracts.operator_name(session)


@router.get(
    "/{contract_id}/rendered",
    response_model=RenderedOut,
    summary="The text signed (or that signing would store) and its SHA-256",
)
def get_rendered(call: Reader, contract_id: uuid.UUID) -> RenderedOut:
    with call.read() as session:
        contract = contracts.get_contract(session, contract_id)
        if contract.rendered_text is not None:
            text = contract.rendered_text
        else:
            text = contracts.render_contract(session, contract, _operator_name(call))
        digest = contract_render.sha256_text(text)
        recorded = contract.rendered_sha256
        return RenderedOut(
            contract_id=contract.id,
            number=contract.number,
            version=contract.version,
            status=cast(ContractStatus, contract.status),
            signed=contract.rendered_text is not None,
            text=text,
            sha256=digest,
            recorded_sha256=recorded,
            verified=None if recorded is None else digest == recorded,
        )


@router.post("/{contract_id}/sign", response_model=ContractOut, summary="Record the e-signature")
def post_sign(call: Writer, contract_id: uuid.UUID, body: SignIn) -> ContractOut:
    with call.write() as session:
        contract = contracts.sign(
            session,
            call.principal,
            contract_id,
            signer_name=body.signer_name,
            signer_role=body.signer_role,
            at=call.now(),
        )
        return contract_out(session, contract)


@router.post(
    "/{contract_id}/versions",
    status_code=201,
    response_model=ContractOut,
    summary="Draft the next version (an amendment) of the version in force",
)
def post_version(
    call: Writer,
    request: Request,
    contract_id: uuid.UUID,
    body: TermsChangeIn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create(session: Session) -> ContractOut:
        changes = {
            name: value
            for name, value in body.model_dump(exclude_unset=True).items()
            if value is not None or name in _REMOVABLE
        }
        for name in ("allowed_models", "destination_allow_list", "service_area", "offering_ids"):
            if name in changes:
                changes[name] = tuple(changes[name])
        contract = contracts.amend(session, call.principal, contract_id, changes, at=call.now())
        return contract_out(session, contract)

    return create_idempotently(call, request, idempotency_key, body, create)


@router.post("/{contract_id}/terminate", response_model=ContractOut, summary="End a contract")
def post_terminate(call: Writer, contract_id: uuid.UUID, body: TerminateIn) -> ContractOut:
    with call.write() as session:
        contract = contracts.terminate(
            session, call.principal, contract_id, reason=body.reason, at=call.now()
        )
        return contract_out(session, contract)
