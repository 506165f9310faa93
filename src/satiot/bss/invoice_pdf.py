"""The invoice as a PDF a customer's accounts department can file.

Bilingual (Chinese first, English after) and typeset with reportlab's built-in CID font
``STSong-Light``, which every PDF reader has, so no font file is shipped or downloaded. It
shows who bills whom (operator and tax id; customer, credit code, address, billing account),
the invoice number, issue and due dates, the period, one row per line (recurring charges per
offering with the proration note, usage with message and byte counts, one-time charges), the
subtotal, VAT and total in yuan with two decimals, what has been paid and credited, and how to
pay. The official VAT fapiao is issued through the tax system; this document says so. A credit
note (:func:`render_credit_note`) is the same kind of page for one correction of a sent bill.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy.orm import Session

from satiot.bss.credit_notes import get_note
from satiot.bss.invoices import get_bill, lines_of
from satiot.bss.models import BillingAccount, Customer
from satiot.bss.money import format_cny
from satiot.bss.periods import zone
from satiot.core.config import Settings

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))

KIND_LABELS = {
    "recurring": "月租 Recurring",
    "usage": "用量 Usage",
    "one-time": "一次性 One-time",
    "adjustment": "调整 Adjustment",
}
UNIT_LABELS = {"device": "台 dev.", "msg": "条 msg", "item": "项 item"}
STATE_LABELS = {
    "new": "待审核 New",
    "onHold": "暂缓 On hold",
    "validated": "已审核 Validated",
    "sent": "待付款 Due",
    "partiallyPaid": "部分付款 Partially paid",
    "settled": "已结清 Paid",
}


@dataclass(frozen=True)
class Issuer:
    """Who issues the invoice (from the operator's settings)."""

    name: str
    tax_id: str
    payment_instructions: str
    tz: str = "Asia/Shanghai"

    @classmethod
    def from_settings(cls, settings: Settings) -> Issuer:
        """The operator as its configuration names it (every door prints with these)."""
        return cls(
            settings.operator_name,
            settings.operator_tax_id,
            settings.payment_instructions,
            settings.business_timezone,
        )


def yuan(micros: int) -> str:
    """``¥1,234.56``, a credit ``-¥50.00`` (lines are whole fen already)."""
    return format_cny(micros)


def _style(size: float = 9, *, bold: bool = False, right: bool = False) -> ParagraphStyle:
    return ParagraphStyle(
        f"s{size}{bold}{right}",
        fontName=FONT,
        fontSize=size,
        leading=size * 1.35,
        alignment=TA_RIGHT if right else 0,
        textColor=colors.black if bold else colors.HexColor("#222222"),
    )


def _p(text: str, size: float = 9, *, right: bool = False) -> Paragraph:
    safe = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return Paragraph(safe, _style(size, right=right))


def _date(when: datetime, tz: str) -> str:
    return when.astimezone(zone(tz)).strftime("%Y-%m-%d")


def _document(buf: io.BytesIO, title: str, issuer: Issuer) -> SimpleDocTemplate:
    """An A4 page with the margins every document of the operator has."""
    return SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=title,
        author=issuer.name,
    )


def _letterhead(issuer: Issuer, heading: str) -> list[object]:
    """Who issues the document, and what it is."""
    return [
        _p(issuer.name, 13),
        _p(f"纳税人识别号 Taxpayer ID: {issuer.tax_id}", 8.5),
        Spacer(1, 5 * mm),
        _p(heading, 17),
    ]


def render_invoice(session: Session, bill_id: object, issuer: Issuer) -> bytes:
    """The PDF of one bill (the caller's session decides whose bills it may read)."""
    import uuid

    bill = get_bill(session, uuid.UUID(str(bill_id)))
    account = session.get(BillingAccount, bill.billing_account_id)
    customer = session.get(Customer, account.customer_id) if account else None
    lines = lines_of(session, bill.id)

    buf = io.BytesIO()
    doc = _document(buf, f"Invoice {bill.number}", issuer)
    width = A4[0] - 36 * mm
    story = [*_letterhead(issuer, "卫星物联网业务账单  INVOICE"), Spacer(1, 4 * mm)]
    head = [
        ("账单号 Invoice no.", bill.number),
        ("开具日期 Issue date", _date(bill.issued_at, issuer.tz)),
        ("付款期限 Due date", _date(bill.due_at, issuer.tz)),
        (
            "计费周期 Period",
            f"{bill.period_start.isoformat()} – {bill.period_end.isoformat()} ({bill.period})",
        ),
        ("状态 Status", STATE_LABELS.get(bill.state, bill.state)),
    ]
    bill_to = [
        ("客户 Customer", customer.name if customer else "—"),
        ("统一社会信用代码 USCC", customer.uscc if customer else "—"),
        ("地址 Address", (customer.address if customer else "") or "—"),
        ("结算账户 Billing account", f"{account.name if account else ''}"),
        ("账户编号 Account id", str(bill.billing_account_id)),
    ]
    block = Table(
        [
            [_p(k, 8), _p(v, 9), _p(k2, 8), _p(v2, 9)]
            for (k, v), (k2, v2) in zip(bill_to, head, strict=True)
        ],
        colWidths=[38 * mm, 54 * mm, 30 * mm, width - 122 * mm],
    )
    block.setStyle(
        TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)])
    )
    story += [block, Spacer(1, 6 * mm)]

    rows: list[list[object]] = [
        [
            _p("类别 Type", 8.5),
            _p("项目 Description", 8.5),
            _p("数量 Qty", 8.5, right=True),
            _p("金额 Amount", 8.5, right=True),
        ]
    ]
    for ln in lines:
        rows.append(
            [
                _p(KIND_LABELS.get(ln.kind, ln.kind), 8.5),
                _p(ln.description, 8.5),
                _p(f"{ln.quantity:,} {UNIT_LABELS.get(ln.unit, ln.unit)}", 8.5, right=True),
                _p(yuan(ln.amount_micros), 8.5, right=True),
            ]
        )
    if not lines:
        rows.append(["", _p("本期无费用 Nothing to charge this period", 8.5), "", ""])
    subtotal = bill.subtotal_micros
    tax_pct = f"{Decimal(bill.tax_rate_bp) / 100:g}%"
    totals = [
        ("小计 Subtotal", yuan(subtotal)),
        (f"增值税 VAT {tax_pct}", yuan(bill.tax_micros)),
        ("合计 Total (CNY)", yuan(bill.total_micros)),
    ]
    if bill.paid_micros:
        totals.append(("已付 Paid", yuan(bill.paid_micros)))
    if bill.credited_micros:
        totals.append(("红字冲减 Credit notes", yuan(-bill.credited_micros)))
    if bill.due_micros < 0:  # credit notes took off more than was left to pay
        totals.append(("应退金额 Owed to you (refund)", yuan(-bill.due_micros)))
    elif bill.paid_micros or bill.credited_micros:
        totals.append(("应付余额 Balance due", yuan(bill.due_micros)))
    first_total = len(rows)
    for label, amount in totals:
        size = 10.5 if label.startswith("合计") else 9
        rows.append(["", _p(label, size, right=True), "", _p(amount, size, right=True)])
    table = Table(rows, colWidths=[30 * mm, width - 86 * mm, 26 * mm, 30 * mm], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
                ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor("#5a6b7d")),
                ("LINEBELOW", (0, 1), (-1, first_total - 1), 0.25, colors.HexColor("#c5ccd4")),
                ("LINEABOVE", (1, first_total + 2), (-1, first_total + 2), 0.8, colors.black),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("SPAN", (1, first_total), (2, first_total)),
                ("SPAN", (1, first_total + 1), (2, first_total + 1)),
                ("SPAN", (1, first_total + 2), (2, first_total + 2)),
            ]
            + [("SPAN", (1, i), (2, i)) for i in range(first_total + 3, len(rows))]
        )
    )
    story += [table, Spacer(1, 8 * mm)]
    story += [
        _p("付款方式 How to pay", 10),
        _p(issuer.payment_instructions, 9),
        _p(
            f"请在付款附言中注明账单号 {bill.number}。"
            f"Please quote the invoice number {bill.number} with your payment.",
            9,
        ),
        Spacer(1, 4 * mm),
        _p(
            "金额单位：人民币元，含税合计保留两位小数。增值税发票通过税务系统另行开具。"
            "Amounts in Chinese yuan (CNY). The official VAT fapiao is issued separately "
            "through the tax system.",
            7.5,
        ),
    ]
    doc.build(story)
    return buf.getvalue()


def render_credit_note(session: Session, note_id: object, issuer: Issuer) -> bytes:
    """The PDF of one credit note: who credits whom, the bill it corrects, the amount before
    VAT, the VAT and the total credited, and why (the caller's session decides whose notes it
    may read)."""
    import uuid

    note = get_note(session, uuid.UUID(str(note_id)))
    bill = get_bill(session, note.bill_id)
    account = session.get(BillingAccount, note.billing_account_id)
    customer = session.get(Customer, account.customer_id) if account else None
    buf = io.BytesIO()
    doc = _document(buf, f"Credit note {note.number}", issuer)
    width = A4[0] - 36 * mm
    facts = [
        ("红字单号 Credit note no.", note.number),
        ("开具日期 Issue date", _date(note.issued_at, issuer.tz)),
        ("原账单号 Corrects invoice", f"{bill.number} ({bill.period})"),
        ("客户 Customer", customer.name if customer else "—"),
        ("统一社会信用代码 USCC", customer.uscc if customer else "—"),
        ("结算账户 Billing account", account.name if account else "—"),
        ("原因 Reason", note.reason),
    ]
    tax_pct = f"{Decimal(bill.tax_rate_bp) / 100:g}%"
    amounts = [
        ("冲减金额 Credited before VAT", yuan(-note.subtotal_micros)),
        (f"增值税 VAT {tax_pct}", yuan(-note.tax_micros)),
        ("合计 Total credited (CNY)", yuan(-note.total_micros)),
    ]
    if note.returned_micros:
        amounts.append(("退回预付余额 Returned to the prepaid balance", yuan(note.returned_micros)))
    if bill.due_micros < 0:
        amounts.append(("应退金额 Owed to you on the invoice", yuan(-bill.due_micros)))
    else:
        amounts.append(("原账单应付余额 Still owed on the invoice", yuan(bill.due_micros)))
    table = Table(
        [[_p(k, 8.5), _p(v, 9.5)] for k, v in facts]
        + [[_p(k, 9), _p(v, 10, right=True)] for k, v in amounts],
        colWidths=[62 * mm, width - 62 * mm],
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEABOVE", (0, len(facts)), (-1, len(facts)), 0.6, colors.HexColor("#5a6b7d")),
            ]
        )
    )
    doc.build(
        [
            *_letterhead(issuer, "卫星物联网业务红字账单  CREDIT NOTE"),
            Spacer(1, 5 * mm),
            table,
            Spacer(1, 8 * mm),
            _p(
                "金额单位：人民币元。红字增值税发票通过税务系统另行开具。"
                "Amounts in Chinese yuan (CNY). The red-letter VAT fapiao is issued separately "
                "through the tax system.",
                7.5,
            ),
        ]
    )
    return buf.getvalue()
