"""The HTML graph's geometry (pure): every edge has a path of its own, runs from card side to
card side, and crosses no other VPC card nor a box's label; each failure is listed once."""

from __future__ import annotations

import re
from typing import Any

from vpc_peering_cli.graph import BOX_W, NODE_H, NODE_W, html_page
from vpc_peering_cli.network import NetworkView

HUB, MEMBER = "123456789012", "111111111111"
#: The newcomer's picture: app-1 and its copy in one box, each paired with app-3 and app-4
#: (the copy's pairs failed), app-2 alone in a fourth box.
VPCS = {
    "app-3": (MEMBER, "us-east-1"),
    "app-4": (MEMBER, "us-west-2"),
    "app-1": (HUB, "us-east-1"),
    "app-1-copy": (HUB, "us-east-1"),
    "app-2": (HUB, "us-west-2"),
}


def key(name: str) -> str:
    account, region = VPCS[name]
    return f"vpc-{name} ({account} {region})"


def status() -> dict[str, Any]:
    names = list(VPCS)
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            failed = "app-1-copy" in (a, b)
            detail = "RouteConflict: rtb-1 already routes" if failed else ""
            state = "failed" if failed else "active"
            pairs.append({"Requester": key(a), "Accepter": key(b), "Groups": ["blue"],
                          "State": state, "Detail": detail})  # fmt: skip
    return {
        "Groups": {"blue": [key(n) for n in names]},
        "Vpcs": [{"VpcId": f"vpc-{n}", "AccountId": a, "Region": r, "Name": n}
                 for n, (a, r) in VPCS.items()],
        "Pairs": pairs,
        "Failed": [{"Pair": f"{p['Requester']} ~ {p['Accepter']}", "Error": "RouteConflict",
                    "Cause": "rtb-1 already routes"} for p in pairs if p["State"] == "failed"],
    }  # fmt: skip


def cubic(d: str, t: float) -> tuple[float, float]:
    x1, y1, c1x, c1y, c2x, c2y, x2, y2 = map(float, re.findall(r"-?\d+(?:\.\d+)?", d))
    u = 1 - t
    return (
        u**3 * x1 + 3 * u * u * t * c1x + 3 * u * t * t * c2x + t**3 * x2,
        u**3 * y1 + 3 * u * u * t * c1y + 3 * u * t * t * c2y + t**3 * y2,
    )


def test_every_edge_has_its_own_path_from_card_side_to_card_side_across_no_other_card() -> None:
    # Given the newcomer's network: two VPCs of one box paired with the same VPCs elsewhere
    # When the HTML graph is drawn
    page = html_page(NetworkView(status=status(), stack_name="vpc-peering"))
    paths = re.findall(r'<path d="([^"]+)"[^>]*><title>([^<]+)</title>', page)
    cards = {
        vpc: (float(x), float(y))
        for vpc, x, y in re.findall(
            r'<g class="vpc" data-vpc="([^"]+)"><rect x="([\d.]+)" y="([\d.]+)"', page
        )
    }
    boxes = [
        (float(x), float(y))
        for x, y in re.findall(r'<g class="location"><rect x="([\d.]+)" y="([\d.]+)"', page)
    ]

    # Then there is one path for each of the 10 pairs, and no two share their geometry
    assert len(paths) == 10
    assert len({d for d, _ in paths}) == 10
    for d, title in paths:
        ends = re.findall(r"vpc-[\w-]+", title.split(":", 1)[0])
        # and each starts and ends on a side of its own cards, not at their centres
        for end, (px, py) in zip(ends, (cubic(d, 0), cubic(d, 1)), strict=True):
            x, y = cards[end]
            assert px in (x, x + NODE_W), (title, px)
            assert y < py < y + NODE_H
        # and crosses no card (its own included) nor a box's label
        for step in range(1, 50):
            px, py = cubic(d, step / 50)
            for vpc, (x, y) in cards.items():
                assert not (x + 1 < px < x + NODE_W - 1 and y + 1 < py < y + NODE_H - 1), (
                    f"{title} crosses the card of {vpc}"
                )
            for bx, by in boxes:
                assert not (bx + 8 < px < bx + BOX_W - 40 and by + 6 < py < by + 26), (
                    f"{title} crosses the label of the box at {bx},{by}"
                )


def test_each_failure_is_listed_once_with_its_cause() -> None:
    page = html_page(NetworkView(status=status(), stack_name="vpc-peering"))
    assert page.count("rtb-1 already routes") == 4
    assert "Not read or not valid" not in page
