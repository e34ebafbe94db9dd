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
from .views import STATES, vpc_key

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
        edges.append(Edge(str(pair.get("Requester")), str(pair.get("Accepter")), state, label))
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


def html_page(view: NetworkView) -> str:
    """One file: a title, an SVG (locations as boxes, VPCs inside, pairs as lines), a legend,
    the failures, and a table of every VPC. Everything from AWS is escaped."""
    nodes, edges = model(view)
    locations = _locations(nodes)
    per_row = max(1, min(3, math.ceil(math.sqrt(len(locations) or 1))))
    heights = {loc: PAD * 2 + 24 + len(m) * (NODE_H + GAP) for loc, m in locations.items()}
    row_height = max(heights.values(), default=100)
    centre: dict[str, tuple[float, float]] = {}
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
            centre[n.key] = (nx + NODE_W / 2, ny + NODE_H / 2)
            where[n.key] = (account, region)
            name = html.escape(safe(n.name)) if n.name else "&#160;"
            boxes.append(
                f'<g class="vpc" data-vpc="{html.escape(n.vpc_id)}"><rect x="{nx}" y="{ny}" '
                f'width="{NODE_W}" height="{NODE_H}" rx="6"/>'
                f'<text x="{nx + 8}" y="{ny + 18}" class="id">{html.escape(safe(n.vpc_id))}</text>'
                f'<text x="{nx + 8}" y="{ny + 36}" class="name">{name}</text></g>'
            )
    lines = []
    for e in edges:
        if e.a not in centre or e.b not in centre:
            continue
        (x1, y1), (x2, y2) = centre[e.a], centre[e.b]
        dash = ' stroke-dasharray="6 4"' if e.state in ("missing", "pending") else ""
        title = html.escape(safe(f"{e.a} ~ {e.b}: {e.state} {e.label}"))
        if where[e.a] == where[e.b]:
            # Two VPCs of one account and region: an arc beside the box's column of VPCs.
            x1 = x2 = x1 - NODE_W / 2
            bend = x1 - 30 - abs(y2 - y1) / 4
            shape = f'path d="M {x1} {y1} Q {bend} {(y1 + y2) / 2} {x2} {y2}" fill="none"'
        else:
            shape = f'line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}"'
        tag = shape.split(" ", 1)[0]
        lines.append(
            f'<{shape} stroke="{COLOURS.get(e.state, "#000")}" stroke-width="3"{dash}>'
            f"<title>{title}</title></{tag}>"
        )
    width = PAD * 2 + 40 + per_row * (BOX_W + 80)
    height = PAD * 2 + math.ceil(len(locations) / per_row) * (row_height + 40)
    legend = "".join(
        f'<li><span class="swatch" style="background:{COLOURS[s]}"></span>'
        f"{html.escape(meaning)}</li>"
        for s, (_, meaning) in STATES.items()
    )
    problems = "".join(
        f"<li>{html.escape(safe(f'{e.a} ~ {e.b}'))}: "
        f"{html.escape(safe(e.state + ' ' + e.label))}</li>"
        for e in edges
        if e.state not in ("active",)
    )
    failed = "".join(
        f"<li>{html.escape(safe(f.get('Location') or f.get('Vpc') or f.get('Pair') or ''))}: "
        f"{html.escape(safe(f.get('Error')))}: {html.escape(safe(f.get('Cause')))}</li>"
        for f in view.status.get("Failed", [])
    )
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
<p>{len(nodes)} VPC(s) in {len(locations)} account and region(s),
{len(edges)} pair(s) or peering(s).</p>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"
 viewBox="0 0 {width} {height}" role="img" aria-label="{title}">
{"".join(frames)}
<g class="edges">{"".join(lines)}</g>
{"".join(boxes)}
</svg>
<ul class="legend">{legend}</ul>
<h2>Not active</h2><ul class="problems">{problems or "<li>none</li>"}</ul>
<h2>Not read or not valid</h2><ul class="failed">{failed or "<li>none</li>"}</ul>
<h2>VPCs</h2><table><tr><th>VPC</th><th>Name</th><th>Account</th><th>Region</th></tr>{rows}</table>
</body></html>
"""


def render_graph(view: NetworkView, fmt: str) -> str:
    return {"mermaid": mermaid, "dot": dot, "html": html_page}[fmt](view)
