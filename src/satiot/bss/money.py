"""Money as integers of micro-yuan (1 CNY = 1,000,000 µ¥).

Per-byte and per-message prices are far below a fen, so rates and usage charges are kept in
micro-yuan integers (exact, and the same on SQLite and PostgreSQL, which a float or an
SQLite ``NUMERIC`` would not be). Amounts are rounded to the fen only on an invoice line.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

MICROS_PER_YUAN = 1_000_000
MICROS_PER_FEN = 10_000


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
