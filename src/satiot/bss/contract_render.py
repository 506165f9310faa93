"""The canonical text of a contract: what the customer reads, signs, and can later verify.

Rendering is deterministic (same data, same bytes): no clock, no locale, fixed wrapping, lists
in stored (canonical) order, ``\\n`` line ends and one final newline. The signature records the
SHA-256 of exactly this text (UTF-8), and the text itself is kept, so "what was signed" is never
re-rendered from data that may have changed since.

Besides the terms, the text carries the tariff disclosure (offering names and prices, in yuan)
the customer's right to be informed requires, and the clauses the notice (IV.3: no sublease or
resale) and the anti-fraud rules (REFERENCE §5) ask for.
"""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from satiot.bss.contract_terms import QUOTA_ACTIONS, SCENARIOS
from satiot.bss.models import Contract, Customer, ProductOffering, ProductOfferingPrice
from satiot.bss.money import format_cny, round_to_fen, to_yuan
from satiot.bss.realname import INDUSTRIES, province_label

WIDTH = 78
FORMAT_VERSION = "satiot-contract/1"


@dataclass(frozen=True)
class Tariff:
    """One disclosed offering and its prices, in a fixed order."""

    offering: ProductOffering
    prices: Sequence[ProductOfferingPrice]


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def yuan(micros: int) -> str:
    """Whole-fen amounts as ``¥30.00``; usage prices below a fen exactly (``¥0.000012``), since
    rounding them to ``¥0.00`` would disclose nothing."""
    if round_to_fen(micros) == micros:
        return format_cny(micros)
    return f"¥{to_yuan(micros).normalize():,f}"


def _count(n: int) -> str:
    return f"{n:,}"


def describe_price(price: ProductOfferingPrice) -> str:
    """One price in words, e.g. ``¥30.00 per device per month, including 1,000 messages``."""
    amount = yuan(price.amount_micros)
    direction = "" if price.applies_to == "all" else f" ({price.applies_to} only)"
    if price.kind == "recurring":
        text = f"{amount} per device per month"
        included = []
        if price.allowance_messages:
            included.append(f"{_count(price.allowance_messages)} messages")
        if price.allowance_bytes:
            included.append(f"{_count(price.allowance_bytes)} bytes")
        if included:
            text += f", including {' and '.join(included)} per device per month"
            if price.pooled:
                text += " pooled across the customer's devices on this offering"
    elif price.kind == "one-time":
        text = f"{amount} once per device"
    elif price.kind == "per-message":
        text = f"{amount} per message{direction}"
    elif price.kind == "per-byte":
        text = f"{amount} per byte{direction}"
        if price.min_billable_bytes:
            text += f", at least {_count(price.min_billable_bytes)} bytes billed per message"
    else:
        text = f"{amount} ({price.kind})"
    if price.priority:
        text += "; emergency priority"
    return f"{price.name}: {text}"


def _wrap(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=" " * len(indent) + "  ",
        break_long_words=True,
        break_on_hyphens=False,
    ) or [indent.rstrip()]


def _field(label: str, value: str) -> list[str]:
    return _wrap(f"{label}: {value}")


def _quota(contract: Contract) -> str:
    caps = []
    if contract.monthly_messages_per_device is not None:
        caps.append(f"{_count(contract.monthly_messages_per_device)} messages")
    if contract.monthly_bytes_per_device is not None:
        caps.append(f"{_count(contract.monthly_bytes_per_device)} bytes")
    return " and ".join(caps) + " per device per calendar month (UTC+8)"


def clauses(contract: Contract) -> list[tuple[str, str]]:
    """The standard clauses, numbered in order; the quota and balance clauses follow the terms."""
    action = QUOTA_ACTIONS.get(contract.quota_action, contract.quota_action)
    balance = (
        "Service stops when a prepaid balance reaches zero and resumes after a top-up."
        if contract.stop_at_zero_balance
        else "Service does not stop at a zero balance; usage is billed in arrears."
    )
    return [
        (
            "Real name",
            "The customer is registered under its real name, verified against its unified "
            "social credit code, its legal representative and its agent. The customer keeps "
            "these details current and passes to the operator the real-name details of any "
            "end user to whom it provides devices using the service.",
        ),
        (
            "No resale or sublease",
            "The customer shall not sublease or resell the service, nor operate a "
            "telecommunications business with it, without authorisation.",
        ),
        (
            "Data only",
            "The service carries low-rate data of the terminals named in this contract, "
            "for the application scenario named in it. Voice and SMS are not provided.",
        ),
        (
            "Licensed terminals",
            "Only terminals of the listed models that hold a valid MIIT network access "
            "licence are activated; a changed terminal identity suspends the service.",
        ),
        (
            "Destination allow-list",
            "Devices may exchange data only with the destinations listed in this contract; "
            "traffic to any other destination is refused.",
        ),
        ("Quota", f"Each device may use at most {_quota(contract)}. At the quota, {action}."),
        ("Balance", balance),
        (
            "Suspension on fraud or illegal use",
            "The operator suspends service at once where it finds fraud, illegal or "
            "irregular use, or use outside this contract, reports it to the telecommunications "
            "regulator as the law requires, and restores or terminates service after "
            "re-verification.",
        ),
        (
            "Tariffs and choice",
            "The tariffs above were disclosed before signing; the customer chose among them "
            "and is told of any change before it applies.",
        ),
        (
            "Data location",
            "User data and the ground infrastructure serving the customer stay in China.",
        ),
    ]


def render(
    contract: Contract, customer: Customer, operator_name: str, tariffs: Sequence[Tariff]
) -> str:
    """The contract's canonical text (see the module docstring)."""
    scenario = SCENARIOS.get(contract.scenario)
    lines = [
        "SATELLITE IoT SERVICE CONTRACT",
        f"Contract {contract.number}, version {contract.version}",
        f"Format: {FORMAT_VERSION}",
        "",
        "1. Parties",
        *_field("Operator", operator_name),
        *_field("Customer", customer.name),
        *_field("Unified social credit code", customer.uscc),
        *_field("Organisation type", customer.org_type),
        *_field(
            "Industry (GB/T 4754)",
            f"{customer.industry} {INDUSTRIES.get(customer.industry, '')}".strip(),
        ),
        *_field("Registered in", province_label(customer.province)),
        *_field("Address", customer.address or "-"),
        *_field("Legal representative", customer.legal_rep_name),
        "",
        "2. Application scenario",
        *_field("Scenario", f"{contract.scenario} ({scenario.name if scenario else '?'})"),
        *_field("Description", contract.scenario_description or "-"),
        "",
        "3. Terminals",
        *_field("Allowed terminal models", ", ".join(contract.allowed_models)),
        *_field("Maximum devices", _count(contract.max_devices)),
        "",
        "4. Service",
        *_field("Service area", "; ".join(province_label(p) for p in contract.service_area)),
        *_field("Monthly quota", _quota(contract)),
        *_field("At the quota", contract.quota_action),
        *_field("Stop at zero balance", "yes" if contract.stop_at_zero_balance else "no"),
        "Destination allow-list:",
        *[f"  - {entry}" for entry in contract.destination_allow_list],
        "",
        "5. Tariffs disclosed",
    ]
    for tariff in tariffs:
        offering = tariff.offering
        lines += _wrap(f"{offering.name} (offering {offering.code}, version {offering.version})")
        for price in tariff.prices:
            lines += _wrap(describe_price(price), "  - ")
        if not tariff.prices:
            lines.append("  - no charge")
    lines += ["", "6. Clauses"]
    for n, (title, body) in enumerate(clauses(contract), start=1):
        lines += _wrap(f"6.{n} {title}. {body}")
    lines += [""]
    lines += _wrap(
        "Signing this text by electronic signature records the signer, the time and the "
        "SHA-256 of this text; the text is kept unchanged as the record of the agreement."
    )
    return "\n".join(line.rstrip() for line in lines) + "\n"
