"""Places the twin's terminals live and travel between: regions, airports, ports, sea lanes.

Kept as data apart from the movement models so an operator can read (and extend) the
geography without reading the kinematics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from satiot.network.geometry import Array

Surface = Literal["land", "sea"]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class Region:
    """A latitude/longitude box where terminals live, and which surface they must be on.

    Boxes are coarse (a province's box reaches over its borders); the surface requirement keeps
    land terminals off the sea and buoys off the land.
    """

    name: str
    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float
    surface: Surface | None = None

    def contains(self, lat: Array | float, lon: Array | float) -> BoolArray:
        """Which points lie inside the box (the surface is not checked)."""
        la, lo = np.asarray(lat), np.asarray(lon)
        return np.asarray(
            (la >= self.lat_min)
            & (la <= self.lat_max)
            & (lo >= self.lon_min)
            & (lo <= self.lon_max)
        )


REGIONS: Mapping[str, Region] = MappingProxyType(
    {
        r.name: r
        for r in (
            Region("china", 18.0, 54.0, 73.0, 135.0, "land"),
            Region("xinjiang", 34.3, 49.2, 73.5, 96.4, "land"),
            Region("tibet", 26.8, 36.5, 78.4, 99.1, "land"),
            Region("inner-mongolia", 37.4, 53.3, 97.2, 126.1, "land"),
            Region("northeast", 38.7, 53.6, 118.8, 135.1, "land"),
            Region("south-china-sea", 0.0, 23.5, 103.0, 121.0, "sea"),
            Region("east-china-sea", 23.0, 33.5, 117.0, 131.0, "sea"),
            Region("yellow-sea", 33.5, 41.0, 117.0, 130.0, "sea"),
            Region("pacific-lanes", -5.0, 45.0, 100.0, 150.0, "sea"),
            Region("world", -90.0, 90.0, -180.0, 180.0, None),
        )
    }
)

# Airports: (latitude, longitude, elevation m).
AIRPORTS: Mapping[str, tuple[float, float, float]] = MappingProxyType(
    {
        "beijing": (40.080, 116.585, 35.0),
        "shanghai": (31.144, 121.805, 4.0),
        "guangzhou": (23.392, 113.299, 15.0),
        "shenzhen": (22.639, 113.811, 4.0),
        "chengdu": (30.313, 104.441, 440.0),
        "chongqing": (29.719, 106.642, 416.0),
        "urumqi": (43.907, 87.474, 648.0),
        "kashgar": (39.543, 76.020, 1385.0),
        "lhasa": (29.298, 90.912, 3570.0),
        "ngari": (32.101, 80.053, 4274.0),
        "harbin": (45.623, 126.250, 140.0),
        "shenyang": (41.640, 123.483, 60.0),
        "hailar": (49.205, 119.825, 655.0),
        "hohhot": (40.852, 111.824, 1084.0),
        "kunming": (25.102, 102.929, 2103.0),
        "xian": (34.447, 108.752, 479.0),
        "sanya": (18.303, 109.412, 28.0),
        "singapore": (1.364, 103.991, 7.0),
        "tokyo": (35.765, 140.386, 43.0),
        "seoul": (37.463, 126.440, 7.0),
    }
)
MIN_FLIGHT_KM = 600.0

# Ports (anchorage off each harbour) and open-sea turning points; great circles between
# neighbours in SEA_LANES stay at sea except within a few km of a port.
SEA_POINTS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "dalian": (38.90, 121.80),
        "tianjin": (38.97, 117.90),
        "qingdao": (36.00, 120.45),
        "shanghai": (31.30, 121.85),
        "ningbo": (29.90, 122.25),
        "xiamen": (24.40, 118.15),
        "hong-kong": (22.28, 114.17),
        "shenzhen": (22.50, 114.35),
        "guangzhou": (22.60, 113.75),
        "singapore": (1.22, 103.85),
        "busan": (35.05, 129.10),
        "tokyo": (35.50, 139.85),
        "bohai": (38.80, 119.50),
        "bohai-strait": (38.45, 121.00),
        "laotieshan": (38.55, 121.30),
        "yellow-n": (37.40, 123.00),
        "yellow-c": (35.50, 123.00),
        "yellow-s": (33.00, 123.50),
        "yangtze": (31.00, 122.90),
        "ecs-n": (31.00, 123.20),
        "ecs-c": (29.00, 123.00),
        "taiwan-n": (26.30, 120.80),
        "strait-n": (25.00, 119.90),
        "strait-s": (23.60, 118.90),
        "scs-ne": (21.90, 116.50),
        "prd": (21.70, 114.30),
        "scs-c": (17.00, 114.00),
        "scs-w": (11.00, 110.50),
        "scs-s": (5.50, 106.50),
        "singapore-e": (1.60, 104.70),
        "singapore-strait": (1.25, 104.55),
        "jeju-s": (32.70, 126.50),
        "korea-strait": (34.30, 128.70),
        "kyushu-w": (32.20, 128.00),
        "kyushu-s": (29.60, 130.40),
        "osumi-e": (30.20, 131.60),
        "shikoku-s": (32.40, 134.00),
        "kii-s": (33.20, 136.50),
        "izu-s": (34.20, 139.60),
        "uraga": (35.05, 139.75),
    }
)
PORTS: tuple[str, ...] = (
    "dalian", "tianjin", "qingdao", "shanghai", "ningbo", "xiamen", "hong-kong",
    "shenzhen", "guangzhou", "singapore", "busan", "tokyo",
)  # fmt: skip
SEA_LANES: tuple[tuple[str, str], ...] = (
    ("tianjin", "bohai"), ("bohai", "bohai-strait"), ("dalian", "laotieshan"),
    ("laotieshan", "bohai-strait"), ("bohai-strait", "yellow-n"), ("qingdao", "yellow-c"),
    ("yellow-n", "yellow-c"), ("yellow-c", "yellow-s"), ("yellow-s", "ecs-n"),
    ("shanghai", "yangtze"), ("yangtze", "ecs-n"), ("ningbo", "ecs-c"), ("ecs-n", "ecs-c"),
    ("ecs-c", "taiwan-n"), ("taiwan-n", "strait-n"), ("strait-n", "strait-s"),
    ("xiamen", "strait-s"), ("strait-s", "scs-ne"), ("scs-ne", "prd"), ("prd", "hong-kong"),
    ("prd", "shenzhen"), ("prd", "guangzhou"), ("prd", "scs-c"), ("scs-c", "scs-w"),
    ("scs-w", "scs-s"), ("scs-s", "singapore-e"), ("singapore-e", "singapore-strait"),
    ("singapore-strait", "singapore"), ("yellow-s", "jeju-s"), ("jeju-s", "korea-strait"),
    ("korea-strait", "busan"), ("jeju-s", "kyushu-w"), ("kyushu-w", "kyushu-s"),
    ("kyushu-s", "osumi-e"), ("osumi-e", "shikoku-s"), ("shikoku-s", "kii-s"),
    ("kii-s", "izu-s"), ("izu-s", "uraga"), ("uraga", "tokyo"), ("ecs-c", "kyushu-s"),
)  # fmt: skip


def region_named(name: str) -> Region:
    """Look a region up by name, listing the known ones when it is not there."""
    try:
        return REGIONS[name]
    except KeyError:
        raise ValueError(f"unknown region {name!r}; known: {', '.join(REGIONS)}") from None
