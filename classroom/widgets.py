"""The pieces every page draws with: token spans, loss colouring, "show the code", plain
error messages instead of tracebacks, bounded text inputs."""
from __future__ import annotations

import contextlib
import html
import inspect
import logging

import streamlit as st

log = logging.getLogger("gptcourse")
PALETTE = ["#ffd6a5", "#caffbf", "#9bf6ff", "#bdb2ff", "#ffc6ff", "#fdffb6", "#a0c4ff", "#ffadad"]
MAX_TEXT_CHARS = 20_000


def visible(text: str) -> str:
    """Make spaces and line breaks inside a token visible."""
    return (text.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥")
            .replace("\r", "␍") or "∅")


def token_label(tok, token_id: int) -> str:
    """A token's text as a tokenizer prints it, spaces and line breaks made visible."""
    return visible(tok.token_text(token_id))


def tokens(tok, ids: list[int], **kwargs) -> None:
    """The tokens `ids` of `tok` as coloured spans with their ids (token_spans's options)."""
    token_spans([tok.token_text(t) for t in ids], ids, **kwargs)


def token_spans(texts: list[str], ids: list[int] | None = None, highlight: set[int] = frozenset(),
                max_tokens: int = 400) -> None:
    """Tokens as coloured spans, ids underneath; `highlight` marks positions (e.g. <unk>) in red."""
    parts = []
    for i, text in enumerate(texts[:max_tokens]):
        colour = "#ff8a8a" if i in highlight else PALETTE[i % len(PALETTE)]
        id_line = f"<sub style='opacity:.65'>{ids[i]}</sub>" if ids is not None else ""
        parts.append(
            f"<span style='background:{colour};border-radius:4px;padding:1px 3px;margin:1px;"
            f"display:inline-block;font-family:monospace;line-height:1.9'>"
            f"{html.escape(visible(text))}{id_line}</span>"
        )
    more = len(texts) - max_tokens
    if more > 0:
        parts.append(f"<span style='opacity:.6'> … and {more:,} more tokens</span>")
    st.markdown("<div>" + "".join(parts) + "</div>", unsafe_allow_html=True)


def show_code(*objects, label: str = "Show the gptcore code behind these numbers") -> None:
    """An expander with the source of the functions or classes that produced a view.

    The source is sent only once the expander is opened (which reruns the page): a lesson has
    a dozen of these, and highlighting all that code in the browser made every open of a page
    about a second slower (benchmarks.page_open)."""
    key = "code:" + "+".join(f"{obj.__module__}.{obj.__qualname__}" for obj in objects)
    with st.expander(label, key=key, on_change="rerun") as box:
        if not box.open:
            return
        for obj in objects:
            st.caption(f"`{obj.__module__}.{obj.__qualname__}`")
            st.code(inspect.getsource(obj), language="python")


@contextlib.contextmanager
def explain_errors(what: str):
    """Turn an unexpected error into a plain message in the page; never a traceback."""
    try:
        yield
    except Exception as e:  # st.rerun/st.stop are BaseExceptions and pass through  # noqa: BLE001 - the page must survive anything a learner does
        log.exception("error while %s", what)
        st.error(f"Something went wrong while {what}: {e}. Nothing you made was lost; "
                 "try other settings.")


def bounded_text(text: str, what: str = "text") -> str:
    """Cut very long input with a message instead of freezing the page."""
    if len(text) > MAX_TEXT_CHARS:
        st.warning(f"The {what} has {len(text):,} characters; this view uses the first "
                   f"{MAX_TEXT_CHARS:,}.")
        return text[:MAX_TEXT_CHARS]
    return text


def loss_spans(texts: list[str], losses: list[float], max_tokens: int = 300) -> None:
    """Tokens coloured by their loss: green = predicted well, red = surprised."""
    finite = [v for v in losses if v == v]
    top = max(finite, default=1.0) or 1.0
    parts = []
    for text, loss in list(zip(texts, losses))[:max_tokens]:
        if loss != loss:  # the first token has nothing to be predicted from
            colour, tip = "#eeeeee", "no context"
        else:
            r = min(loss / top, 1.0)
            colour = f"rgb({int(120 + 135 * r)},{int(220 - 140 * r)},{int(140 - 60 * r)})"
            tip = f"loss {loss:.2f}"
        parts.append(f"<span title='{tip}' style='background:{colour};border-radius:3px;"
                     f"padding:1px 2px;margin:1px;display:inline-block;font-family:monospace'>"
                     f"{html.escape(visible(text))}</span>")
    st.markdown("<div>" + "".join(parts) + "</div>", unsafe_allow_html=True)


def keep_last_chars(text: str, limit: int, what: str = "prompt") -> str:
    """A prompt longer than `limit` keeps its end (what a model continues), with a message.

    (A text_area's own max_chars silently ignores a paste that is too long.)"""
    if len(text) > limit:
        st.warning(f"The {what} has {len(text):,} characters; only its last {limit:,} are "
                   "used (the model continues the end of the text).")
        return text[-limit:]
    return text


WINDOW_COLOURS = {"x": "#a0c4ff", "y": "#ffb86b"}


def window_grid(token_texts: list[str], picture) -> None:
    """Windows (rows) over token positions (columns), from a `gptcore.data.WindowPicture`:
    blue = input x, orange = the last target; the bottom row counts input reads per token
    (red 0 = never an input, amber 2+ = read again)."""
    cell = "width:20px;min-width:20px;height:18px;padding:0;border:1px solid #fff"
    head = "".join(
        f"<th title='{html.escape(text)}' style='{cell};height:auto;font:11px monospace;"
        f"writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;"
        f"font-weight:normal'>{p} {html.escape(visible(text))[:10]}</th>"
        for p, text in zip(picture.positions, token_texts))
    rows = []
    for index, start, roles in picture.rows:
        cells = "".join(f"<td style='{cell};background:{WINDOW_COLOURS.get(r, '#f4f4f4')}'></td>"
                        for r in roles)
        rows.append(f"<tr><th style='font:11px monospace;padding:0 6px;text-align:right;"
                    f"font-weight:normal;white-space:nowrap'>window {index}</th>{cells}</tr>")
    reads = "".join(
        f"<td style='{cell};font:10px monospace;text-align:center;background:"
        f"{'#ff8a8a' if n == 0 else '#ffe08a' if n > 1 else '#caffbf'}'>{n}</td>"
        for n in picture.reads)
    more = (f"<tr><td colspan='{len(picture.reads) + 1}' style='font:11px sans-serif;opacity:.7'>"
            f"… and {picture.hidden_rows:,} more windows</td></tr>" if picture.hidden_rows else "")
    st.markdown(
        "<div style='overflow-x:auto'><table style='border-collapse:collapse;border:none'>"
        f"<tr><th></th>{head}</tr>{''.join(rows)}{more}"
        "<tr><th style='font:11px monospace;padding:0 6px;text-align:right;font-weight:normal'>"
        f"input reads</th>{reads}</tr></table></div>", unsafe_allow_html=True)


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """plural(1, "token") -> "1 token"; plural(1200, "token") -> "1,200 tokens"."""
    return f"{n:,} {noun if n == 1 else nouns or noun + 's'}"


def megabytes(n_bytes: float) -> str:
    """Bytes as decimal megabytes (10⁶ bytes), the unit the lessons print: 327,650,304 -> '327.7 MB'."""
    return f"{n_bytes / 1e6:,.1f} MB"


def milliseconds(seconds: float) -> str:
    """A duration for a metric: '41.3 ms', '1,383 ms' (no decimals past 100 ms), '2.50 s'."""
    ms = seconds * 1000
    if ms >= 10_000:
        return f"{seconds:,.2f} s"
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.1f} ms"


def nearest_divisible(value: int, divisor: int, low: int, high: int, step: int) -> int | None:
    """The value on a slider (low..high by step) nearest to `value` that `divisor` divides:
    a width that splits into that many heads. nearest_divisible(100, 3, 8, 1600, 8) -> 96."""
    return min((v for v in range(low, high + 1, step) if v % divisor == 0),
               key=lambda v: abs(v - value), default=None)


def metric_row(items: list[tuple]) -> None:
    """Metrics side by side, one column each, from (label, value) or (label, value, help)."""
    for column, (label, value, *help_) in zip(st.columns(len(items)), items):
        column.metric(label, value, help=help_[0] if help_ else None)


def tex_number(value, spec: str = ",") -> str:
    """A number for st.latex, its thousands separators as {,} (a bare comma is spaced as in a
    list): tex_number(12865792) -> '12{,}865{,}792', tex_number(1234.5, ',.1f') -> '1{,}234.5'."""
    return format(value, spec).replace(",", "{,}")
