"""The simulated region: 黔南布依族苗族自治州 (522700), its facilities, alliances and their history.

Why 黔南 and not 桂林: `stdnum.cn.ric` checks a resident ID's address code against the years the
code existed, and 桂林's county codes date from 1983/1998 (before that its counties were
桂林地区, 4523xx), so an 龙胜 resident born in 1950 with 450328 would be rejected. 都匀市 and the
黔南 counties have kept their codes since before 1930 in GB/T 2260, so every resident born
1930–2024 gets a valid ID whose address code is their county of today.

The layout is fixed (independent of seed and scale): the city 都匀市 hosts the tertiary lead
hospital, the prefecture TCM hospital and community centres; each rural county has a county
people's, TCM and maternal-and-child hospital, township centres, village clinics and pharmacies.
Three out-of-region hospitals receive out-of-region referrals and patients.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from zlib import crc32

from stdnum.cn import uscc

from yilian_sim.config import FacilityChange, SimulationConfig
from yilian_sim.model import Alliance, County, FacilityVersion, Region

PREFECTURE_CODE = "522700"
PREFECTURE_NAME = "黔南布依族苗族自治州"
CITY_CODE = "522701"
CITY_GROUP_ID = "QNA01"

# (code, name, resident population at scale 1, short name for facility names)
COUNTIES: tuple[tuple[str, str, int, str], ...] = (
    ("522701", "都匀市", 340_000, "都匀市"),
    ("522723", "贵定县", 230_000, "贵定县"),
    ("522722", "荔波县", 150_000, "荔波县"),
    ("522732", "三都水族自治县", 230_000, "三都水族自治县"),
)

# Division codes (valid in GB/T 2260 for every birth year 1930–2024) of the other prefectures
# whose residents sometimes visit: 黔东南 and 黔西南 neighbours, 湘西, 西双版纳, Beijing tourists.
VISITOR_COUNTIES: tuple[str, ...] = (
    "522622",
    "522631",
    "522632",
    "522323",
    "522324",
    "433123",
    "532822",
    "110108",
)

TOWNSHIPS: dict[str, tuple[str, ...]] = {
    "522723": (
        "沿山镇",
        "昌明镇",
        "盘江镇",
        "德新镇",
        "新巴镇",
        "云雾镇",
        "岩下乡",
        "抱管乡",
        "落北河乡",
    ),
    "522722": (
        "甲良镇",
        "佳荣镇",
        "小七孔镇",
        "朝阳镇",
        "茂兰镇",
        "瑶山瑶族乡",
        "黎明关水族乡",
        "水尧水族乡",
        "永康水族乡",
        "立化镇",
    ),
    "522732": (
        "普安镇",
        "大河镇",
        "周覃镇",
        "九阡镇",
        "中和镇",
        "都江镇",
        "拉揽乡",
        "打鱼乡",
        "坝街乡",
        "塘州乡",
        "廷牌镇",
    ),
}
COMMUNITY_CENTRES: tuple[str, ...] = (
    "广惠路街道",
    "文峰街道",
    "小围寨街道",
    "沙包堡街道",
    "绿茵湖街道",
    "经济开发区",
)
VILLAGES_PER_COUNTY: dict[str, int] = {"522723": 42, "522722": 34, "522732": 47}
_VILLAGE_FIRST = "新平上下大小高龙石水岩坝板拉甲纳翁摆"
_VILLAGE_SECOND = "寨坡田江塘冲湾场口桥岭"
PHARMACY_NAMES: dict[str, tuple[str, ...]] = {
    "522701": ("一心堂都匀剑江药店", "老百姓大药房都匀广惠店", "黔南康民大药房", "都匀同济堂药房"),
    "522723": ("一心堂贵定金南药店", "贵定县百姓平价药房", "贵定县益民大药房"),
    "522722": ("一心堂荔波樟江药店", "荔波县福康大药房", "荔波县仁和药房"),
    "522732": ("三都县水乡大药房", "一心堂三都凤羽药店", "三都县康健药房"),
}
# (code, name, county, prefecture)
EXTERNAL_HOSPITALS: tuple[tuple[str, str, str, str], ...] = (
    ("QN9001", "贵州省人民医院", "520102", "520100"),
    ("QN9002", "中南大学湘雅二医院", "430102", "430100"),
    ("QN9003", "重庆市人民医院", "500103", "500100"),
)


def credit_code(facility_code: str, division_code: str, kind: str) -> str:
    """A valid unified social credit code (GB 32100), derived from the facility code.

    kind '12' = public institution (事业单位), '91' = company (a pharmacy). The organisation
    code part carries its own GB 11714 check digit, as real codes do.
    """
    body = f"{crc32(facility_code.encode()) % 10**8:08d}"
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    org_check = 11 - sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11
    org_code = body + {10: "X", 11: "0"}.get(org_check, str(org_check))
    partial = kind + division_code + org_code
    return partial + uscc.calc_check_digit(partial)


def _village_names(county_code: str, count: int) -> list[str]:
    """Distinct village names, the same for a county on every run."""
    names = [a + b for a in _VILLAGE_FIRST for b in _VILLAGE_SECOND]
    offset = int(county_code) % len(names)
    step = 37  # coprime with len(names): walks all names without repeating
    return [names[(offset + i * step) % len(names)] + "村" for i in range(count)]


def _base_facilities() -> tuple[list[FacilityVersion], list[Alliance]]:
    """The region on day one (version 1 of every facility) and its alliances."""
    start = date(2000, 1, 1)
    facilities: list[FacilityVersion] = []
    alliances: list[Alliance] = []

    def add(
        code: str,
        name: str,
        ftype: str,
        tier: int,
        grade: str,
        county: str,
        alliance: str | None,
        prefecture: str = PREFECTURE_CODE,
    ) -> None:
        kind = "91" if ftype == "pharmacy" else "12"
        facilities.append(
            FacilityVersion(
                facility_code=code,
                version_no=1,
                credit_code=credit_code(code, county, kind),
                name=name,
                facility_type=ftype,
                tier=tier,
                grade=grade,
                county_code=county,
                prefecture_code=prefecture,
                alliance_id=alliance,
                status="active",
                merged_into=None,
                effective_date=start,
            )
        )

    alliances.append(
        Alliance(CITY_GROUP_ID, "黔南州人民医院城市医疗集团", "city_medical_group", "QN1001", None)
    )
    add(
        "QN1001",
        "黔南布依族苗族自治州人民医院",
        "hospital",
        3,
        "三级甲等",
        CITY_CODE,
        CITY_GROUP_ID,
    )
    add(
        "QN1002",
        "黔南布依族苗族自治州中医医院",
        "hospital",
        3,
        "三级乙等",
        CITY_CODE,
        CITY_GROUP_ID,
    )
    for i, street in enumerate(COMMUNITY_CENTRES):
        add(
            f"QN1{101 + i}",
            f"都匀市{street}社区卫生服务中心",
            "community_centre",
            1,
            "一级甲等",
            CITY_CODE,
            CITY_GROUP_ID,
        )
    for i, name in enumerate(PHARMACY_NAMES[CITY_CODE]):
        add(f"QN1{801 + i}", name, "pharmacy", 0, "未定级", CITY_CODE, None)

    for n, (county, _, _, short) in enumerate(COUNTIES[1:], start=2):
        alliance_id = f"QNA0{n}"
        lead = f"QN{n}001"
        alliances.append(
            Alliance(
                alliance_id, f"{short}紧密型县域医共体", "county_medical_community", lead, county
            )
        )
        add(lead, f"{short}人民医院", "hospital", 2, "二级甲等", county, alliance_id)
        add(
            f"QN{n}002",
            f"{short}中医医院",
            "hospital",
            2,
            "二级甲等" if n % 2 else "二级乙等",
            county,
            alliance_id,
        )
        add(f"QN{n}003", f"{short}妇幼保健院", "hospital", 2, "二级乙等", county, alliance_id)
        townships = TOWNSHIPS[county]
        for i, town in enumerate(townships):
            grade = "一级甲等" if i < 3 else ("一级乙等" if i < 7 else "未定级")
            add(
                f"QN{n}{101 + i}",
                f"{short}{town}卫生院",
                "township_centre",
                1,
                grade,
                county,
                alliance_id,
            )
        for i, village in enumerate(_village_names(county, VILLAGES_PER_COUNTY[county])):
            town = townships[i % len(townships)]
            add(
                f"QN{n}{301 + i}",
                f"{short}{town}{village}卫生室",
                "village_clinic",
                0,
                "未定级",
                county,
                alliance_id,
            )
        for i, name in enumerate(PHARMACY_NAMES[county]):
            add(f"QN{n}{801 + i}", name, "pharmacy", 0, "未定级", county, None)

    for code, name, county, prefecture in EXTERNAL_HOSPITALS:
        add(code, name, "external_hospital", 3, "三级甲等", county, None, prefecture)
    return facilities, alliances


def default_facility_changes(start: date) -> tuple[FacilityChange, ...]:
    """The default master-data history: a promotion, an alliance move and a merger.

    沿山镇卫生院 (贵定) becomes a 二级乙等 hospital on start+2; 昌明镇卫生院 (贵定, next to 都匀)
    joins the city medical group on start+4; 拉揽乡卫生院 is absorbed by 周覃镇卫生院 (三都) on
    start+5, as 景洪 and 桑植 merged theirs.
    """
    return (
        FacilityChange(start + timedelta(days=2), "tier", "QN2101", tier=2, grade="二级乙等"),
        FacilityChange(start + timedelta(days=4), "alliance", "QN2102", target=CITY_GROUP_ID),
        FacilityChange(start + timedelta(days=5), "merge", "QN4107", target="QN4103"),
    )


def _apply(version: FacilityVersion, change: FacilityChange) -> FacilityVersion:
    """The next version of a facility after `change`."""
    following = replace(version, version_no=version.version_no + 1, effective_date=change.day)
    if change.kind == "tier":
        tier = change.tier if change.tier is not None else version.tier
        return replace(following, tier=tier, grade=change.grade or version.grade)
    if change.kind == "alliance":
        return replace(following, alliance_id=change.target)
    if change.kind == "merge":
        return replace(following, status="merged", merged_into=change.target)
    raise ValueError(
        f"facility change {change.kind!r} on {change.day} for "
        f"{change.facility_code}: kind must be tier, alliance or merge"
    )


def build_region(config: SimulationConfig) -> Region:
    """The region of `config`: fixed layout, populations at its scale, its facility history."""
    base, alliances = _base_facilities()
    changes = (
        config.facility_changes
        if config.facility_changes is not None
        else default_facility_changes(config.start)
    )
    latest = {v.facility_code: v for v in base}
    versions = list(base)
    for change in sorted(changes, key=lambda c: c.day):
        if change.facility_code not in latest:
            raise ValueError(
                f"facility change on {change.day}: unknown facility {change.facility_code}"
            )
        latest[change.facility_code] = _apply(latest[change.facility_code], change)
        versions.append(latest[change.facility_code])
    counties = tuple(
        County(code, name, max(1, round(pop * config.scale))) for code, name, pop, _ in COUNTIES
    )
    return Region(PREFECTURE_CODE, PREFECTURE_NAME, counties, tuple(alliances), tuple(versions))
