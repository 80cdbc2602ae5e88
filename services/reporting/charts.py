"""Server-rendered SVG bar charts (no script, no external asset): accessible (role img, <title> and
<desc>), scaled to their container (viewBox, width 100%), each with a text fallback (a table)."""

from __future__ import annotations

import uuid

from markupsafe import Markup, escape

WIDTH, BAR, GAP, LABEL = 600, 22, 8, 170


def bar_chart(title: str, desc: str, bars: list[tuple[str, int | None, str]], label: str, value_label: str) -> Markup:
    """One horizontal bar per (label, value or None when suppressed, the value as shown)."""
    ident = "c" + uuid.uuid4().hex[:8]
    top = max((v for _, v, _ in bars if v), default=0)
    height = max(1, len(bars)) * (BAR + GAP) + GAP
    rows = []
    for i, (name, value, text) in enumerate(bars):
        y = GAP + i * (BAR + GAP)
        width = 0 if not value or not top else max(2, round((WIDTH - LABEL - 70) * value / top))
        pattern = "" if value is not None else ' fill-opacity="0.25" stroke="#1f5fa8" stroke-dasharray="3 2"'
        bar_width = width if value is not None else 30
        rows.append(
            f'<g><text x="{LABEL - 6}" y="{y + BAR * 0.7:.0f}" text-anchor="end">{escape(name)}</text>'
            f'<rect x="{LABEL}" y="{y}" width="{bar_width}" height="{BAR}" fill="#1f5fa8"{pattern}/>'
            f'<text x="{LABEL + bar_width + 6}" y="{y + BAR * 0.7:.0f}">{escape(text)}</text></g>'
        )
    fallback = "".join(f"<tr><td>{escape(n)}</td><td>{escape(t)}</td></tr>" for n, _, t in bars)
    return Markup(
        f'<figure class="chart"><svg role="img" aria-labelledby="{ident}-t {ident}-d" viewBox="0 0 {WIDTH} {height}"'
        f' width="100%" preserveAspectRatio="xMinYMin meet" font-size="13" font-family="system-ui, sans-serif">'
        f'<title id="{ident}-t">{escape(title)}</title><desc id="{ident}-d">{escape(desc)}</desc>{"".join(rows)}</svg>'
        f'<figcaption>{escape(title)}</figcaption>'
        f'<details><summary>{escape(desc)}</summary><table><thead><tr><th scope="col">{escape(label)}</th>'
        f'<th scope="col">{escape(value_label)}</th></tr></thead><tbody>{fallback}</tbody></table></details></figure>'
    )
