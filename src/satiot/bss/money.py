"""Money as integers of micro-yuan (1 CNY = 1,000,000 µ¥).

Per-byte and per-message prices are far below a fen, so rates and usage charges are kept in
micro-yuan integers (exact, and the same on SQLite and PostgreSQL, which a float or an
SQLite ``NUMERIC`` would not be). Amounts are rounded to the fen only on an invoice line.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from satiot.core.errors import InvalidInput

MICROS_PER_YUAN = 1_000_000
MICROS_PER_FEN = 10_000
#: The largest amount a person types (a form, the CLI), in yuan: the API's 14 digits with two
#: decimals.
MAX_YUAN = Decimal("999999999999.99")
_AMOUNT_RE = re.compile(r"^\+?[0-9]*\.?[0-9]*$")
_SIGNED_AMOUNT_RE = re.compile(r"^[-+]?[0-9]*\.?[0-9]*$")


def to_micros(yuan: Decimal | str | int) -> int:
    """Micro-yuan from a yuan amount given as text or Decimal (never a float)."""
    value = Decimal(yuan) * MICROS_PER_YUAN
    if value != value.to_integral_value():
        raise ValueError(f"{yuan} CNY has more precision than one micro-yuan")
    return int(value)


def to_yuan(micros: int) -> Decimal:
    return Decimal(micros) / MICROS_PER_YUAN


def round_to_fen(micros: int) -> int:
    """Micro-yuan rounded half-up to a whole fen (still in micro-yuan)."""
    fen = (Decimal(micros) / MICROS_PER_FEN).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(fen) * MICROS_PER_FEN


def micro_yuan_text(micros: int) -> str:
    """Yuan to the micro-yuan, six decimals (``0.100100``), as the statements give a device's
    or a message's charge exactly; by integer arithmetic (a file of a million lines calls it
    a million times)."""
    sign = "-" if micros < 0 else ""
    whole, part = divmod(abs(micros), 1_000_000)
    return f"{sign}{whole}.{part:06d}"


def fen_text(micros: int) -> str:
    """Yuan with two decimals and no symbol (``106.01``, ``-20.00``), as the API and the
    spreadsheets carry amounts of whole fen."""
    return f"{to_yuan(micros).quantize(Decimal('0.01'))}"


def vat_micros(subtotal_micros: int, tax_rate_bp: int) -> int:
    """VAT on a subtotal of whole fen at ``tax_rate_bp`` basis points, rounded half-up to the
    fen: subtotal × bp / 10,000 is then an exact number of micro-yuan."""
    return round_to_fen(subtotal_micros * tax_rate_bp // 10_000)


def format_cny(micros: int) -> str:
    """``¥1,234.56`` for people (amounts on invoices are whole fen); a credit ``-¥50.00``."""
    fen = round_to_fen(micros)
    return f"{'-' if fen < 0 else ''}¥{to_yuan(abs(fen)):,.2f}"


def yuan_amount(
    text: str, field: str = "amount", *, example: str = "200.00", signed: bool = False
) -> int:
    """A positive yuan amount typed by a person in a form or on the command line (``1,200.50``)
    as micro-yuan: ASCII digits, at most two decimals, at most :data:`MAX_YUAN` (``Decimal``
    alone also reads ``Infinity``, ``1e400`` and Arabic-Indic digits). ``signed`` also takes
    one below zero (``-50``, a credit); zero is refused either way."""
    cleaned = text.strip().replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise InvalidInput(
            f"{field} must be a number of yuan, e.g. {example}", field=field
        ) from None
    kind = "a non-zero" if signed else "a positive"
    size = abs(value) if signed and value.is_finite() else value
    if not value.is_finite() or size <= 0 or size > MAX_YUAN:
        raise InvalidInput(f"{field} must be {kind} number of yuan, e.g. {example}", field=field)
    if not (_SIGNED_AMOUNT_RE if signed else _AMOUNT_RE).fullmatch(cleaned):
        raise InvalidInput(
            f"{field} must be written with the digits 0-9, e.g. {example}", field=field
        )
    if value != value.quantize(Decimal("0.01")):
        raise InvalidInput(f"{field} has more than two decimals", field=field)
    return to_micros(value)


def prorate(amount: int, days: int, days_in_month: int) -> int:
    """``amount × days ÷ days_in_month`` rounded half-up to the micro-yuan."""
    if days >= days_in_month:
        return amount
    return (2 * amount * days + days_in_month) // (2 * days_in_month)
