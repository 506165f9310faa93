"""The Contracts pages: every contract version, and one version with exactly what was signed.

A signed version shows its stored text, the SHA-256 recorded at signing and whether the text
still hashes to it; a draft shows the text signing would store now. Sales staff record the
customer's e-signature from the draft's page and amend the version in force from its page (a
form pre-filled with its terms drafts version n+1); the customer's own users read their
contracts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.bss import contract_render, contracts
from satiot.bss.contract_terms import SCENARIOS
from satiot.bss.models import Contract, Customer
from satiot.bss.states import CONTRACT
from satiot.core.errors import DomainError, NotFound
from satiot.core.pagination import Page, paginate
from satiot.web.contract_form import PostedTerms, TermsChoices, TermsForm, load_choices
from satiot.web.flash import Flash, redirect_with
from satiot.web.once import FormKey, Sent, redirect, submit_once
from satiot.web.rendering import page
from satiot.web.session import ConsoleSession, Posted, SignedIn

router = APIRouter()

PATH = "/contracts"
PAGE_SIZE = 50
Text = Annotated[str, Form()]


@dataclass
class ContractList:
    contracts: list[Contract]
    customers: dict[uuid.UUID, str]
    in_force: set[uuid.UUID]
    next_url: str | None
    first_url: str | None


def list_contracts(session: Session, *, after: str | None) -> ContractList:
    found: Page[Contract] = paginate(
        session, select(Contract), Contract.id, cursor=after, limit=PAGE_SIZE, descending=True
    )
    rows = list(found.items)
    ids = {c.customer_id for c in rows}
    names: dict[uuid.UUID, str] = {}
    in_force: set[uuid.UUID] = set()
    if ids:
        named = session.execute(select(Customer.id, Customer.name).where(Customer.id.in_(ids)))
        names = {customer_id: name for customer_id, name in named}
        replaced = set(
            session.scalars(
                select(Contract.supersedes_id).where(
                    Contract.supersedes_id.in_([c.id for c in rows]),
                    Contract.signed_at.is_not(None),
                )
            )
        )
        in_force = {c.id for c in rows if c.status == "signed" and c.id not in replaced}
    return ContractList(
        rows,
        names,
        in_force,
        f"{PATH}?{urlencode({'after': found.next_cursor})}" if found.next_cursor else None,
        PATH if after else None,
    )


@router.get(PATH)
def contracts_page(request: Request, signed_in: SignedIn, after: str | None = None) -> Response:
    signed_in.require_any("contracts:read")
    flash, status_code = None, 200
    try:
        with signed_in.call.read() as session:
            listing = list_contracts(session, after=after or None)
    except DomainError as exc:  # a cursor this server did not issue: show the first page
        with signed_in.call.read() as session:
            listing = list_contracts(session, after=None)
        flash, status_code = Flash("error", exc.detail), exc.status
    return page(
        request,
        signed_in,
        "contracts.html",
        {"title": "Contracts", "listing": listing, "scenarios": SCENARIOS},
        flash=flash,
        status_code=status_code,
    )


@dataclass
class ContractDetail:
    contract: Contract
    customer: Customer
    text: str
    sha256: str
    verified: bool | None
    in_force: bool
    superseded_by: Contract | None
    versions: list[Contract] = field(default_factory=list)
    may_sign: bool = False
    may_terminate: bool = False
    #: The draft of the next version, when one is pending (one at a time per contract).
    pending: Contract | None = None
    #: The amendment form (pre-filled with this version's terms) and its choices.
    amend_form: TermsForm | None = None
    choices: TermsChoices | None = None


def _operator_name(signed_in: ConsoleSession) -> str | None:
    # A customer's session cannot see the operator's tenant row; its name is no secret.
    with signed_in.ctx.db.read() as session:
        return contracts.operator_name(session)


def load_detail(
    session: Session,
    signed_in: ConsoleSession,
    contract_id: uuid.UUID,
    amend_form: TermsForm | None = None,
) -> ContractDetail:
    contract = contracts.get_contract(session, contract_id)
    customer = session.get(Customer, contract.customer_id)
    if customer is None:
        raise NotFound(f"contract {contract_id} not found")
    if contract.rendered_text is not None:
        text = contract.rendered_text
    else:
        text = contracts.render_contract(session, contract, _operator_name(signed_in))
    digest = contract_render.sha256_text(text)
    recorded = contract.rendered_sha256
    newer = contracts.superseded_by(session, contract)
    detail = ContractDetail(
        contract=contract,
        customer=customer,
        text=text,
        sha256=digest,
        verified=None if recorded is None else digest == recorded,
        in_force=contract.status == "signed" and newer is None,
        superseded_by=newer,
        versions=contracts.versions_of(session, contract),
    )
    principal = signed_in.principal
    if "contracts:write" in principal.scopes:
        role = principal.role.value
        allowed = CONTRACT.transitions
        detail.may_sign = contract.status == "draft" and role in allowed[("draft", "signed")]
        detail.may_terminate = (
            (contract.status, "terminated") in allowed
            and role in allowed[(contract.status, "terminated")]
            and (contract.status == "draft" or detail.in_force)
        )
        latest = detail.versions[-1] if detail.versions else contract
        if detail.in_force and latest.status == "draft":
            detail.pending = latest
        elif detail.in_force:
            detail.amend_form = amend_form or TermsForm.from_terms(contracts.terms_of(contract))
            detail.choices = load_choices(session, detail.amend_form)
    return detail


def render_detail(
    request: Request,
    signed_in: ConsoleSession,
    contract_id: str,
    *,
    flash: Flash | None = None,
    status_code: int = 200,
    amend_form: TermsForm | None = None,
) -> Response:
    signed_in.require_any("contracts:read")
    try:
        parsed = uuid.UUID(contract_id)
        with signed_in.call.read() as session:
            detail = load_detail(session, signed_in, parsed, amend_form)
    except (ValueError, NotFound):
        return page(
            request,
            signed_in,
            "contract.html",
            {"title": "Contract not found", "detail": None},
            status_code=404,
        )
    title = f"Contract {detail.contract.number} v{detail.contract.version}"
    return page(
        request,
        signed_in,
        "contract.html",
        {"title": title, "detail": detail, "scenarios": SCENARIOS},
        flash=flash,
        status_code=status_code,
    )


@router.get(PATH + "/{contract_id}")
def contract_page(request: Request, signed_in: SignedIn, contract_id: str) -> Response:
    return render_detail(request, signed_in, contract_id)


def _done(signed_in: ConsoleSession, contract_id: uuid.UUID, message: str) -> Response:
    secure = signed_in.ctx.settings.cookie_secure
    return redirect_with(f"{PATH}/{contract_id}", Flash("success", message), secure=secure)


@router.post(PATH + "/{contract_id}/sign")
def sign(
    request: Request,
    signed_in: Posted,
    contract_id: uuid.UUID,
    signer_name: Text = "",
    signer_role: Text = "",
) -> Response:
    signed_in.require_any("contracts:write")
    try:
        with signed_in.call.write() as session:
            contract = contracts.sign(
                session,
                signed_in.principal,
                contract_id,
                signer_name=signer_name,
                signer_role=signer_role,
                at=signed_in.now(),
            )
            label = f"{contract.number} v{contract.version} signed by {contract.signer_name}."
    except DomainError as exc:
        flash = Flash("error", exc.detail)
        return render_detail(
            request, signed_in, str(contract_id), flash=flash, status_code=exc.status
        )
    return _done(signed_in, contract_id, label)


@router.post(PATH + "/{contract_id}/versions")
def amend(
    request: Request,
    signed_in: Posted,
    contract_id: uuid.UUID,
    form: PostedTerms,
    form_key: FormKey = "",
) -> Response:
    """Draft version n+1 of the version in force with :func:`satiot.bss.contracts.amend`, as
    ``POST /api/v1/contracts/{id}/versions`` does, with every term as the form shows it."""
    signed_in.require_any("contracts:write")

    def work(session: Session) -> Sent:
        contract = contracts.amend(
            session, signed_in.principal, contract_id, form.changes(), at=signed_in.now()
        )
        label = f"{contract.number} v{contract.version}"
        done = f"{label} drafted: read its text with the customer, then record the signature."
        return Sent(f"{PATH}/{contract.id}", done)

    try:
        sent, _ = submit_once(signed_in, form_key, request.url.path, work)
    except DomainError as exc:
        flash = Flash("error", form.refused(exc).message)
        return render_detail(
            request,
            signed_in,
            str(contract_id),
            flash=flash,
            status_code=exc.status,
            amend_form=form,
        )
    return redirect(signed_in, sent)


@router.post(PATH + "/{contract_id}/terminate")
def terminate(
    request: Request, signed_in: Posted, contract_id: uuid.UUID, reason: Text = ""
) -> Response:
    signed_in.require_any("contracts:write")
    try:
        with signed_in.call.write() as session:
            contract = contracts.terminate(
                session, signed_in.principal, contract_id, reason=reason, at=signed_in.now()
            )
            label = f"{contract.number} v{contract.version} terminated."
    except DomainError as exc:
        flash = Flash("error", exc.detail)
        return render_detail(
            request, signed_in, str(contract_id), flash=flash, status_code=exc.status
        )
    return _done(signed_in, contract_id, label)
