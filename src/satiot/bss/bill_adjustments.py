"""Adjustments: billing staff correct a bill before it is validated.

A bill run charges what the catalog, the subscriptions and the rated usage say. What they
cannot say comes from people: a goodwill credit for a day of outage, a fee agreed by letter, a
device charged that the customer had returned. An adjustment is an ``adjustment`` line with
the reason as its description, a credit below zero or a charge above; the bill's VAT and total
are worked out again from its subtotal exactly as the run works them out, so the bill reads as
if the run had made the line.

Only a bill still ``new`` or ``onHold`` is adjusted: once validated its figures are what the
customer will be sent (a validated bill in doubt is held first, which takes it back), and once
sent a correction is a credit note (:mod:`satiot.bss.credit_notes`).
A credit that would take the subtotal below zero is refused (a bill never owes the customer
money), as is a zero amount or a missing reason. Each adjustment is audited and announced as
``bill.adjusted``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from satiot.bss.invoices import bill_view, get_bill
from satiot.bss.models import BillLine, CustomerBill
from satiot.bss.money import MICROS_PER_FEN, format_cny, vat_micros
from satiot.core.auth.principal import Principal
from satiot.core.changes import record_change
from satiot.core.errors import Conflict, InvalidInput
from satiot.core.lengths import plain_text

#: The states in which a bill may still be corrected.
ADJUSTABLE: Final = ("new", "onHold")
#: The largest adjustment, either way (¥1 billion): a typo of a few zeros is refused.
MAX_ADJUSTMENT_MICROS: Final = 1_000_000_000 * 1_000_000
#: As long as a bill line's description may be (``BillLine.description``).
MAX_REASON: Final = 300


@dataclass(frozen=True)
class Adjusted:
    """What an adjustment made: the new line and the bill as it now stands."""

    line: BillLine
    bill: CustomerBill


def one_line_reason(reason: str, column: Any, empty: str) -> str:
    """``reason`` as one line of plain text (a pasted line break becomes a space): it is a line
    of the invoice or the credit note, in the PDF, the audit log and the ledger's file
    (``plain_text``); ``empty`` is what to say when there is none."""
    text = " ".join(reason.split())
    if not text:
        raise InvalidInput(f"{empty}: the reason is printed on the document", field="reason")
    return plain_text(text, column, "reason")


def _checked_amount(amount_micros: int) -> int:
    if amount_micros == 0:
        raise InvalidInput("an adjustment of ¥0.00 changes nothing", field="amount")
    if amount_micros % MICROS_PER_FEN:
        raise InvalidInput("amount has more than two decimals", field="amount")
    if abs(amount_micros) > MAX_ADJUSTMENT_MICROS:
        raise InvalidInput(
            f"amount is beyond {format_cny(MAX_ADJUSTMENT_MICROS)} either way", field="amount"
        )
    return amount_micros


def adjust_bill(
    session: Session,
    principal: Principal,
    bill_id: uuid.UUID,
    *,
    amount_micros: int,
    reason: str,
    at: datetime,
) -> Adjusted:
    """Add an adjustment line of ``amount_micros`` (negative: a credit) to a bill not yet
    validated, and work out its VAT and total again; see the module's docstring."""
    why = one_line_reason(reason, BillLine.description, "say why the bill is adjusted")
    amount = _checked_amount(amount_micros)
    bill = get_bill(session, bill_id, for_update=True)
    if bill.state not in ADJUSTABLE:
        raise Conflict(
            f"bill {bill.number} is {bill.state}: only a new or held bill is adjusted (hold a "
            "validated one first); once it is sent, correct it with a credit note",
            field="amount",
        )
    subtotal = bill.subtotal_micros + amount
    if subtotal < 0:
        raise InvalidInput(
            f"a credit of {format_cny(-amount)} is more than the bill's subtotal of "
            f"{format_cny(bill.subtotal_micros)}",
            field="amount",
        )
    before = bill_view(bill)
    line = BillLine(
        tenant_id=bill.tenant_id,
        bill_id=bill.id,
        kind="adjustment",
        description=why,
        subscription_id=None,
        quantity=1,
        unit="item",
        amount_micros=amount,
    )
    session.add(line)
    bill.adjustment_micros += amount
    bill.tax_micros = vat_micros(subtotal, bill.tax_rate_bp)
    bill.total_micros = subtotal + bill.tax_micros
    session.flush()
    record_change(
        session,
        principal,
        at=at,
        action="bill.adjusted",
        target=("bill", bill.id),
        tenant_id=bill.tenant_id,
        before=before,
        after=bill_view(bill),
        reason=why,
        payload={
            "type": "bill.adjusted",
            "id": str(bill.id),
            "number": bill.number,
            "line_id": str(line.id),
            "amount_micros": amount,
            "adjustment_micros": bill.adjustment_micros,
            "tax_micros": bill.tax_micros,
            "total_micros": bill.total_micros,
        },
    )
    return Adjusted(line, bill)
