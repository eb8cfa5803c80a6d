"""`python -m pci report`: one self-contained HTML page about one score month.

The page (``<out>/pci-report-YYYY-MM.html``) needs nothing at view time: its
CSS, the small sorting script and the charts (inline SVG) are in the file, and
it references no other file or address. It shows

* the number of partners, the average score and the partners per level, with
  the change against the previous month;
* the score distribution (a histogram in bins of 10 points, with the silver and
  gold minimum scores marked);
* attainment per metric: partners at full points (share), average points, partners at 0;
* the biggest movers against the previous score month (up to 5 up and 5 down
  by score change; partners new this month are counted apart);
* every partner in a table sortable by clicking a column, or on opening with
  ``#sort=<column>`` in the address (``#sort=-<column>`` for descending), e.g.
  ``pci-report-2021-09.html#sort=-pci_score``.

It reads the published mart like ``explain`` does (the analysts' copy when
present, see :mod:`pci.analyst_copy`). When that copy is out of date (its last
refresh failed after a publication), the page carries a banner saying so and a
line on stderr says it too. A month published with no partners (its latest
publication has ``row_count`` 0) gives a page that says so. Every value from
the data is HTML-escaped in the page (:func:`e`), and what is printed on the
terminal goes through :func:`pci.terminal.for_terminal`.

Exit statuses: 0 written; 1 the month was not scored; 2 usage; 4 the warehouse
is being written and has no copy yet.
"""
from __future__ import annotations

import datetime as dt
import html
import string
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from pci import rules
from pci.analyst_copy import (EXIT_USAGE, Mart, MartUnavailable,
                              MonthNotPublished, read_mart, stale_warning)
from pci.contract import add_months, format_month, parse_month
from pci.explain import empty_month_message
from pci.rules import Level, Metric
from pci.terminal import for_terminal

TEMPLATE = Path(__file__).resolve().parent / "templates" / "report.html"
BIN_WIDTH = 10
MOVERS = 5


@dataclass
class Partner:
    partner_id: str
    name: str
    row: dict
    previous: dict | None

    @property
    def score(self) -> Decimal:
        return self.row["pci_score"]

    @property
    def delta(self) -> Decimal | None:
        return None if self.previous is None else self.score - self.previous["pci_score"]


def _rows(mart: Mart, month: dt.date) -> dict[str, dict]:
    cur = mart.con.execute("SELECT * FROM main.pci_monthly_scores WHERE score_month = ? "
                           "ORDER BY partner_id", [month])
    cols = [d[0] for d in cur.description]
    return {r[1]: dict(zip(cols, r)) for r in cur.fetchall()}


def load(mart: Mart, month: dt.date) -> tuple[list[Partner], dt.date, bool, list[str]]:
    """The month's partners with their previous-month rows; (partners, previous month,
    previous month scored?, partners no longer scored). No partners for a month
    published with none; :class:`MonthNotPublished` for a month not published."""
    rows = _rows(mart, month)
    if not rows and month not in mart.empty_months():
        raise MonthNotPublished(f"month {format_month(month)} was not scored: the published score "
                                f"months are {', '.join(mart.score_months()) or 'none'}")
    prev_month = add_months(month, -1)
    prev = _rows(mart, prev_month)
    names = mart.partner_names(month)
    partners = [Partner(p, names.get(p, ""), r, prev.get(p)) for p, r in rows.items()]
    return partners, prev_month, bool(prev), sorted(set(prev) - set(rows))


# --------------------------------------------------------------------------- pieces

def e(x) -> str:
    """A value for the page: HTML-escaped (quotes too), control characters and terminal
    escape sequences removed (they show as nothing, or as garbage)."""
    return html.escape(for_terminal(x), quote=True)


def _num(x, places: int = 2) -> str:
    return f"{x:,.{places}f}"


def _signed(x: Decimal | None) -> str:
    if x is None:
        return "new"
    return f"+{x:.2f}" if x > 0 else f"{x:.2f}"


def _level_badge(level: str | None) -> str:
    if level is None:
        return "—"
    return f'<span class="lvl lvl-{e(level)}">{e(level)}</span>'


def histogram_bins(scores: list[Decimal]) -> list[tuple[int, int, int]]:
    """(low, high, count) per bin of 10 points; 100 falls in the last bin."""
    n_bins = 100 // BIN_WIDTH
    counts = [0] * n_bins
    for s in scores:
        counts[min(int(s // BIN_WIDTH), n_bins - 1)] += 1
    return [(i * BIN_WIDTH, (i + 1) * BIN_WIDTH, c) for i, c in enumerate(counts)]


def histogram_svg(scores: list[Decimal], levels: list[Level]) -> str:
    bins = histogram_bins(scores)
    w, h, left, bottom, top = 560, 260, 36, 30, 20
    plot_w, plot_h = w - left - 10, h - bottom - top
    peak = max(c for _, _, c in bins) or 1
    bw = plot_w / len(bins)
    parts = [f'<svg id="histogram" viewBox="0 0 {w} {h}" '
             f'width="{w}" height="{h}" role="img" aria-label="Score distribution">']
    for i in range(peak + 1):
        if peak > 8 and i % max(1, peak // 4):
            continue
        y = top + plot_h - plot_h * i / peak
        parts.append(f'<line x1="{left}" x2="{w - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e7eb"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{i}</text>')
    for i, (lo, hi, c) in enumerate(bins):
        bh = plot_h * c / peak
        x, y = left + i * bw + 2, top + plot_h - bh
        parts.append(
            f'<rect class="bin" data-bin="{lo}-{hi}" data-count="{c}" x="{x:.1f}" y="{y:.1f}" '
            f'width="{bw - 4:.1f}" height="{bh:.1f}" fill="#2f6fb3"><title>{lo}–{hi}: {c} '
            f'partner{"" if c == 1 else "s"}</title></rect>')
        if c:
            parts.append(f'<text x="{x + (bw - 4) / 2:.1f}" y="{y - 4:.1f}" '
                         f'text-anchor="middle">{c}</text>')
        parts.append(f'<text x="{left + i * bw:.1f}" y="{h - 12}" text-anchor="middle">{lo}</text>')
    parts.append(f'<text x="{left + plot_w:.1f}" y="{h - 12}" text-anchor="middle">100</text>')
    for lv in levels:
        if lv.min_score <= 0:
            continue
        x = left + plot_w * float(lv.min_score) / 100
        parts.append(f'<line class="level-mark" data-level="{e(lv.name)}" x1="{x:.1f}" x2="{x:.1f}" '
                     f'y1="{top - 8}" y2="{top + plot_h}" stroke="#c9a227" stroke-dasharray="4 3"/>'
                     f'<text x="{x + 4:.1f}" y="{top - 8}">{e(lv.name)} ≥ {lv.min_score:.0f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def levels_html(partners: list[Partner], levels: list[Level], have_prev: bool) -> str:
    total = len(partners)
    counts = {lv.name: sum(p.row["competency_level"] == lv.name for p in partners) for lv in levels}
    prev = {lv.name: sum(bool(p.previous) and p.previous["competency_level"] == lv.name
                         for p in partners) for lv in levels}
    colors = {"gold": "#c9a227", "silver": "#8a939c", "none": "#d5d9de"}
    x, bar = 0.0, []
    for lv in levels:
        width = 520 * counts[lv.name] / total if total else 0
        if width:
            bar.append(f'<rect x="{x:.1f}" y="0" width="{width:.1f}" height="28" '
                       f'fill="{colors.get(lv.name, "#2f6fb3")}"><title>{e(lv.name)}: '
                       f'{counts[lv.name]}</title></rect>')
        x += width
    rows = []
    for lv in levels:
        n = counts[lv.name]
        change = ""
        if have_prev:
            d = n - prev[lv.name]
            change = f'<td class="{"up" if d > 0 else "down" if d < 0 else ""}">{d:+d}</td>'
        rows.append(f'<tr data-level="{e(lv.name)}"><td class="l">{_level_badge(lv.name)}</td>'
                    f'<td>≥ {lv.min_score:.0f}</td><td data-col="count">{n}</td>'
                    f'<td>{f"{100 * n / total:.1f}%" if total else "—"}</td>{change}</tr>')
    head = "<th>change¹</th>" if have_prev else ""
    note = ('<p class="sub">¹ against the same partners\' levels in the previous month</p>'
            if have_prev else "")
    return (f'<svg viewBox="0 0 520 28" width="520" height="28">'
            f'{"".join(bar)}</svg><table id="level-counts"><thead><tr><th class="l">level</th>'
            f'<th>min score</th><th>partners</th><th>share</th>{head}</tr></thead><tbody>'
            f'{"".join(rows)}</tbody></table>{note}')


def attainment_rows(partners: list[Partner], metrics: list[Metric]) -> list[dict]:
    n = len(partners)
    out = []
    for m in metrics:
        pts = [p.row[m.points_column] for p in partners]
        out.append({"metric": m, "full": sum(x >= m.max_points for x in pts),
                    "zero": sum(x <= 0 for x in pts), "n": n,
                    "average": sum(pts, Decimal(0)) / n if n else None})
    return out


def attainment_html(partners: list[Partner], metrics: list[Metric]) -> str:
    rows = []
    for a in attainment_rows(partners, metrics):
        m = a["metric"]
        thr = (f"${m.threshold:,.0f}" if m.key == "net_new_revenue" else
               f"{float(m.threshold) * 100:.0f}%" if m.key == "mau_growth" else
               f"{m.threshold.normalize():f}")
        if not a["n"]:  # a month published with no partners
            rows.append(f'<tr data-metric="{e(m.key)}"><td class="l">{m.number}. {e(m.label)}</td>'
                        f'<td>{e(thr)}</td><td>{m.max_points:.0f}</td><td data-col="full">0</td>'
                        f'<td data-col="full_share">—</td><td data-col="average">—</td>'
                        f'<td data-col="zero">0</td></tr>')
            continue
        share = 100 * a["full"] / a["n"]
        bar = 120 * float(a["average"] / m.max_points)
        rows.append(
            f'<tr data-metric="{e(m.key)}"><td class="l">{m.number}. {e(m.label)}</td>'
            f'<td>{e(thr)}</td><td>{m.max_points:.0f}</td>'
            f'<td data-col="full">{a["full"]}</td><td data-col="full_share">{share:.1f}%</td>'
            f'<td data-col="average">{a["average"]:.2f}<span class="bartrack">'
            f'<span class="bar" style="width:{bar:.0f}px"></span></span></td>'
            f'<td data-col="zero">{a["zero"]}</td></tr>')
    return ('<table id="attainment-table"><thead><tr><th class="l">metric</th><th>threshold</th>'
            '<th>max points</th><th>at full points</th><th>share at full points</th>'
            '<th>average points</th><th>at 0 points</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def movers(partners: list[Partner], n: int = MOVERS) -> tuple[list[Partner], list[Partner]]:
    """Up to ``n`` biggest rises and falls of score (partners scored in both months)."""
    both = [p for p in partners if p.previous is not None]
    up = sorted((p for p in both if p.delta > 0), key=lambda p: (-p.delta, p.partner_id))[:n]
    down = sorted((p for p in both if p.delta < 0), key=lambda p: (p.delta, p.partner_id))[:n]
    return up, down


def movers_html(partners: list[Partner], prev_month: dt.date, have_prev: bool,
                gone: list[str]) -> str:
    if not have_prev:
        return f'<p class="sub">{format_month(prev_month)} was not scored: no comparison.</p>'
    up, down = movers(partners)

    def table(title: str, items: list[Partner], ident: str) -> str:
        if not items:
            return f'<h3>{title}</h3><p class="sub" id="{ident}">none</p>'
        rows = "".join(
            f'<tr data-partner="{e(p.partner_id)}"><td class="l">{e(p.partner_id)}</td>'
            f'<td class="l">{e(p.name)}</td><td>{p.previous["pci_score"]:.2f}</td>'
            f'<td>{p.score:.2f}</td><td class="{"up" if p.delta > 0 else "down"}">'
            f'{_signed(p.delta)}</td><td class="l">{_level_badge(p.previous["competency_level"])}'
            f' → {_level_badge(p.row["competency_level"])}</td></tr>' for p in items)
        return (f'<h3>{title}</h3><table id="{ident}"><thead><tr><th class="l">partner</th>'
                f'<th class="l">name</th><th>{format_month(prev_month)}</th><th>score</th>'
                f'<th>change</th><th class="l">level</th></tr></thead><tbody>{rows}</tbody></table>')

    new = [p.partner_id for p in partners if p.previous is None]
    notes = []
    if new:
        notes.append(f'new this month ({len(new)}): {e(", ".join(new))}')
    if gone:
        notes.append(f'no longer scored ({len(gone)}): {e(", ".join(gone))}')
    note = f'<p class="sub" id="movers-notes">{"; ".join(notes)}</p>' if notes else ""
    return f'{table("Up", up, "movers-up")}{table("Down", down, "movers-down")}{note}'


#: column headers of the points in the partners table (the full label is in the attainment table)
SHORT = {"net_new_revenue": "revenue", "net_customer_adds": "customer adds",
         "functional_consultants": "consultants", "developers": "developers",
         "new_deployments": "deployments", "mau_growth": "MAU growth"}
LEVEL_RANK = {"gold": 2, "silver": 1, "none": 0}


def partners_table(partners: list[Partner], metrics: list[Metric]) -> str:
    cols = [("partner_id", "partner", "l"), ("partner_name", "name", "l"),
            ("pci_score", "score", ""), ("competency_level", "level", "l"),
            *[(m.points_column, SHORT.get(m.key, m.label), "") for m in metrics],
            ("delta", "change", "")]
    head = "".join(f'<th data-col="{c}" class="{cls}" title="{e(t)}">{e(t)}</th>'
                   for c, t, cls in cols)
    body = []
    for p in sorted(partners, key=lambda p: (-p.score, p.partner_id)):
        lvl = p.row["competency_level"]
        cells = [f'<td data-col="partner_id" class="l" data-value="{e(p.partner_id)}">{e(p.partner_id)}</td>',
                 f'<td data-col="partner_name" class="l" data-value="{e(p.name)}">{e(p.name)}</td>',
                 f'<td data-col="pci_score" data-value="{p.score}">{p.score:.2f}</td>',
                 f'<td data-col="competency_level" class="l" data-value="{LEVEL_RANK.get(lvl, -1)}">'
                 f'{_level_badge(lvl)}</td>']
        for m in metrics:
            v = p.row[m.points_column]
            cells.append(f'<td data-col="{m.points_column}" data-value="{v}">{v:.2f}</td>')
        d = p.delta
        cls = "up" if d and d > 0 else "down" if d and d < 0 else ""
        cells.append(f'<td data-col="delta" class="{cls}" data-value="{"" if d is None else d}">'
                     f'{_signed(d)}</td>')
        body.append(f'<tr data-partner="{e(p.partner_id)}">{"".join(cells)}</tr>')
    return (f'<div class="scroll"><table id="partners" data-sorted-by="-pci_score"><thead><tr>'
            f'{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')


def cards_html(partners: list[Partner], have_prev: bool) -> str:
    n = len(partners)
    avg = sum((p.score for p in partners), Decimal(0)) / n if n else None
    prev = [p.previous for p in partners if p.previous]
    cards = [("partners scored", f"{n}", ""),
             ("average score", "—" if avg is None else f"{avg:.2f}",
              f"previous month, same partners: {sum(r['pci_score'] for r in prev) / len(prev):.2f}"
              if have_prev and prev else "")]
    for lv in ("gold", "silver"):
        k = sum(p.row["competency_level"] == lv for p in partners)
        cards.append((lv, f"{k}", f"{100 * k / n:.0f}% of partners" if n else ""))
    return "".join(f'<div class="card" data-card="{e(k)}"><div class="k">{e(k)}</div>'
                   f'<div class="v">{e(v)}</div><div class="d">{e(d)}</div></div>'
                   for k, v, d in cards)


def banner_html(stale: str | None = None, empty: str | None = None) -> str:
    """The notices above the page: the copy read is out of date; the month has no partners."""
    parts = []
    if stale:
        parts.append(f'<div class="banner" id="stale-copy" role="alert"><strong>Out of date:</strong> '
                     f'{e(stale)}</div>')
    if empty:
        parts.append(f'<div class="banner info" id="no-partners">{e(empty)}.</div>')
    return "".join(parts)


def render(partners: list[Partner], month: dt.date, prev_month: dt.date, have_prev: bool,
           gone: list[str], metrics: list[Metric], levels: list[Level], source: str,
           stale: str | None = None, empty: str | None = None) -> str:
    """The page. ``stale``: the warning that the copy read is out of date; ``empty``:
    the month is published with no partners (what to say about it)."""
    complete = sum(bool(p.row["window_complete"]) for p in partners)
    subtitle = (f"{len(partners)} partners scored for {format_month(month)}; "
                f"{complete} with a complete 13-month window.")
    if empty:
        subtitle = f"No partners scored for {format_month(month)}: it is published with no partners."
    bands = ", ".join(f"{lv.name} ≥ {lv.min_score:g}" for lv in levels if lv.min_score > 0)
    footer = (f"Generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC from {e(source)}. "
              f"Points: max_points × min(value / threshold, 1); {e(bands)}.")
    return string.Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        month=format_month(month), previous=format_month(prev_month), subtitle=e(subtitle),
        banner=banner_html(stale, empty),
        cards=cards_html(partners, have_prev),
        histogram=histogram_svg([p.score for p in partners], levels),
        levels=levels_html(partners, levels, have_prev),
        attainment=attainment_html(partners, metrics),
        movers=movers_html(partners, prev_month, have_prev, gone),
        table=partners_table(partners, metrics), footer=footer)


@dataclass
class Written:
    """What :func:`write_report` wrote, and what to tell about it."""
    path: Path
    stale: str | None = None    # the copy read is out of date
    empty: str | None = None    # the month is published with no partners


def write_report(mart: Mart, month: dt.date, out_dir: Path) -> Path:
    """Write ``<out_dir>/pci-report-YYYY-MM.html`` and return its path."""
    return write_report_for(mart, month, out_dir).path


def write_report_for(mart: Mart, month: dt.date, out_dir: Path) -> Written:
    """:func:`write_report`, returning the warnings shown on the page too."""
    partners, prev_month, have_prev, gone = load(mart, month)
    stale = stale_warning(mart)
    empty = empty_month_message(mart, month) if not partners else None
    page = render(partners, month, prev_month, have_prev, gone, rules.metrics(), rules.levels(),
                  f"{mart.kind} {mart.path.name}", stale, empty)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"pci-report-{format_month(month)}.html"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return Written(path, stale, empty)


# --------------------------------------------------------------------------- CLI

def configure(parser) -> None:
    parser.add_argument("--warehouse", required=True, type=Path,
                        help="the warehouse DuckDB file (its analyst copy is read when present)")
    parser.add_argument("--month", required=True, help="score month, YYYY-MM")
    parser.add_argument("--out", required=True, type=Path, help="folder to write the page into")
    parser.add_argument("--source", choices=("auto", "copy", "warehouse"), default="auto",
                        help="auto (default): the analyst copy when present, else the warehouse")


def command(args) -> int:
    try:
        month = parse_month(args.month)
    except ValueError as exc:
        print(f"error: --month: {for_terminal(exc)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        written = read_mart(args.warehouse, args.source,
                            lambda mart: write_report_for(mart, month, args.out))
    except MartUnavailable as exc:
        print(f"error: {for_terminal(exc)}", file=sys.stderr)
        return exc.exit_status
    if written.stale:
        print(f"warning: {for_terminal(written.stale)}", file=sys.stderr)
    if written.empty:
        print(f"note: {for_terminal(written.empty)}", file=sys.stderr)
    print(for_terminal(written.path))
    return 0
