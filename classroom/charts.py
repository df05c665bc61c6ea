"""Altair chart builders shared by the lessons (no streamlit here: pages render them)."""
from __future__ import annotations

import altair as alt
import pandas as pd

KEPT, DROPPED = "#5b3cc4", "#c9c3dd"


def unique_labels(labels: list[str]) -> list[str]:
    """Prefix ranks so that two tokens that print alike still get their own bar."""
    return [f"{i + 1}. {label}" for i, label in enumerate(labels)]


def next_token_chart(df: pd.DataFrame, title: str = "") -> alt.Chart:
    """Bars of raw probability (outline) and final probability after the filters (filled).

    df columns: token, raw, final, kept (bool), optionally picked (bool).
    """
    order = list(df["token"])
    base = alt.Chart(df).encode(y=alt.Y("token:N", sort=order, title=None,
                                        axis=alt.Axis(labelFontSize=12, labelLimit=220)))
    raw = base.mark_bar(fill=None, stroke="#888", strokeDash=[3, 2]).encode(
        x=alt.X("raw:Q", title="probability", axis=alt.Axis(format="%")),
        tooltip=["token", alt.Tooltip("raw:Q", format=".2%"), alt.Tooltip("final:Q", format=".2%")])
    final = base.mark_bar(opacity=0.9).encode(
        x="final:Q",
        color=alt.condition("datum.kept", alt.value(KEPT), alt.value(DROPPED)),
        tooltip=["token", alt.Tooltip("raw:Q", format=".2%"), alt.Tooltip("final:Q", format=".2%")])
    layers = [raw, final]
    if "picked" in df and df["picked"].any():
        layers.append(base.transform_filter("datum.picked").mark_text(
            align="left", dx=4, text="◀ picked", color="#d1495b").encode(x="final:Q"))
    return alt.layer(*layers).properties(title=title, height=max(160, 22 * len(df)))


def heatmap(matrix, x_labels: list[str], y_labels: list[str], title: str = "",
            value: str = "weight", size: int = 260, fmt: str = ".2f",
            show_numbers: bool | None = None) -> alt.Chart:
    """A matrix as a heatmap; rows are queries (y), columns keys (x)."""
    rows = [{"y": f"{i}:{y_labels[i]}", "x": f"{j}:{x_labels[j]}", value: float(v)}
            for i, row in enumerate(matrix) for j, v in enumerate(row)]
    df = pd.DataFrame(rows)
    x_order = [f"{j}:{x}" for j, x in enumerate(x_labels)]
    y_order = [f"{i}:{y}" for i, y in enumerate(y_labels)]
    base = alt.Chart(df).encode(
        x=alt.X("x:N", sort=x_order, title="key (attended to)",
                axis=alt.Axis(labelAngle=-45, labelOverlap=False,
                              labelExpr="split(datum.label, ':')[1]")),
        y=alt.Y("y:N", sort=y_order, title="query",
                axis=alt.Axis(labelOverlap=False, labelExpr="split(datum.label, ':')[1]")),
    )
    rect = base.mark_rect().encode(
        color=alt.Color(f"{value}:Q", scale=alt.Scale(scheme="purples"), legend=None),
        tooltip=["y", "x", alt.Tooltip(f"{value}:Q", format=".3f")])
    chart = rect
    if show_numbers if show_numbers is not None else len(x_labels) <= 12:
        text = base.mark_text(fontSize=10).encode(
            text=alt.Text(f"{value}:Q", format=fmt),
            color=alt.condition(f"datum.{value} > 0.5", alt.value("white"), alt.value("#333")))
        chart = rect + text
    return chart.properties(title=title, width=size, height=size)


def loss_chart(df: pd.DataFrame, color: str = "split", title: str = "") -> alt.Chart:
    """Loss curves: df columns iter, loss and a column that names each curve.
    Curves named "... (batch ...)" are drawn thin, without points: they are noisy."""
    base = alt.Chart(df).encode(
        x=alt.X("iter:Q", title="step"),
        y=alt.Y("loss:Q", title="cross-entropy loss", scale=alt.Scale(zero=False)),
        color=alt.Color(f"{color}:N", title=None),
        tooltip=["iter", alt.Tooltip("loss:Q", format=".4f"), color],
    )
    noisy = f"indexof(datum['{color}'], '(batch') >= 0"
    thin = base.transform_filter(noisy).mark_line(strokeWidth=1, opacity=0.6)
    bold = base.transform_filter(f"!({noisy})").mark_line(point=alt.OverlayMarkDef(size=30))
    return (thin + bold).properties(title=title, height=320)


def bar_chart(df: pd.DataFrame, x: str, y: str, title: str = "", fmt: str = ",") -> alt.Chart:
    return alt.Chart(df).mark_bar(color=KEPT).encode(
        x=alt.X(f"{x}:Q", title=x), y=alt.Y(f"{y}:N", sort="-x", title=None),
        tooltip=[y, alt.Tooltip(f"{x}:Q", format=fmt)],
    ).properties(title=title)


def line_chart(df: pd.DataFrame, x: str, y: str, color: str, title: str = "",
               log_x: bool = False) -> alt.Chart:
    scale = alt.Scale(type="log", base=2) if log_x else alt.Scale()
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X(f"{x}:Q", title=x, scale=scale), y=alt.Y(f"{y}:Q", title=y),
        color=alt.Color(f"{color}:N", title=None), tooltip=[x, y, color],
    ).properties(title=title, height=260)


def curves_chart(df: pd.DataFrame, x: str, y: str, color: str, title: str = "",
                 log_y: bool = False, points: bool = False, integer_x: bool = False) -> alt.Chart:
    """Lines without a marker on every point (for dense curves), optionally on a log y axis;
    integer_x for counts such as layers (no ticks between them)."""
    scale = alt.Scale(type="log") if log_y else alt.Scale(zero=False)
    axis = alt.Axis(tickMinStep=1, format="d") if integer_x else alt.Axis()
    return alt.Chart(df).mark_line(point=points).encode(
        x=alt.X(f"{x}:Q", title=x, axis=axis), y=alt.Y(f"{y}:Q", title=y, scale=scale),
        color=alt.Color(f"{color}:N", title=None),
        tooltip=[alt.Tooltip(f"{x}:Q", format=".3g"), alt.Tooltip(f"{y}:Q", format=".4g"), color],
    ).properties(title=title, height=260)


def padded(chart: alt.Chart) -> alt.Chart:
    """Give the plot itself the chart's width and height, and add the axes around it.

    Without an autosize of its own, Streamlit asks Vega-Lite to "fit" axes, labels and
    title INSIDE width × height: a small heatmap with long token labels is squashed flat."""
    return chart.properties(autosize=alt.AutoSizeParams(type="pad"))
