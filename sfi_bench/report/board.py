"""The leaderboard as HTML for the top of the report: the Markdown table's content, ranks, footnotes, plots."""

from __future__ import annotations

import html
from pathlib import Path

from sfi_bench.leaderboard import (
    Leaderboard,
    cap_notes,
    clips_scored,
    footnotes,
    format_value,
    mixed_note,
    table_rows,
)

RANK_CLASSES = ("best", "second", "third")


def board_html(board: Leaderboard) -> str:
    """<table id="leaderboard">: one row per (frame count, model), one column per metric."""
    _, notes = footnotes(board)
    capped = {m.name for m in board.metrics if board.at_cap(m)}
    head = "".join(
        f'<th title="{html.escape(m.name)} v{html.escape(m.version)}">{html.escape(m.label)}'
        f"{' †' if m.name in capped else ''}<br><code>{html.escape(m.id)}</code></th>"
        for m in board.metrics
    )
    rows = []
    for group, model, cells in table_rows(board):
        tds = []
        for cell in cells:
            if cell.value is None:
                tds.append(f'<td class="muted">–{f"<sup>{cell.note}</sup>" if cell.note else ""}</td>')
            else:
                css = f' class="{RANK_CLASSES[cell.rank]}"' if cell.rank is not None else ""
                tds.append(f"<td{css}>{format_value(cell.value)}</td>")
        rows.append(
            f"<tr><td>{html.escape(group)}</td><td>{html.escape(model)}</td>"
            f"<td>{clips_scored(board, model, group)}</td>" + "".join(tds) + "</tr>"
        )
    parts = []
    if board.mixed:
        parts.append(f'<p class="warn">{html.escape(mixed_note(board).replace("**", ""))}</p>')
    parts.append(
        '<table id="leaderboard"><tr><th>frames</th><th>model</th><th>clips</th>'
        + head
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )
    legend = (
        "Best <b>bold</b>, second <u>underlined</u>, third <i>italic</i> per frame count; – = not computed."
    )
    parts.append(f'<p class="muted">{legend}</p>')
    notes_html = [f"<li>† {html.escape(note)}</li>" for note in cap_notes(board)]
    notes_html += [f"<li><sup>{n}</sup> {html.escape(reason)}</li>" for reason, n in notes.items()]
    if notes_html:
        parts.append('<ul class="notes">' + "".join(notes_html) + "</ul>")
    return "".join(parts)


def plots_html(plots: list[Path], assets_name: str) -> str:
    """Each SVG plot inline as an <img>, with a link to its PNG."""
    svgs = [p for p in plots if p.suffix == ".svg"]
    figures = [
        f'<figure><img class="plot" src="{assets_name}/plots/{p.name}" alt="{html.escape(p.stem)} plot">'
        f'<figcaption><a href="{assets_name}/plots/{p.stem}.png">PNG</a> · '
        f'<a href="{assets_name}/plots/{p.name}">SVG</a></figcaption></figure>'
        for p in svgs
    ]
    return '<div id="plots">' + "".join(figures) + "</div>"
