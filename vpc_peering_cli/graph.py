"""``graph``: the network as a picture. Each VPC by its id and Name tag, grouped by account and
region; each pair a group wants, and each peering made by an explicit create, as an edge
coloured by its state; failures named on their edge. Three formats: Mermaid and Graphviz DOT
(text to paste or render elsewhere) and HTML (one self-contained file: inline SVG and CSS, no
script, nothing fetched, so it opens from disk anywhere)."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

from .network import NetworkView
from .render import safe
from .views import STATES, failure_sections, failure_subject, vpc_key

#: Edge colours by state (the legend says them in words too).
COLOURS = {
    "active": "#2e7d32",
    "pending": "#f9a825",
    "missing": "#9e9e9e",
    "repair": "#ef6c00",
    "failed": "#c62828",
    "refused": "#6a1b9a",
}
FORMATS = ("mermaid", "dot", "html")


@dataclass(frozen=True)
class Node:
    key: str
    vpc_id: str
    name: str
    account: str
    region: str


@dataclass(frozen=True)
class Edge:
    a: str
    b: str
    state: str
    label: str
    #: A failed or refused pair's error and cause.
    detail: str = ""


def model(view: NetworkView) -> tuple[list[Node], list[Edge]]:
    """The VPCs and edges to draw, from the status."""
    status = view.status
    nodes: dict[str, Node] = {}

    def add(vpc: dict[str, Any]) -> str:
        key = vpc_key(vpc)
        if key not in nodes or (vpc.get("Name") and not nodes[key].name):
            nodes[key] = Node(
                key, str(vpc.get("VpcId")), str(vpc.get("Name") or ""),
                str(vpc.get("AccountId")), str(vpc.get("Region")),
            )  # fmt: skip
        return key

    for vpc in status.get("Vpcs", []):
        add(vpc)
    edges = []
    for pair in status.get("Pairs", []):
        state = str(pair.get("State"))
        label = ",".join(pair.get("Groups", []))
        if state in ("failed", "refused") and pair.get("Detail"):
            label += f": {str(pair['Detail']).split(':', 1)[0]}"
        detail = str(pair.get("Detail") or "") if state in ("failed", "refused") else ""
        edges.append(
            Edge(str(pair.get("Requester")), str(pair.get("Accepter")), state, label, detail)
        )
    for peering in status.get("Peerings", []):
        if peering.get("Group"):
            continue  # drawn as its group's pair
        a, b = add(peering.get("Requester", {})), add(peering.get("Accepter", {}))
        state = "active" if peering.get("Status") == "active" else "pending"
        edges.append(Edge(a, b, state, f"{peering.get('VpcPeeringConnectionId')} (explicit)"))
    for edge in edges:
        for key in (edge.a, edge.b):
            if key not in nodes:
                vpc_id, _, rest = key.partition(" (")
                account, _, region = rest.rstrip(")").partition(" ")
                nodes[key] = Node(key, vpc_id, "", account, region)
    ordered = sorted(nodes.values(), key=lambda n: (n.account, n.region, n.vpc_id))
    return ordered, edges


def _locations(nodes: list[Node]) -> dict[tuple[str, str], list[Node]]:
    found: dict[tuple[str, str], list[Node]] = {}
    for node in nodes:
        found.setdefault((node.account, node.region), []).append(node)
    return found


# ----------------------------------------------------------------------------------- Mermaid
def _mermaid_text(text: str) -> str:
    escaped = safe(text)
    for char, entity in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        escaped = escaped.replace(char, entity)
    return escaped


def mermaid(view: NetworkView) -> str:
    nodes, edges = model(view)
    ids = {n.key: f"v{i}" for i, n in enumerate(nodes)}
    lines = ["flowchart LR"]
    for index, ((account, region), members) in enumerate(_locations(nodes).items()):
        lines.append(f'  subgraph loc{index}["{_mermaid_text(f"{account} {region}")}"]')
        for n in members:
            label = n.vpc_id + (f"<br/>{_mermaid_text(n.name)}" if n.name else "")
            lines.append(f'    {ids[n.key]}["{label}"]')
        lines.append("  end")
    for e in edges:
        arrow = "-.-" if e.state in ("missing", "pending") else "---"
        label = _mermaid_text(f"{e.state} {e.label}".strip())
        lines.append(f'  {ids[e.a]} {arrow}|"{label}"| {ids[e.b]}')
    for index, e in enumerate(edges):
        lines.append(f"  linkStyle {index} stroke:{COLOURS.get(e.state, '#000')},stroke-width:2px")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------- DOT
def _dot_text(text: str) -> str:
    return safe(text).replace("\\", "\\\\").replace('"', '\\"')


def dot(view: NetworkView) -> str:
    nodes, edges = model(view)
    lines = ["graph network {", "  rankdir=LR;", '  node [shape=box, fontname="sans-serif"];']
    for index, ((account, region), members) in enumerate(_locations(nodes).items()):
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f'    label="{_dot_text(f"{account} {region}")}";')
        for n in members:
            label = n.vpc_id + (f"\\n{_dot_text(n.name)}" if n.name else "")
            lines.append(f'    "{_dot_text(n.key)}" [label="{label}"];')
        lines.append("  }")
    for e in edges:
        style = "dashed" if e.state in ("missing", "pending") else "solid"
        lines.append(
            f'  "{_dot_text(e.a)}" -- "{_dot_text(e.b)}" [color="{COLOURS.get(e.state, "black")}",'
            f' style={style}, label="{_dot_text(f"{e.state} {e.label}".strip())}"];'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------- HTML
BOX_W, NODE_W, NODE_H, GAP, PAD = 260, 220, 46, 18, 20

type Point = tuple[float, float]


def edge_paths(
    edges: list[Edge], cards: dict[str, Point], where: dict[str, tuple[str, str]]
) -> list[tuple[Edge, str]]:
    """Each edge's SVG path, from a port on a side of one VPC card (its top-left corner in
    ``cards``) to a port on the other's: a curve that leaves and enters horizontally, so it runs
    beside the cards and through the gaps between columns, not across cards or box labels.
    Each edge has a port of its own on each of its two cards (spread along the card's side, in
    the order of the other ends), so no two edges share a path, even two to one VPC from two
    VPCs of one box, or two between the same VPCs."""
    drawn = [e for e in edges if e.a in cards and e.b in cards]
    sides: list[tuple[int, int]] = []  # the side of each end's card: -1 left, +1 right
    for e in drawn:
        ax, bx = cards[e.a][0], cards[e.b][0]
        if where[e.a] == where[e.b]:
            sides.append((-1, -1))  # one box: an arc left of its column of cards
        elif ax == bx:
            sides.append((1, 1))  # one column, two boxes: beside the column, on its right
        else:
            sides.append((1, -1) if ax < bx else (-1, 1))
    users: dict[tuple[str, int], list[tuple[float, float, int, int]]] = {}
    for index, (e, (side_a, side_b)) in enumerate(zip(drawn, sides, strict=True)):
        (ax, ay), (bx, by) = cards[e.a], cards[e.b]
        users.setdefault((e.a, side_a), []).append((by, bx, index, 0))
        users.setdefault((e.b, side_b), []).append((ay, ax, index, 1))
    port: dict[tuple[int, int], Point] = {}
    for (key, side), ends in users.items():
        x, y = cards[key]
        for rank, (_, _, index, end) in enumerate(sorted(ends)):
            port[(index, end)] = (
                x + (NODE_W if side > 0 else 0),
                y + NODE_H * (rank + 1) / (len(ends) + 1),
            )
    paths = []
    for index, (e, (side_a, side_b)) in enumerate(zip(drawn, sides, strict=True)):
        (x1, y1), (x2, y2) = port[(index, 0)], port[(index, 1)]
        if side_a == side_b:  # out and back on one side: a bulge that stays in the gap
            reach = min(60.0, 30 + abs(y2 - y1) / 4)
        else:
            reach = max(30.0, abs(x2 - x1) / 2)
        c1, c2 = x1 + side_a * reach, x2 + side_b * reach
        paths.append(
            (e, f"M {x1:.1f} {y1:.1f} C {c1:.1f} {y1:.1f} {c2:.1f} {y2:.1f} {x2:.1f} {y2:.1f}")
        )
    return paths


def html_page(view: NetworkView) -> str:
    """One file: a title, an SVG (locations as boxes, VPCs inside, pairs as lines), a legend,
    the failures, and a table of every VPC. Everything from AWS is escaped."""
    nodes, edges = model(view)
    locations = _locations(nodes)
    per_row = max(1, min(3, math.ceil(math.sqrt(len(locations) or 1))))
    heights = {loc: PAD * 2 + 24 + len(m) * (NODE_H + GAP) for loc, m in locations.items()}
    row_height = max(heights.values(), default=100)
    cards: dict[str, tuple[float, float]] = {}
    where: dict[str, tuple[str, str]] = {}
    frames, boxes = [], []
    for index, ((account, region), members) in enumerate(locations.items()):
        x = PAD + 40 + (index % per_row) * (BOX_W + 80)
        y = PAD + (index // per_row) * (row_height + 40)
        frames.append(
            f'<g class="location"><rect x="{x}" y="{y}" width="{BOX_W}" '
            f'height="{heights[(account, region)]}" rx="8"/>'
            f'<text x="{x + 10}" y="{y + 20}" class="where">'
            f"{html.escape(safe(f'{account} {region}'))}</text></g>"
        )
        for row, n in enumerate(members):
            nx, ny = x + (BOX_W - NODE_W) / 2, y + 34 + row * (NODE_H + GAP)
            cards[n.key] = (nx, ny)
            where[n.key] = (account, region)
            name = html.escape(safe(n.name)) if n.name else "&#160;"
            boxes.append(
                f'<g class="vpc" data-vpc="{html.escape(n.vpc_id)}"><rect x="{nx}" y="{ny}" '
                f'width="{NODE_W}" height="{NODE_H}" rx="6"/>'
                f'<text x="{nx + 8}" y="{ny + 18}" class="id">{html.escape(safe(n.vpc_id))}</text>'
                f'<text x="{nx + 8}" y="{ny + 36}" class="name">{name}</text></g>'
            )
    lines = [
        f'<path d="{d}" fill="none" stroke="{COLOURS.get(e.state, "#000")}" stroke-width="3"'
        + (' stroke-dasharray="6 4"' if e.state in ("missing", "pending") else "")
        + f"><title>{html.escape(safe(f'{e.a} ~ {e.b}: {e.state} {e.label}'))}</title></path>"
        for e, d in edge_paths(edges, cards, where)
    ]
    width = PAD * 2 + 40 + per_row * (BOX_W + 80)
    height = PAD * 2 + math.ceil(len(locations) / per_row) * (row_height + 40)
    legend = "".join(
        f'<li><span class="swatch" style="background:{COLOURS[s]}"></span>'
        f"{html.escape(meaning)}</li>"
        for s, (_, meaning) in STATES.items()
    )
    problems = "".join(
        f"<li>{html.escape(safe(f'{e.a} ~ {e.b}'))}: {html.escape(safe(_problem(e)))}</li>"
        for e in edges
        if e.state not in ("active",)
    )
    failed = "".join(
        f'<h2>{html.escape(heading)}</h2><ul class="failed">'
        + "".join(
            f"<li>{html.escape(safe(failure_subject(f)))}: {html.escape(safe(f.get('Error')))}: "
            f"{html.escape(safe(f.get('Cause')))}</li>"
            for f in failures
        )
        + "</ul>"
        for heading, failures in failure_sections(view.status)
    )
    policy = view.status.get("GroupPolicy")
    if policy:
        failed = f"<h2>Group policy</h2><p>{html.escape(safe(policy))}</p>{failed}"
    outside = "".join(_outside_item(c) for c in view.status.get("NotAdmitted") or [])
    rows = "".join(
        f"<tr><td>{html.escape(safe(n.vpc_id))}</td><td>{html.escape(safe(n.name or '-'))}</td>"
        f"<td>{html.escape(safe(n.account))}</td><td>{html.escape(safe(n.region))}</td></tr>"
        for n in nodes
    )
    title = html.escape(safe(f"VPC peering network of stack {view.stack_name}"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
.location rect {{ fill: #f5f7fa; stroke: #90a4ae; }}
.vpc rect {{ fill: #fff; stroke: #37474f; }}
text {{ font-size: 13px; }} .where {{ font-weight: bold; fill: #455a64; }}
.id {{ font-family: monospace; }} .name {{ fill: #555; }}
.swatch {{ display: inline-block; width: 2em; height: .6em; margin-right: .4em; }}
ul.legend {{ list-style: none; padding: 0; display: flex; gap: 1.5em; flex-wrap: wrap; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .2em .6em; }}
</style></head><body>
<h1>{title}</h1>
<p>{len(nodes)} VPC(s) in {len(locations)} location(s) (account and region),
{len(edges)} pair(s) or peering(s).</p>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"
 viewBox="0 0 {width} {height}" role="img" aria-label="{title}">
{"".join(frames)}
<g class="edges">{"".join(lines)}</g>
{"".join(boxes)}
</svg>
<ul class="legend">{legend}</ul>
<h2>Not active</h2><ul class="problems">{problems or "<li>none</li>"}</ul>
<h2>Tagged into a group, not members</h2><ul class="outside">{outside or "<li>none</li>"}</ul>
{failed}
<h2>VPCs</h2><table><tr><th>VPC</th><th>Name</th><th>Account</th><th>Region</th></tr>{rows}</table>
</body></html>
"""


def _problem(edge: Edge) -> str:
    """A pair that is not active: its state, groups, and the error with its cause if any."""
    if edge.detail:
        return f"{edge.state} {edge.label.split(':', 1)[0]}: {edge.detail}"
    return f"{edge.state} {edge.label}"


def _outside_item(candidate: dict[str, Any]) -> str:
    """A VPC tagged into a group that does not admit it, and why."""
    name = f" {candidate['Name']}" if candidate.get("Name") else ""
    why = f" ({candidate['Cause']})" if candidate.get("Cause") else ""
    said = f"{vpc_key(candidate)}{name} in group {candidate.get('Group')}: "
    return f"<li>{html.escape(safe(said + str(candidate.get('State')) + why))}</li>"


def render_graph(view: NetworkView, fmt: str) -> str:
    return {"mermaid": mermaid, "dot": dot, "html": html_page}[fmt](view)
