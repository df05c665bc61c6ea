"""The lessons' charts, as Vega-Lite specs for `st.vega_lite_chart` (no streamlit here).

Each kind of chart is written once in Altair over one named dataset, and Altair's spec of it
(validated against Vega-Lite's schema) is kept; a call only attaches its data and title.
Building and validating a layered Altair chart costs 0.1 to 0.3 s of server CPU: lesson 3
drew a dozen heatmaps on every rerun (about 1 s), and the training lab redraws its loss
chart while the run trains in the same process.
"""
from __future__ import annotations

import functools

import altair as alt
import pandas as pd

KEPT, DROPPED = "#5b3cc4", "#c9c3dd"
DATA = "table"  # the dataset every chart reads
_TABLE = alt.NamedData(DATA)


def _attach(template: dict, data: pd.DataFrame, **top) -> dict:
    """A copy of `template` that reads `data`, with top-level properties (title, height)."""
    spec = {**template, "datasets": {DATA: data}}
    spec.update({k: v for k, v in top.items() if v is not None})
    return spec


def _spec(chart) -> dict:
    spec = chart.to_dict()
    spec.pop("config", None)  # Altair's default theme (300 × 300 views): Streamlit's theme rules
    return spec


def unique_labels(labels: list[str]) -> list[str]:
    """Prefix ranks so that two tokens that print alike still get their own bar."""
    return [f"{i + 1}. {label}" for i, label in enumerate(labels)]


# ------------------------------------------------------------------------ next-token bars


@functools.cache
def _next_token(picked: bool) -> dict:
    base = alt.Chart(_TABLE).encode(y=alt.Y(
        "token:N", sort=alt.EncodingSortField("rank", op="min"), title=None,
        axis=alt.Axis(labelFontSize=12, labelLimit=220)))
    tooltip = ["token:N", alt.Tooltip("raw:Q", format=".2%"), alt.Tooltip("final:Q", format=".2%")]
    raw = base.mark_bar(fill=None, stroke="#888", strokeDash=[3, 2]).encode(
        x=alt.X("raw:Q", title="probability", axis=alt.Axis(format="%")), tooltip=tooltip)
    final = base.mark_bar(opacity=0.9).encode(
        x="final:Q", color=alt.condition("datum.kept", alt.value(KEPT), alt.value(DROPPED)),
        tooltip=tooltip)
    layers = [raw, final]
    if picked:
        layers.append(base.transform_filter("datum.picked").mark_text(
            align="left", dx=4, text="◀ picked", color="#d1495b").encode(x="final:Q"))
    return _spec(alt.layer(*layers))


def next_token_chart(df: pd.DataFrame, title: str = "") -> dict:
    """Bars of raw probability (outline) and final probability after the filters (filled),
    in the frame's order. df columns: token, raw, final, kept (bool), optionally picked."""
    picked = "picked" in df and bool(df["picked"].any())
    return _attach(_next_token(picked), df.assign(rank=range(len(df))), title=title,
                   height=max(160, 22 * len(df)))


# ------------------------------------------------------------------------ heatmaps


@functools.cache
def _heatmap(value: str, size: int, fmt: str, numbers: bool, pad: bool) -> dict:
    def axis(field: str, title: str, **kw):
        return dict(field=field, type="nominal", title=title,
                    sort=alt.EncodingSortField(f"{field}_order", op="min"),
                    axis=alt.Axis(labelOverlap=False, labelExpr="split(datum.label, ':')[1]", **kw))

    base = alt.Chart(_TABLE).encode(x=alt.X(**axis("x", "key (attended to)", labelAngle=-45)),
                                    y=alt.Y(**axis("y", "query")))
    chart = base.mark_rect().encode(
        color=alt.Color(f"{value}:Q", scale=alt.Scale(scheme="purples"), legend=None),
        tooltip=["y:N", "x:N", alt.Tooltip(f"{value}:Q", format=".3f")])
    if numbers:
        chart = chart + base.mark_text(fontSize=10).encode(
            text=alt.Text(f"{value}:Q", format=fmt),
            color=alt.condition(f"datum.{value} > 0.5", alt.value("white"), alt.value("#333")))
    chart = chart.properties(width=size, height=size)
    if pad:  # the plot gets width × height and the axes go around it; Streamlit's "fit"
        # would squash a small heatmap with long token labels flat
        chart = chart.properties(autosize=alt.AutoSizeParams(type="pad"))
    return _spec(chart)


def heatmap(matrix, x_labels: list[str], y_labels: list[str], title: str = "",
            value: str = "weight", size: int = 260, fmt: str = ".2f",
            show_numbers: bool | None = None, pad: bool = False) -> dict:
    """A matrix as a heatmap; rows are queries (y), columns keys (x). Cells are named
    "index:label" so that two tokens that print alike keep their own row and column."""
    cells = pd.DataFrame([{"y": f"{i}:{y_labels[i]}", "x": f"{j}:{x_labels[j]}",
                           "y_order": i, "x_order": j, value: float(v)}
                          for i, row in enumerate(matrix) for j, v in enumerate(row)])
    numbers = show_numbers if show_numbers is not None else len(x_labels) <= 12
    return _attach(_heatmap(value, size, fmt, numbers, pad), cells, title=title)


# ------------------------------------------------------------------------ curves


@functools.cache
def _loss(color: str) -> dict:
    base = alt.Chart(_TABLE).encode(
        # whole steps, and losses without trailing zeros: with a run's single evaluation the
        # axes read "0.000000" and "4.471700" otherwise
        x=alt.X("iter:Q", title="step", axis=alt.Axis(format="d", tickMinStep=1)),
        y=alt.Y("loss:Q", title="cross-entropy loss", scale=alt.Scale(zero=False),
                axis=alt.Axis(format="~f")),
        color=alt.Color(f"{color}:N", title=None),
        tooltip=["iter:Q", alt.Tooltip("loss:Q", format=".4f"), f"{color}:N"])
    noisy = f"indexof(datum['{color}'], '(batch') >= 0"
    thin = base.transform_filter(noisy).mark_line(strokeWidth=1, opacity=0.6)
    bold = base.transform_filter(f"!({noisy})").mark_line(point=alt.OverlayMarkDef(size=30))
    return _spec((thin + bold).properties(height=320))


def loss_chart(df: pd.DataFrame, color: str = "split", title: str = "") -> dict:
    """Loss curves: df columns iter, loss and a column that names each curve.
    Curves named "... (batch ...)" are drawn thin, without points: they are noisy."""
    return _attach(_loss(color), df, title=title)


@functools.cache
def _bars(x: str, y: str, fmt: str) -> dict:
    return _spec(alt.Chart(_TABLE).mark_bar(color=KEPT).encode(
        x=alt.X(f"{x}:Q", title=x), y=alt.Y(f"{y}:N", sort="-x", title=None),
        tooltip=[f"{y}:N", alt.Tooltip(f"{x}:Q", format=fmt)]))


def bar_chart(df: pd.DataFrame, x: str, y: str, title: str = "", fmt: str = ",") -> dict:
    """Horizontal bars of `x` per `y`, longest first."""
    return _attach(_bars(x, y, fmt), df, title=title)


@functools.cache
def _lines(x: str, y: str, color: str, log_x: bool) -> dict:
    scale = alt.Scale(type="log", base=2) if log_x else alt.Scale()
    return _spec(alt.Chart(_TABLE).mark_line(point=True).encode(
        x=alt.X(f"{x}:Q", title=x, scale=scale), y=alt.Y(f"{y}:Q", title=y),
        color=alt.Color(f"{color}:N", title=None),
        tooltip=[f"{x}:Q", f"{y}:Q", f"{color}:N"]).properties(height=260))


def line_chart(df: pd.DataFrame, x: str, y: str, color: str, title: str = "",
               log_x: bool = False) -> dict:
    """Lines with a point at each value, one per `color`; optionally a log₂ x axis."""
    return _attach(_lines(x, y, color, log_x), df, title=title)


@functools.cache
def _curves(x: str, y: str, color: str, log_y: bool, points: bool, integer_x: bool) -> dict:
    scale = alt.Scale(type="log") if log_y else alt.Scale(zero=False)
    axis = alt.Axis(tickMinStep=1, format="d") if integer_x else alt.Axis()
    return _spec(alt.Chart(_TABLE).mark_line(point=points).encode(
        x=alt.X(f"{x}:Q", title=x, axis=axis), y=alt.Y(f"{y}:Q", title=y, scale=scale),
        color=alt.Color(f"{color}:N", title=None),
        tooltip=[alt.Tooltip(f"{x}:Q", format=".3g"), alt.Tooltip(f"{y}:Q", format=".4g"),
                 f"{color}:N"],
    ).properties(height=260))


def curves_chart(df: pd.DataFrame, x: str, y: str, color: str, title: str = "",
                 log_y: bool = False, points: bool = False, integer_x: bool = False) -> dict:
    """Lines without a marker on every point (for dense curves), optionally on a log y axis;
    integer_x for counts such as layers (no ticks between them)."""
    return _attach(_curves(x, y, color, log_y, points, integer_x), df, title=title)
