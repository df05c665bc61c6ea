"""Lesson 4 exercises: the pieces of GPT-2's transformer block, then the block itself.

    model.layer_norm   normalise each vector over its channels, then scale and shift
    model.gelu         GPT-2's tanh approximation of the GELU
    model.Block        pre-LN attention and MLP, each added back to the residual stream
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from gptcore.exercises.framework import (Exercise, Fail, as_tensor, call, check_shape, close,
                                         first_bad_row, fmt, generator, max_diff, randn, row,
                                         row_of)


# ------------------------------------------------------------------------------- layer_norm
def _layer_norm(x, weight, bias, eps, *, unbiased=False, eps_inside=True, dims=(-1,),
                center=True):
    x = x.double()
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, unbiased=unbiased)
    centred = x - mean if center else x
    y = centred / (torch.sqrt(var + eps) if eps_inside else torch.sqrt(var) + eps)
    if weight is not None:
        y = y * weight.double()
    return y + bias.double() if bias is not None else y


def check_layer_norm(yours, book):
    C = 8
    weight, bias = randn(C, seed=41) * 0.5 + 1, randn(C, seed=42) * 0.5
    cases = [
        ("x (2, 3, 8), default eps", randn(2, 3, C, seed=40) * 3 + 1, weight, bias, None),
        ("x (2, 3, 8), bias=None", randn(2, 3, C, seed=43) * 2, weight, None, None),
        ("x (4, 8) with a tiny variance, eps=0.01", 2 + 0.05 * randn(4, C, seed=44), weight,
         bias, 0.01),
        ("batch of 1: x (1, 8)", randn(1, C, seed=45), weight, bias, 1e-5),
        ("one channel: x (3, 1)", randn(3, 1, seed=46), weight[:1], bias[:1], 1e-5),
    ]
    for text, x, w, b, eps in cases:
        args = (x.clone(), w.clone(), None if b is None else b.clone())
        out = call(yours, *args) if eps is None else call(yours, *args, eps=eps)
        out = as_tensor(out, "Your result")
        eps = 1e-5 if eps is None else eps
        expected = book(x, w, b, eps)
        check_shape(out, expected.shape, "Your result", text, "LayerNorm keeps the shape of x.")
        if close(out, expected):
            continue
        i = first_bad_row(out.nan_to_num(123.0), expected)
        table = [row(f"{text}, row {i}: {fmt(row_of(x, i), 4)}", row_of(out, i),
                     row_of(expected, i))]
        variants = [
            (dict(unbiased=True), "You used the unbiased variance (÷(C-1)); LayerNorm divides by "
                                  "C: `x.var(dim=-1, unbiased=False)` or the mean of squares."),
            (dict(eps_inside=False), "Your epsilon is outside the square root: divide by "
                                     "sqrt(var + eps), not sqrt(var) + eps."),
            (dict(eps_override=1e-5), "You ignored the `eps` argument: use the eps you are given "
                                      "(it is 1e-5 only by default)."),
            (dict(eps_override=0.0), "Epsilon is missing: divide by sqrt(var + eps), which "
                                     "also keeps a constant vector from dividing by zero."),
            (dict(no_weight=True), "You forgot to multiply by `weight` (the learned scale)."),
            (dict(no_bias=True), "You forgot to add `bias` (the learned shift)."),
            (dict(no_weight=True, no_bias=True), "You normalised but forgot the learned scale "
                                                 "and shift: multiply by weight, add bias."),
            (dict(dims=tuple(range(x.dim()))), "You normalised over the whole tensor; "
                                               "normalise each vector over its last dimension."),
            (dict(dims=(0,)), "You normalised over the first dimension; normalise each vector "
                              "over its last dimension (dim=-1)."),
            (dict(center=False), "You forgot to subtract the mean before dividing."),
        ]
        for options, message in variants:
            options = dict(options)
            e = options.pop("eps_override", eps)
            w_ = None if options.pop("no_weight", False) else w
            b_ = None if options.pop("no_bias", False) else b
            if close(out, _layer_norm(x, w_, b_, e, **options), rtol=1e-3, atol=1e-4):
                raise Fail("mistake", message, table)
        if torch.isnan(out).any():
            raise Fail("numbers", f"Your result contains NaN for {text}.", table)
        raise Fail("numbers", f"Your result differs for {text} (max difference "
                              f"{max_diff(out, expected):.2g}): y = (x - mean) / sqrt(var + eps) "
                              "* weight + bias, over the last dimension.", table)


LAYER_NORM = Exercise(
    id="model.layer_norm",
    lesson=4,
    title="LayerNorm",
    name="layer_norm",
    statement=(
        "Write `layer_norm(x, weight, bias, eps=1e-5)`: normalise every vector of `x` over its "
        "last dimension (C channels) to mean 0 and variance 1, then multiply by `weight` and add "
        "`bias` (both of shape (C,); `bias` may be None). Use the biased variance (÷C) and put "
        "`eps` inside the square root, as `nn.LayerNorm` does."
    ),
    formula=r"y = \frac{x - \mu}{\sqrt{\sigma^2 + \varepsilon}} \odot \gamma + \beta \qquad "
            r"\mu = \frac{1}{C}\sum_{c} x_c \qquad \sigma^2 = \frac{1}{C}\sum_c (x_c - \mu)^2",
    starter='''import torch


def layer_norm(x, weight, bias, eps=1e-5):
    """Normalise over the last dimension, then scale by weight and shift by bias."""
    # TODO: the mean and the (biased) variance of each vector, over the last dimension
    mean = 0.0
    var = 1.0
    # TODO: normalise with eps inside the square root, then scale and shift (bias may be None)
    return (x - mean) / var
''',
    hints=(
        "`x.mean(dim=-1, keepdim=True)` keeps a dimension of size 1, so it broadcasts back "
        "against x.",
        "`x.var(dim=-1, keepdim=True, unbiased=False)` divides by C, as LayerNorm does (the "
        "default divides by C - 1).",
        "`y = (x - mean) / torch.sqrt(var + eps) * weight`, then "
        "`return y + bias if bias is not None else y`.",
    ),
    reference="gptcore.model.layer_norm",
    checker=check_layer_norm,
    praise="Correct! Every token's vector now has mean 0 and variance 1 before the learned "
           "scale and shift: that is what keeps a deep stack of blocks trainable.",
)


# ------------------------------------------------------------------------------------- gelu
def check_gelu(yours, book):
    cases = [
        ("x = linspace(-6, 6, 49)", torch.linspace(-6, 6, 49)),
        ("x (3, 4)", randn(3, 4, seed=50) * 2),
        ("x (5,) in float64", randn(5, seed=51, dtype=torch.float64)),
    ]
    for text, x in cases:
        out = as_tensor(call(yours, x.clone()), "Your result")
        expected = book(x)
        check_shape(out, expected.shape, "Your result", text, "GELU works element by element.")
        if close(out, expected, rtol=1e-5, atol=1e-6):
            continue
        d = (out.double() - expected.double()).abs().nan_to_num(math.inf)
        j = int(d.reshape(-1).argmax())
        xj = x.reshape(-1)[j].item()
        table = [row(f"{text}, at x = {xj:.3g}", out.reshape(-1)[j].item(),
                     expected.reshape(-1)[j].item())]
        xd = x.double()
        c = math.sqrt(2 / math.pi)
        variants = [
            (F.relu(xd), "That is ReLU; GPT-2 uses GELU, which is smooth and slightly negative "
                         "for x < 0: 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))."),
            (F.gelu(xd), f"Close, but not GPT-2's tanh approximation: yours is the exact (erf) "
                         f"GELU, max difference {max_diff(out, expected):.1e}. Use "
                         "0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))) or "
                         "F.gelu(x, approximate='tanh')."),
            (xd * torch.sigmoid(1.702 * xd), "That is the sigmoid approximation x·σ(1.702x); "
                                             "GPT-2 uses the tanh one."),
            (xd * (1 + torch.tanh(c * (xd + 0.044715 * xd ** 3))), "The factor 0.5 is missing."),
            (0.5 * xd * (1 + torch.tanh(c * xd)), "The cubic term 0.044715·x³ is missing inside "
                                                  "the tanh."),
            (0.5 * xd * (1 + torch.tanh(2 / math.pi * (xd + 0.044715 * xd ** 3))),
             "The constant is √(2/π) ≈ 0.7979, not 2/π."),
        ]
        for variant, message in variants:
            if close(out, variant):
                raise Fail("mistake", message, table)
        raise Fail("numbers", f"Your GELU differs for {text} (max difference "
                              f"{max_diff(out, expected):.2g} at x = {xj:.3g}).", table)


GELU = Exercise(
    id="model.gelu",
    lesson=4,
    title="GELU, GPT-2's way",
    name="gelu",
    statement=(
        "Write `gelu(x)`: GPT-2's activation, the tanh approximation of x·Φ(x), element by "
        "element. It is close to ReLU for large |x| but smooth, and slightly negative just "
        "below 0."
    ),
    formula=r"\mathrm{GELU}(x) \approx 0.5\,x\left(1 + \tanh\!\left(\sqrt{2/\pi}\,"
            r"\left(x + 0.044715\,x^3\right)\right)\right)",
    starter='''import math

import torch


def gelu(x):
    """GPT-2's GELU (the tanh approximation), element by element."""
    # TODO: 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
    return torch.relu(x)
''',
    hints=(
        "`math.sqrt(2.0 / math.pi)` is the constant; `torch.tanh` works element by element.",
        "The cubic term goes inside the tanh: `x + 0.044715 * x ** 3`.",
        "`return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * "
        "(x + 0.044715 * x ** 3)))`.",
    ),
    reference="gptcore.model.gelu",
    checker=check_gelu,
    praise="Correct! That is GPT-2's GELU: a smooth ReLU that lets a little negative signal "
           "through, and the reason gptcore loads GPT-2's weights with identical outputs.",
)


# ------------------------------------------------------------------------------------ Block
GPT2_NAMES = ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj")


def _config(**changes):
    from gptcore.model import GPTConfig

    options = dict(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.0,
                   bias=True, pre_ln=True, activation="gelu", residual=True, causal=True)
    options.update(changes)
    return GPTConfig(**options)


def block_variant(ref, x, *, pre_ln=True, res_attn=True, res_mlp=True, causal=True,
                  activation="tanh", scale="head", transpose=True, qkv="qkv"):
    """The book Block's computation with one thing changed, for recognising a learner's mistake
    (all defaults: the right answer, which a test checks against the book's Block)."""
    B, T, C = x.size()
    nh = ref.attn.n_head
    hs = C // nh

    def attention(h):
        parts = dict(zip(qkv, ref.attn.c_attn(h).split(C, dim=2)))
        q, k, v = parts["q"], parts["k"], parts["v"]
        if transpose:
            q, k, v = (t.view(B, T, nh, hs).transpose(1, 2) for t in (q, k, v))
        else:
            q, k, v = (t.reshape(B, nh, T, hs) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1)
        scores = scores / {"head": math.sqrt(hs), "width": math.sqrt(C), None: 1.0}[scale]
        if causal:
            scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        y = torch.softmax(scores, dim=-1) @ v  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C) if transpose else y.reshape(B, T, C)
        return ref.attn.c_proj(y)

    def mlp(h):
        h = ref.mlp.c_fc(h)
        h = {"tanh": lambda t: F.gelu(t, approximate="tanh"), "erf": F.gelu,
             "relu": F.relu}[activation](h)
        return ref.mlp.c_proj(h)

    if not pre_ln:
        x = ref.ln_1(x + attention(x))
        return ref.ln_2(x + mlp(x))
    x = (x if res_attn else 0) + attention(ref.ln_1(x))
    return (x if res_mlp else 0) + mlp(ref.ln_2(x))


BLOCK_MISTAKES = (
    (dict(pre_ln=False), "That is post-LN (the 2017 Transformer: LN after the residual add). "
                         "GPT-2 is pre-LN: x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))."),
    (dict(res_attn=False, res_mlp=False), "The residual connections are missing: add each "
                                          "sub-layer's output to its input, "
                                          "x = x + attn(ln_1(x))."),
    (dict(res_attn=False), "The residual around attention is missing: x = x + attn(ln_1(x))."),
    (dict(res_mlp=False), "The residual around the MLP is missing: x = x + mlp(ln_2(x))."),
    (dict(activation="relu"), "Your MLP uses ReLU; GPT-2 uses GELU (the tanh approximation)."),
    (dict(activation="erf"), "Close, but your MLP uses the exact (erf) GELU; GPT-2 uses the tanh "
                             "approximation: F.gelu(x, approximate='tanh')."),
    (dict(scale=None), "The attention scores are not scaled: divide q @ kᵀ by √hs (the head "
                       "size)."),
    (dict(scale="width"), "You scaled the scores by √C; the scale is √hs, the size of one head "
                          "(C // n_head)."),
    (dict(transpose=False), "Your heads are reshaped without the transpose: view as "
                            "(B, T, n_head, hs), then transpose(1, 2)."),
    (dict(qkv="kqv"), "c_attn's output is q, then k, then v (GPT-2's order); you split it in "
                      "another order."),
    (dict(qkv="qvk"), "c_attn's output is q, then k, then v (GPT-2's order); you split it in "
                      "another order."),
)


def _check_parameter_names(mine, ref):
    theirs, ours = dict(mine.named_parameters()), dict(ref.named_parameters())
    missing = [n for n in ours if n not in theirs]
    extra = [n for n in theirs if n not in ours]
    table = [row(n, "missing", str(tuple(ours[n].shape))) for n in missing[:3]] + \
        [row(n, str(tuple(theirs[n].shape)), "no such parameter") for n in extra[:3]]
    if missing:
        advice = ""
        if missing[0].startswith("attn.c_attn") and any(n.startswith("attn.") for n in extra):
            advice = (" GPT-2 computes q, k and v with ONE Linear, attn.c_attn, from C to 3C, "
                      "and splits its output.")
        instead = f" (yours has {', '.join(f'`{n}`' for n in extra[:3])})" if extra else ""
        raise Fail("shape", f"Your Block has no parameter `{missing[0]}`{instead}. Use GPT-2's "
                            f"names: {', '.join(GPT2_NAMES)}, so GPT-2's weights load into it."
                            + advice, table)
    if extra:
        raise Fail("shape", f"Your Block has a parameter GPT-2's does not: `{extra[0]}`. A block "
                            f"has exactly {', '.join(GPT2_NAMES)} (each with weight and bias).",
                   table)
    for name, p in ours.items():
        if theirs[name].shape != p.shape:
            advice = {"mlp.c_fc.weight": " The MLP widens C to 4C.",
                      "attn.c_attn.weight": " c_attn makes q, k and v at once: 3C outputs.",
                      }.get(name, "")
            raise Fail("shape", f"`{name}` has shape {tuple(theirs[name].shape)}; expected "
                                f"{tuple(p.shape)} (nn.Linear(in, out) stores (out, in))."
                                + advice,
                       [row(name, str(tuple(theirs[name].shape)), str(tuple(p.shape)))])


def _same_random_weights(mine, ref, seed):
    """Give both blocks the same random weights (LayerNorm scales near 1), so every parameter
    matters to the output."""
    g = generator(seed)
    ours = dict(ref.named_parameters())
    with torch.no_grad():
        for name, p in sorted(mine.named_parameters()):
            value = torch.randn(p.shape, generator=g) * 0.3
            if name.startswith(("ln_1.", "ln_2.")) and name.endswith("weight"):
                value += 1.0
            p.copy_(value)
            ours[name].copy_(value)


def check_block(yours, book):
    setups = [(_config(), 2, 6), (_config(n_head=4, n_embd=8), 1, 8),
              (_config(n_head=1, n_embd=8), 1, 1)]
    for number, (config, B, T) in enumerate(setups):
        C = config.n_embd
        text = f"n_embd={C}, n_head={config.n_head}, x ({B}, {T}, {C})"
        mine = call(yours, config,
                    what=f"Block(GPTConfig(n_embd={C}, n_head={config.n_head}, …))")
        if not isinstance(mine, nn.Module):
            raise Fail("name", "Block should be a torch module: `class Block(nn.Module):` with "
                               "super().__init__() first in __init__.")
        ref = book(config)
        _check_parameter_names(mine, ref)
        _same_random_weights(mine, ref, seed=60 + number)
        mine.eval()
        ref.eval()
        x = randn(B, T, C, seed=70 + number)
        with torch.no_grad():
            out = call(mine, x.clone(), what=f"block(x) with {text}")
            if isinstance(out, (tuple, list)):
                raise Fail("shape", "Your forward returns a tuple; return only x, (B, T, C).")
            out = as_tensor(out, "block(x)")
            check_shape(out, x.shape, "block(x)", text, "A block keeps the shape (B, T, C).")
            if T > 1:
                _check_causal(mine, x, out, text)
            expected = ref(x)[0]
            if close(out, expected):
                continue
            i = first_bad_row(out, expected)
            table = [row(f"{text}, token {i % T}", row_of(out, i), row_of(expected, i))]
            for options, message in BLOCK_MISTAKES:
                if close(out, block_variant(ref, x, **options)):
                    raise Fail("mistake", message, table)
        raise Fail("numbers", f"Your block's output differs from GPT-2's (max difference "
                              f"{max_diff(out, expected):.2g}, {text}). Check: "
                              "x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)), causal attention "
                              "scaled by √hs, and an MLP C → 4C → C with GELU.", table)


def _check_causal(mine, x, out, text):
    """Changing the last token must not change any earlier position's output."""
    changed = x.clone()
    changed[:, -1] += randn(x.size(0), x.size(-1), seed=80) * 2
    out2 = as_tensor(call(mine, changed, what=f"block(x) with {text}"), "block(x)")
    if not close(out2[:, :-1], out[:, :-1]):
        T = x.size(1)
        raise Fail("mistake", "Your block is not causal: changing only the LAST token changed the "
                              "outputs at earlier positions. Mask the attention scores with the "
                              "causal mask (-inf above the diagonal) before the softmax.",
                   [row(f"{text}: token 0 after changing token {T - 1}", out2[0, 0], out[0, 0])])


BLOCK = Exercise(
    id="model.Block",
    lesson=4,
    title="A transformer block",
    name="Block",
    kind="class",
    statement=(
        "Write a class `Block(config)` (an `nn.Module`; `config` is a `gptcore.model.GPTConfig` "
        "with `n_embd` = C and `n_head`) with GPT-2's parts and names: `ln_1`, `attn.c_attn` "
        "(C → 3C: q, k, v in that order), `attn.c_proj` (C → C), `ln_2`, `mlp.c_fc` (C → 4C), "
        "`mlp.c_proj` (4C → C), as `nn.LayerNorm` and `nn.Linear`. `forward(x)` takes x "
        "(B, T, C) and returns x (B, T, C): causal multi-head attention scaled by √hs, and a "
        "GELU (tanh) MLP, each pre-LN and added back to x."
    ),
    formula=r"x \leftarrow x + \mathrm{Attn}(\mathrm{LN}_1(x)) \qquad "
            r"x \leftarrow x + \mathrm{MLP}(\mathrm{LN}_2(x))",
    starter='''import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # q, k, v at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)  # each (B, T, C)
        # TODO: split each into heads: (B, n_head, T, C // n_head)
        # TODO: causal attention: scores scaled by sqrt(head size), -inf above the diagonal,
        #       softmax over the keys, weights @ v
        # TODO: merge the heads back to (B, T, C), then c_proj
        raise NotImplementedError("attention")


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        # TODO: c_fc from C to 4C and c_proj from 4C back to C
        raise NotImplementedError("MLP")

    def forward(self, x):
        # TODO: c_fc, GELU (the tanh approximation), c_proj
        raise NotImplementedError("MLP")


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x):
        # TODO: pre-LN with residuals: attention on ln_1(x) added to x, then the MLP on ln_2(x)
        return x
''',
    hints=(
        "Reuse your lesson 3 pieces: split_heads is `t.view(B, T, n_head, hs).transpose(1, 2)`, "
        "and merging is `y.transpose(1, 2).contiguous().view(B, T, C)`.",
        "Attention: `scores = q @ k.transpose(-2, -1) / math.sqrt(hs)`, then "
        "`masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float('-inf'))` and softmax "
        "over dim=-1. MLP: `self.c_proj(F.gelu(self.c_fc(x), approximate='tanh'))`.",
        "`forward`: `x = x + self.attn(self.ln_1(x))`, then `x = x + self.mlp(self.ln_2(x))`, "
        "`return x`.",
    ),
    reference="gptcore.model.Block",
    solution_source="gptcore.exercises.block_solution",
    checker=check_block,
    praise="Correct! Your block computes what GPT-2's does, weight for weight: tokens talk in "
           "attention, each thinks alone in the MLP, and the residual stream carries it all.",
)

EXERCISES = (LAYER_NORM, GELU, BLOCK)
