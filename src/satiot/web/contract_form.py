"""The contract terms form: drafting a contract from a customer's page and amending one from
its page share it.

The form holds what the browser sent, as text, so that a refused draft comes back exactly as
typed. :meth:`TermsForm.terms` turns it into :class:`~satiot.bss.contract_terms.ContractTerms`
for :func:`satiot.bss.contracts.draft` and :func:`~satiot.bss.contracts.amend`, which check
it as they check the API's. Terminal models, the service area and the tariffs are ticked from
lists (the licence register, the provinces, the launched offerings) so nothing is mistyped;
destinations are free text, one per line.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Form
from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.bss.contract_terms import QUOTA_ACTIONS, SCENARIOS, ContractTerms, Scenario
from satiot.bss.models import ProductOffering
from satiot.bss.realname import PROVINCES
from satiot.core.errors import DomainError, InvalidInput
from satiot.oss.models import TerminalModel
from satiot.web.forms import FieldError, field_error, lines, whole_number

#: The form's fields as it labels them (the domain names them as the API does).
LABELS: dict[str, str] = {
    "scenario": "Application scenario",
    "scenario_description": "Scenario description",
    "allowed_models": "Terminal models",
    "max_devices": "Maximum devices",
    "monthly_messages_per_device": "Messages per device per month",
    "monthly_bytes_per_device": "Bytes per device per month",
    "quota_action": "At the quota",
    "destination_allow_list": "Destination allow-list",
    "service_area": "Service area",
    "offering_ids": "Tariffs disclosed",
    "stop_at_zero_balance": "Stop at zero balance",
}


def _number_text(value: int | None) -> str:
    return "" if value is None else str(value)


@dataclass
class TermsForm:
    """The terms as typed; ``error`` is the refusal to show, if the domain refused them."""

    scenario: str = ""
    scenario_description: str = ""
    allowed_models: list[str] = field(default_factory=list)
    max_devices: str = ""
    monthly_messages_per_device: str = ""
    monthly_bytes_per_device: str = ""
    quota_action: str = "suspend"
    destination_allow_list: str = ""
    service_area: list[str] = field(default_factory=list)
    offering_ids: list[str] = field(default_factory=list)
    stop_at_zero_balance: bool = False
    error: FieldError | None = None

    @classmethod
    def from_terms(cls, terms: ContractTerms) -> TermsForm:
        """A form pre-filled with a version's terms (to amend it)."""
        return cls(
            scenario=terms.scenario,
            scenario_description=terms.scenario_description,
            allowed_models=list(terms.allowed_models),
            max_devices=str(terms.max_devices),
            monthly_messages_per_device=_number_text(terms.monthly_messages_per_device),
            monthly_bytes_per_device=_number_text(terms.monthly_bytes_per_device),
            quota_action=terms.quota_action,
            destination_allow_list="\n".join(terms.destination_allow_list),
            service_area=list(terms.service_area),
            offering_ids=[str(i) for i in terms.offering_ids],
            stop_at_zero_balance=terms.stop_at_zero_balance,
        )

    def terms(self) -> ContractTerms:
        """The terms for the domain to check; InvalidInput only for what is not even a number
        or an id."""
        offerings = []
        for value in self.offering_ids:
            try:
                offerings.append(uuid.UUID(value))
            except ValueError:
                raise InvalidInput(
                    "offering_ids: choose the offerings from the list", field="offering_ids"
                ) from None
        max_devices = whole_number(self.max_devices, "max_devices", required=True)
        assert max_devices is not None
        return ContractTerms(
            scenario=self.scenario,
            scenario_description=self.scenario_description,
            allowed_models=tuple(self.allowed_models),
            max_devices=max_devices,
            monthly_messages_per_device=whole_number(
                self.monthly_messages_per_device, "monthly_messages_per_device", required=False
            ),
            monthly_bytes_per_device=whole_number(
                self.monthly_bytes_per_device, "monthly_bytes_per_device", required=False
            ),
            quota_action=self.quota_action,
            destination_allow_list=tuple(lines(self.destination_allow_list)),
            service_area=tuple(self.service_area),
            offering_ids=tuple(offerings),
            stop_at_zero_balance=self.stop_at_zero_balance,
        )

    def changes(self) -> dict[str, Any]:
        """Every term, for :func:`satiot.bss.contracts.amend` (the form shows them all, so an
        emptied cap is dropped and the rest are replaced by what is shown)."""
        terms = self.terms()
        return {name: getattr(terms, name) for name in LABELS}

    def refused(self, exc: DomainError) -> FieldError:
        """Keep the refusal on the form (to mark its field) and return it."""
        self.error = field_error(exc, LABELS)
        return self.error


Text = Annotated[str, Form()]
Ticked = Annotated[list[str] | None, Form()]


def posted_terms(
    scenario: Text = "",
    scenario_description: Text = "",
    allowed_models: Ticked = None,
    max_devices: Text = "",
    monthly_messages_per_device: Text = "",
    monthly_bytes_per_device: Text = "",
    quota_action: Text = "",
    destination_allow_list: Text = "",
    service_area: Ticked = None,
    offering_ids: Ticked = None,
    stop_at_zero_balance: Annotated[bool, Form()] = False,
) -> TermsForm:
    """Dependency: the terms form as posted (an unticked box sends nothing)."""
    return TermsForm(
        scenario=scenario,
        scenario_description=scenario_description,
        allowed_models=allowed_models or [],
        max_devices=max_devices,
        monthly_messages_per_device=monthly_messages_per_device,
        monthly_bytes_per_device=monthly_bytes_per_device,
        quota_action=quota_action,
        destination_allow_list=destination_allow_list,
        service_area=service_area or [],
        offering_ids=offering_ids or [],
        stop_at_zero_balance=stop_at_zero_balance,
    )


PostedTerms = Annotated[TermsForm, Depends(posted_terms)]


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    note: str = ""


@dataclass(frozen=True)
class TermsChoices:
    """What the form offers: the scenarios, quota actions and provinces, the licensed terminal
    models and the launched offerings (plus any the form names that are no longer either, so
    an amendment shows what the version in force says)."""

    scenarios: list[Scenario]
    quota_actions: dict[str, str]
    provinces: dict[str, str]
    models: list[Choice]
    offerings: list[Choice]


def load_choices(session: Session, form: TermsForm) -> TermsChoices:
    listed = session.scalars(
        select(TerminalModel)
        .where((TerminalModel.status == "listed") | TerminalModel.name.in_(form.allowed_models))
        .order_by(TerminalModel.name)
    )
    models = [Choice(m.name, m.name, "" if m.status == "listed" else m.status) for m in listed]
    known = {m.value for m in models}
    models += [Choice(n, n, "not on the register") for n in form.allowed_models if n not in known]
    wanted = []
    for value in form.offering_ids:
        try:
            wanted.append(uuid.UUID(value))
        except ValueError:
            continue
    rows = session.scalars(
        select(ProductOffering)
        .where((ProductOffering.lifecycle_status == "Active") | ProductOffering.id.in_(wanted))
        .order_by(ProductOffering.code, ProductOffering.version)
    )
    offerings = [
        Choice(
            str(o.id),
            f"{o.code} v{o.version} · {o.name}" + (" (add-on)" if o.is_add_on else ""),
            "" if o.lifecycle_status == "Active" else o.lifecycle_status,
        )
        for o in rows
    ]
    return TermsChoices(
        scenarios=list(SCENARIOS.values()),
        quota_actions=QUOTA_ACTIONS,
        provinces=PROVINCES,
        models=models,
        offerings=offerings,
    )
