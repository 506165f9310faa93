"""Real-name checks for enterprise customers: credit codes, resident IDs, phones and regions.

The Anti-Telecom-Fraud Law asks an operator to verify the enterprise, its legal representative
and the agent who signs up before any service. The check algorithms are python-stdnum's
(``stdnum.cn.uscc``, ``stdnum.cn.ric``); this module adds what an operator needs around them:
a reason a person can act on for every refusal, the field it concerns, and the rule that a
credit code which is *well formed* but fails its check character goes to manual review instead
of being refused (some real early codes do, REFERENCE §1), while a *malformed* one is refused.

The reference tables (GB/T 2260 provinces, GB/T 4754 industry sections) are data, so that an
operator's staff can read and extend them without touching the checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from stdnum.cn import ric, uscc
from stdnum.exceptions import InvalidChecksum, InvalidComponent, ValidationError

from satiot.core.errors import InvalidInput
from satiot.core.lengths import unsafe_character

#: First two digits of a GB/T 2260 region code (positions 3-4 of a credit code, 1-2 of a
#: resident ID) and the province-level division they name.
PROVINCES: dict[str, str] = {
    "11": "Beijing",
    "12": "Tianjin",
    "13": "Hebei",
    "14": "Shanxi",
    "15": "Inner Mongolia",
    "21": "Liaoning",
    "22": "Jilin",
    "23": "Heilongjiang",
    "31": "Shanghai",
    "32": "Jiangsu",
    "33": "Zhejiang",
    "34": "Anhui",
    "35": "Fujian",
    "36": "Jiangxi",
    "37": "Shandong",
    "41": "Henan",
    "42": "Hubei",
    "43": "Hunan",
    "44": "Guangdong",
    "45": "Guangxi",
    "46": "Hainan",
    "50": "Chongqing",
    "51": "Sichuan",
    "52": "Guizhou",
    "53": "Yunnan",
    "54": "Tibet",
    "61": "Shaanxi",
    "62": "Gansu",
    "63": "Qinghai",
    "64": "Ningxia",
    "65": "Xinjiang",
    "71": "Taiwan",
    "81": "Hong Kong",
    "82": "Macao",
}

#: Sections of GB/T 4754-2017, the classification the regulator's statistics use.
INDUSTRIES: dict[str, str] = {
    "A": "Agriculture, forestry, animal husbandry and fishery",
    "B": "Mining",
    "C": "Manufacturing",
    "D": "Electricity, heat, gas and water production and supply",
    "E": "Construction",
    "F": "Wholesale and retail",
    "G": "Transport, storage and post",
    "H": "Accommodation and catering",
    "I": "Information transmission, software and IT services",
    "J": "Finance",
    "K": "Real estate",
    "L": "Leasing and business services",
    "M": "Scientific research and technical services",
    "N": "Water conservancy, environment and public facilities management",
    "O": "Residential and other services",
    "P": "Education",
    "Q": "Health and social work",
    "R": "Culture, sports and entertainment",
    "S": "Public administration, social security and social organisations",
    "T": "International organisations",
}

#: The notice's service objects (industry, transport, energy, agriculture, emergency and
#: other users of data collection) map mainly to these sections (REFERENCE §11).
SERVICE_OBJECT_INDUSTRIES = frozenset("ABCDGNS")

ORGANIZATION_TYPES = ("enterprise", "institution")

#: The characters GB 32100 allows in a credit code (no I, O, S, V, Z).
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

_MOBILE_RE = re.compile(r"^1[3-9][0-9]{9}$")
_LANDLINE_RE = re.compile(r"^0[0-9]{9,11}$")


@dataclass(frozen=True)
class CreditCode:
    """A well-formed credit code; ``check_ok`` is False when its check character fails."""

    value: str
    check_ok: bool

    @property
    def province(self) -> str:
        """The province its registering region (positions 3-4) names."""
        return self.value[2:4]


def check_uscc(text: str, field: str = "uscc") -> CreditCode:
    """Parse a Unified Social Credit Code; InvalidInput says why a malformed one is refused.

    Separators (spaces, hyphens) are dropped and letters upper-cased. A failed check character
    does not raise: the code is returned with ``check_ok=False`` for manual review.
    """
    value = uscc.compact(text or "")
    if len(value) != 18:
        raise InvalidInput(
            f"{field}: a unified social credit code has 18 characters, not {len(value)}",
            field=field,
        )
    bad = sorted({ch for ch in value if ch not in USCC_ALPHABET})
    if bad:
        raise InvalidInput(
            f"{field}: {', '.join(repr(c) for c in bad)} cannot appear in a credit code "
            "(digits and capital letters except I, O, S, V and Z)",
            field=field,
        )
    if not value[:8].isdigit():
        raise InvalidInput(
            f"{field}: positions 1-8 (registering authority, entity type and region) must be "
            "digits",
            field=field,
        )
    if value[2:4] not in PROVINCES:
        raise InvalidInput(
            f"{field}: positions 3-4 ({value[2:4]}) name no province in GB/T 2260", field=field
        )
    try:
        uscc.validate(value)
    except InvalidChecksum:
        return CreditCode(value, check_ok=False)
    except ValidationError as exc:  # defensive: the checks above cover stdnum's format rules
        raise InvalidInput(f"{field}: not a valid credit code ({exc})", field=field) from exc
    return CreditCode(value, check_ok=True)


def check_resident_id(text: str, field: str, *, today: date) -> str:
    """A resident ID number (GB 11643) with a correct check digit and a real birth date.

    Only the check digit, the birth date (a real day, not in the future) and the province are
    checked: the county part is not, because county codes change over the years and real old
    numbers (REFERENCE §1: ``440524188001010014``) predate today's tables.
    """
    value = ric.compact(text or "")
    if len(value) != 18:
        raise InvalidInput(
            f"{field}: a resident ID number has 18 characters, not {len(value)}", field=field
        )
    if not value[:17].isdigit() or not (value[17].isdigit() or value[17] == "X"):
        raise InvalidInput(
            f"{field}: a resident ID number is 17 digits and a check digit (0-9 or X)",
            field=field,
        )
    if value[:2] not in PROVINCES:
        raise InvalidInput(
            f"{field}: positions 1-2 ({value[:2]}) name no province in GB/T 2260", field=field
        )
    if ric.calc_check_digit(value) != value[17]:
        raise InvalidInput(
            f"{field}: the check digit does not match (ISO 7064 MOD 11-2): mistyped?", field=field
        )
    try:
        born = ric.get_birth_date(value)
    except (InvalidComponent, ValueError):
        raise InvalidInput(
            f"{field}: positions 7-14 ({value[6:14]}) are not a real birth date (YYYYMMDD)",
            field=field,
        ) from None
    if born > today:
        raise InvalidInput(
            f"{field}: the birth date {born.isoformat()} is in the future", field=field
        )
    return value


def birth_date(resident_id: str) -> date:
    """The birth date inside a resident ID already checked by :func:`check_resident_id`."""
    return ric.get_birth_date(resident_id)


def mask_resident_id(value: str) -> str:
    """Personal data shown to people who need not see it: the first 6 and last 4 characters."""
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def check_phone(text: str, field: str = "agent.phone") -> str:
    """A mainland mobile (11 digits) or landline (area code with 0, then the number).

    Spaces, hyphens and parentheses are dropped, and a +86/0086 country prefix is removed.
    """
    value = re.sub(r"[\s\-()]", "", text or "")
    for prefix in ("+86", "0086"):
        if value.startswith(prefix):
            value = value[len(prefix) :]
            break
    if _MOBILE_RE.fullmatch(value) or _LANDLINE_RE.fullmatch(value):
        return value
    raise InvalidInput(
        f"{field}: expected a mainland mobile number (11 digits starting 13-19) or a landline "
        "with its area code (e.g. 010-12345678)",
        field=field,
    )


def check_name(text: str, field: str, *, max_length: int = 100) -> str:
    """A person's or organisation's name: trimmed, not empty, no control or directional
    override characters (:func:`satiot.core.lengths.unsafe_character`)."""
    value = (text or "").strip()
    if not value:
        raise InvalidInput(f"{field}: must not be empty", field=field)
    if len(value) > max_length:
        raise InvalidInput(f"{field}: at most {max_length} characters", field=field)
    unsafe = unsafe_character(value)
    if unsafe is not None:
        raise InvalidInput(f"{field}: {unsafe}", field=field)
    return value


def check_industry(text: str, field: str = "industry") -> str:
    value = (text or "").strip().upper()
    if value not in INDUSTRIES:
        raise InvalidInput(
            f"{field}: {text!r} is not a GB/T 4754 section letter (A-T)", field=field
        )
    return value


def check_province(text: str, field: str = "province") -> str:
    value = (text or "").strip()
    if value not in PROVINCES:
        raise InvalidInput(
            f"{field}: {text!r} is not a GB/T 2260 province code (e.g. 11 for Beijing)",
            field=field,
        )
    return value


def check_organization_type(text: str, field: str = "organization_type") -> str:
    value = (text or "").strip().lower()
    if value not in ORGANIZATION_TYPES:
        raise InvalidInput(
            f"{field}: {text!r} is not one of {', '.join(ORGANIZATION_TYPES)}", field=field
        )
    return value


def province_label(code: str) -> str:
    """``11 Beijing`` for people; an unknown code is shown as it is."""
    name = PROVINCES.get(code)
    return f"{code} {name}" if name else code
