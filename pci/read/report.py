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
* the level transitions against the previous published month
  (:func:`pci.read.history.level_transitions`): up, down, new and gone, each
  with its count and its partners (the first ``TRANSITIONS_SHOWN``, then
  "… and N more");
* every partner in a table sortable by clicking a column, or on opening with
  ``#sort=<column>`` in the address (``#sort=-<column>`` for descending), e.g.
  ``pci-report-2021-09.html#sort=-pci_score``; its last column is the partner's
  trend, an inline SVG sparkline of its scores over the last 12 months (a gap
  where it has no score) whose tooltip lists the months and scores; it sorts by
  the score's change since the first scored month of those 12.

It reads the published mart like ``explain`` does (the analysts' copy when
present, see :mod:`pci.publish.analyst_copy`). When that copy is out of date (its last
refresh failed after a publication), the page carries a banner saying so and a
line on stderr says it too. A month published with no partners (its latest
publication has ``row_count`` 0) gives a page that says so.

The page is the Jinja2 template ``templates/report.html.j2`` (its parts are the
macros of ``report_parts.html.j2``): this module computes what it shows (counts,
bins, the histogram's coordinates, rows, movers) and the template lays it out.
The template is autoescaped: Jinja2 HTML-escapes every value it prints, after
:func:`_clean` has removed control characters and terminal escape sequences
(:func:`pci.core.terminal.for_terminal`, through which what is printed on the
terminal goes too).

Exit statuses: 0 written; 1 the month was not scored; 2 usage; 4 the warehouse
is being written and has no copy yet.
"""
from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import jinja2

from pci.core import rules
from pci.core.contract import add_months, format_month, parse_month
from pci.core.errors import EXIT_USAGE
from pci.core.rules import Level, Metric
from pci.core.terminal import for_terminal
from pci.read.at_risk import at_risk
from pci.read.at_risk import lines as at_risk_lines
from pci.read.history import HistoryRow, Transitions, histories, level_transitions
from pci.read.mart import Mart, MartUnavailable, MonthNotPublished, stale_warning
from pci.read.published import add_arguments, read_published
from pci.read.scorecard import empty_month_message

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "report.html.j2"  # with its parts, report_parts.html.j2
BIN_WIDTH = 10
MOVERS = 5
TRANSITIONS_SHOWN = 10


@dataclass
class Partner:
    partner_id: str
    name: str
    row: dict
    previous: dict | None
    trend: dict | None = None   # trend(): the sparkline of the last 12 months

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


# --------------------------------------------------------------------------- what the page shows

def _clean(value):
    """What the template prints of every ``{{ value }}``: control characters and terminal
    escape sequences removed (they show as nothing, or as garbage); autoescape then
    HTML-escapes it. Markup (a macro's output) is left as it is."""
    return value if hasattr(value, "__html__") else for_terminal(value)


def _signed(x: Decimal | None) -> str:
    if x is None:
        return "new"
    return f"+{x:.2f}" if x > 0 else f"{x:.2f}"


_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                          undefined=jinja2.StrictUndefined, finalize=_clean,
                          trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
_ENV.filters.update(fmt=format, signed=_signed)  # numbers as Python formats them: {{ x|fmt('.2f') }}


def histogram_bins(scores: list[Decimal]) -> list[tuple[int, int, int]]:
    """(low, high, count) per bin of 10 points; 100 falls in the last bin."""
    n_bins = 100 // BIN_WIDTH
    counts = [0] * n_bins
    for s in scores:
        counts[min(int(s // BIN_WIDTH), n_bins - 1)] += 1
    return [(i * BIN_WIDTH, (i + 1) * BIN_WIDTH, c) for i, c in enumerate(counts)]


def histogram(scores: list[Decimal], levels: list[Level]) -> dict:
    """The histogram's geometry (the template draws it): the grid lines (count, y), the
    bars, the axis and the marks of the levels' minimum scores (level, x)."""
    bins = histogram_bins(scores)
    w, h, left, bottom, top = 560, 260, 36, 30, 20
    plot_w, plot_h = w - left - 10, h - bottom - top
    peak = max(c for _, _, c in bins) or 1
    bw = plot_w / len(bins)
    grid = [(i, top + plot_h - plot_h * i / peak) for i in range(peak + 1)
            if not (peak > 8 and i % max(1, peak // 4))]
    bars = []
    for i, (lo, hi, c) in enumerate(bins):
        bh = plot_h * c / peak
        x = left + i * bw + 2
        bars.append({"lo": lo, "hi": hi, "count": c, "x": x, "y": top + plot_h - bh,
                     "width": bw - 4, "height": bh, "label_x": x + (bw - 4) / 2,
                     "tick_x": left + i * bw})
    marks = [(lv, left + plot_w * float(lv.min_score) / 100) for lv in levels if lv.min_score > 0]
    return {"width": w, "height": h, "left": left, "right": w - 10, "top": top,
            "bottom": top + plot_h, "axis_y": h - 12, "end_x": left + plot_w,
            "grid": grid, "bars": bars, "marks": marks}


LEVEL_COLORS = {"gold": "#c9a227", "silver": "#8a939c", "none": "#d5d9de"}


def level_counts(partners: list[Partner], levels: list[Level], have_prev: bool) -> list[dict]:
    """Per level: partners, share (%), change against the same partners' levels in the
    previous month, and its segment (x, width) of the 520-pixel bar."""
    total = len(partners)
    x, out = 0.0, []
    for lv in levels:
        n = sum(p.row["competency_level"] == lv.name for p in partners)
        before = sum(bool(p.previous) and p.previous["competency_level"] == lv.name for p in partners)
        width = 520 * n / total if total else 0
        out.append({"level": lv, "count": n, "share": 100 * n / total if total else None,
                    "change": n - before if have_prev else None, "x": x, "width": width,
                    "color": LEVEL_COLORS.get(lv.name, "#2f6fb3")})
        x += width
    return out


def _threshold(m: Metric) -> str:
    return (f"${m.threshold:,.0f}" if m.key == "net_new_revenue" else
            f"{float(m.threshold) * 100:.0f}%" if m.key == "mau_growth" else
            f"{m.threshold.normalize():f}")


def attainment_rows(partners: list[Partner], metrics: list[Metric]) -> list[dict]:
    """Per metric: partners at full points (and their share, %), at 0, the average points
    (None for a month with no partners) and the width of its bar (of 120 pixels)."""
    n = len(partners)
    out = []
    for m in metrics:
        pts = [p.row[m.points_column] for p in partners]
        full = sum(x >= m.max_points for x in pts)
        average = sum(pts, Decimal(0)) / n if n else None
        out.append({"metric": m, "threshold": _threshold(m), "full": full,
                    "zero": sum(x <= 0 for x in pts), "n": n,
                    "share": 100 * full / n if n else None, "average": average,
                    "bar": 120 * float(average / m.max_points) if n else None})
    return out


def movers(partners: list[Partner], n: int = MOVERS) -> tuple[list[Partner], list[Partner]]:
    """Up to ``n`` biggest rises and falls of score (partners scored in both months)."""
    both = [p for p in partners if p.previous is not None]
    up = sorted((p for p in both if p.delta > 0), key=lambda p: (-p.delta, p.partner_id))[:n]
    down = sorted((p for p in both if p.delta < 0), key=lambda p: (p.delta, p.partner_id))[:n]
    return up, down


def movers_notes(partners: list[Partner], gone: list[str]) -> str:
    """'new this month (1): P1006; no longer scored (2): …', or ''."""
    new = [p.partner_id for p in partners if p.previous is None]
    notes = []
    if new:
        notes.append(f'new this month ({len(new)}): {", ".join(new)}')
    if gone:
        notes.append(f'no longer scored ({len(gone)}): {", ".join(gone)}')
    return "; ".join(notes)


TRANSITION_TITLES = {"up": "up a level", "down": "down a level",
                     "new": "new (not scored in {previous})", "gone": "gone (not scored in {month})"}


def transition_rows(t: Transitions, shown: int | None = None) -> list[dict]:
    """Per kind (up, down, new, gone): its title, count, the changes and their counts
    (up / down), the partners shown and how many more there are."""
    shown = TRANSITIONS_SHOWN if shown is None else shown
    out = []
    for kind in t.KINDS:
        moves = t.of(kind)
        title = TRANSITION_TITLES[kind].format(
            previous=format_month(t.previous) if t.previous else "", month=format_month(t.month))
        out.append({"kind": kind, "title": title, "count": len(moves),
                    "pairs": t.pairs(kind) if kind in ("up", "down") else [],
                    "shown": moves[:shown], "more": max(len(moves) - shown, 0)})
    return out


def trend(partner_id: str, name: str, history: list[HistoryRow]) -> dict:
    """The trend sparkline's geometry (80 × 24 pixels, 0…100 points): the runs of
    consecutive scored months as polylines, every scored month as a dot, the tooltip
    (partner, then one line per month) and the value it sorts by (the score's change
    since the first scored month of the window; None with fewer than two)."""
    w, h, pad = 80, 24, 3
    step = (w - 2 * pad) / max(len(history) - 1, 1)
    runs, dots, run = [], [], []
    for i, r in enumerate(history):
        if r.gap:
            run = []
            continue
        x, y = pad + i * step, pad + (h - 2 * pad) * (1 - float(r.score) / 100)
        dots.append((x, y, r.level))
        if not run:
            runs.append(run)
        run.append(f"{x:.1f},{y:.1f}")
    scored = [r for r in history if not r.gap]
    title = "\n".join([f"{partner_id} {name}".strip() + f": the last {len(history)} months",
                       *(r.text() for r in history)])
    change = scored[-1].score - scored[0].score if len(scored) > 1 else None
    return {"width": w, "height": h, "lines": [" ".join(r) for r in runs if len(r) > 1],
            "dots": dots, "title": title, "change": change}


#: column headers of the points in the partners table (the full label is in the attainment table)
SHORT = {"net_new_revenue": "revenue", "net_customer_adds": "customer adds",
         "functional_consultants": "consultants", "developers": "developers",
         "new_deployments": "deployments", "mau_growth": "MAU growth"}
LEVEL_RANK = {"gold": 2, "silver": 1, "none": 0}


def partner_columns(metrics: list[Metric]) -> list[tuple[str, str, str]]:
    """The partners table's columns: (column, header, class)."""
    return [("partner_id", "partner", "l"), ("partner_name", "name", "l"),
            ("pci_score", "score", ""), ("competency_level", "level", "l"),
            *[(m.points_column, SHORT.get(m.key, m.label), "") for m in metrics],
            ("delta", "change", ""), ("trend", "trend", "l")]


def cards(partners: list[Partner], have_prev: bool) -> list[tuple[str, str, str]]:
    """The summary cards: (title, value, detail)."""
    n = len(partners)
    avg = sum((p.score for p in partners), Decimal(0)) / n if n else None
    prev = [p.previous for p in partners if p.previous]
    out = [("partners scored", f"{n}", ""),
           ("average score", "—" if avg is None else f"{avg:.2f}",
            f"previous month, same partners: {sum(r['pci_score'] for r in prev) / len(prev):.2f}"
            if have_prev and prev else "")]
    for lv in ("gold", "silver"):
        k = sum(p.row["competency_level"] == lv for p in partners)
        out.append((lv, f"{k}", f"{100 * k / n:.0f}% of partners" if n else ""))
    return out


def render(partners: list[Partner], month: dt.date, prev_month: dt.date, have_prev: bool,
           gone: list[str], metrics: list[Metric], levels: list[Level], source: str,
           stale: str | None = None, empty: str | None = None,
           transitions: Transitions | None = None, risks: list | None = None) -> str:
    """The page. ``stale``: the warning that the copy read is out of date; ``empty``:
    the month is published with no partners (what to say about it); ``transitions``:
    the month's level transitions (:func:`pci.read.history.level_transitions`); ``risks``:
    the partners projected below their level next month (:func:`pci.read.at_risk.at_risk`;
    None: no projection was published with the month)."""
    complete = sum(bool(p.row["window_complete"]) for p in partners)
    subtitle = (f"{len(partners)} partners scored for {format_month(month)}; "
                f"{complete} with a complete 13-month window.")
    if empty:
        subtitle = f"No partners scored for {format_month(month)}: it is published with no partners."
    up, down = movers(partners)
    return _ENV.get_template(TEMPLATE).render(
        month=format_month(month), previous=format_month(prev_month), subtitle=subtitle,
        stale=stale, empty=empty, cards=cards(partners, have_prev),
        histogram=histogram([p.score for p in partners], levels),
        levels=level_counts(partners, levels, have_prev), have_prev=have_prev,
        attainment=attainment_rows(partners, metrics),
        movers_up=up, movers_down=down, movers_notes=movers_notes(partners, gone),
        transitions=transitions, transition_rows=transition_rows(transitions) if transitions else [],
        transitions_previous=format_month(transitions.previous) if transitions and transitions.previous
        else None, level_colors=LEVEL_COLORS,
        risks=None if risks is None else [(r, at_risk_lines(r, month)) for r in risks],
        projected=format_month(add_months(month, 1)),
        columns=partner_columns(metrics), metrics=metrics, level_rank=LEVEL_RANK,
        partners=sorted(partners, key=lambda p: (-p.score, p.partner_id)),
        generated=f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M}", source=source,
        bands=", ".join(f"{lv.name} ≥ {lv.min_score:g}" for lv in levels if lv.min_score > 0))


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
    trends = histories(mart, month, [p.partner_id for p in partners])
    for p in partners:
        p.trend = trend(p.partner_id, p.name, trends[p.partner_id])
    try:
        risks = at_risk(mart, month)
    except MonthNotPublished:  # no projection published with the month
        risks = None
    page = render(partners, month, prev_month, have_prev, gone, rules.metrics(), rules.levels(),
                  f"{mart.kind} {mart.path.name}", stale, empty, level_transitions(mart, month), risks)
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
                        help="the warehouse DuckDB file (its analyst copy is read when present), "
                             "or with --engine spark a Spark warehouse folder")
    parser.add_argument("--month", required=True, help="score month, YYYY-MM")
    parser.add_argument("--out", required=True, type=Path, help="folder to write the page into")
    add_arguments(parser)


def command(args) -> int:
    try:
        month = parse_month(args.month)
    except ValueError as exc:
        print(f"error: --month: {for_terminal(exc)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        written = read_published(args.warehouse, args.source, month,
                                 lambda mart: write_report_for(mart, month, args.out), args.engine)
    except MartUnavailable as exc:
        print(f"error: {for_terminal(exc)}", file=sys.stderr)
        return exc.exit_status
    if written.stale:
        print(f"warning: {for_terminal(written.stale)}", file=sys.stderr)
    if written.empty:
        print(f"note: {for_terminal(written.empty)}", file=sys.stderr)
    print(for_terminal(written.path))
    return 0
