"""Jinja2 over reports/templates, autoescaped, and the table-cell format the templates share."""

from __future__ import annotations

import functools
import math
import os

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


def cell(value) -> str:
    """A table cell: floats to 4 places, NaN as a dash."""
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4f}"
    return str(value)


@functools.cache
def environment():
    """Jinja2 over reports/templates, autoescaped: every value from the data is escaped."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    env.filters["cell"] = cell
    return env


def render_section(name: str, **context):
    """One section's HTML (markup, so the page does not escape it again)."""
    from markupsafe import Markup

    return Markup(environment().get_template(f"sections/{name}.html.j2").render(**context))
