"""The parts of a GPT, one at a time: the small experiments lesson 4 draws.

Each function builds what it needs from gptcore's own modules, runs it, and returns plain
numbers (lists, dicts) for a table or a chart: token and position embeddings, LayerNorm, the
feed-forward's non-linearity, residual connections, dropout, and where LayerNorm goes
(pre-LN, GPT-2's, against the 2017 Transformer's post-LN). Seeds make every number repeatable.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from gptcore.config import ACTIVATIONS, GPTConfig
from gptcore.model import GPT, MLP, AllocateOnly, gelu, gelu_exact, layer_norm


def _seeded(seed: int, build):
    """build() with PyTorch's global generator seeded (module initialisers draw from it),
    leaving that generator as it was for everyone else."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


# ------------------------------------------------------------------ embeddings


def embedding_shapes(c: GPTConfig, batch: int, seq_len: int) -> list[tuple[str, tuple]]:
    """The shapes of GPT's first step, x = wte(idx) + wpe(pos), for config c, on the meta
    device (no memory, so any size works). With V = 65, C = 128, block 64, (B, T) = (2, 8):
    idx (2, 8), wte.weight (65, 128), wte(idx) (2, 8, 128), wpe.weight (64, 128),
    wpe(pos) (8, 128), x (2, 8, 128): the (T, C) positions broadcast over the batch."""
    T = min(seq_len, c.block_size)
    with torch.device("meta"), AllocateOnly():
        wte, wpe = nn.Embedding(c.vocab_size, c.n_embd), nn.Embedding(c.block_size, c.n_embd)
        idx = torch.zeros(batch, T, dtype=torch.long)
        pos = torch.arange(T)
        tok, where = wte(idx), wpe(pos)
        x = tok + where
    return [("idx: token ids", tuple(idx.shape)), ("wte.weight: one row per token id", tuple(wte.weight.shape)),
            ("wte(idx): the row of each token", tuple(tok.shape)),
            ("wpe.weight: one row per position", tuple(wpe.weight.shape)),
            ("wpe(pos), pos = 0 … T−1", tuple(where.shape)), ("x = wte(idx) + wpe(pos)", tuple(x.shape))]


def embedding_example(ids: list[int], vocab_size: int = 10, n_embd: int = 4, seed: int = 0) -> dict:
    """Token and position embeddings of `ids` in a small freshly initialised GPT, through
    GPT's own `_embed`: per position, the token's wte row, the position's wpe row, their sum.
    A token that appears twice gets the same wte row but a different wpe row."""
    model = _seeded(seed, lambda: GPT(GPTConfig(vocab_size=vocab_size, block_size=len(ids),
                                                n_layer=1, n_head=1, n_embd=n_embd)))
    with torch.no_grad():
        x = model._embed(torch.tensor([ids]))[0]  # (T, C)
        wte = model.transformer.wte.weight[ids]  # (T, C)
        wpe = model.transformer.wpe.weight[: len(ids)]  # (T, C)
    return {"wte": wte.tolist(), "wpe": wpe.tolist(), "x": x.tolist()}


# ------------------------------------------------------------------ LayerNorm


def layer_norm_table(seed: int = 0, n_channels: int = 16) -> list[dict]:
    """Five token vectors of very different means and spreads, before and after
    `gptcore.model.layer_norm` with γ = 1, β = 0 (its values at initialisation): every row
    comes out with mean 0 and variance 1 (a little under: ε = 1e-5 sits in the square root)."""
    g = torch.Generator().manual_seed(seed)
    spread = torch.tensor([[0.5], [2.0], [5.0], [1.0], [10.0]])
    centre = torch.tensor([[3.0], [-1.0], [0.0], [8.0], [-4.0]])
    h = torch.randn(5, n_channels, generator=g) * spread + centre  # (5, C)
    out = layer_norm(h, torch.ones(n_channels), torch.zeros(n_channels))
    return [{"token": i, "mean before": float(a.mean()), "variance before": float(a.var(unbiased=False)),
             "mean after": float(b.mean()), "variance after": float(b.var(unbiased=False))}
            for i, (a, b) in enumerate(zip(h, out))]


# ------------------------------------------------------------------ the feed-forward


def gelu_curves(low: float = -4.0, high: float = 4.0, points: int = 161) -> dict:
    """GPT-2's tanh GELU, the exact erf GELU and ReLU on a grid, and where the two GELUs
    differ most (searched on a grid 50 times finer): 4.7e-4 at x = ±2.7. The difference is
    the same at x and -x, since both satisfy gelu(x) - gelu(-x) = x."""
    x = torch.linspace(low, high, points, dtype=torch.float64)
    fine = torch.linspace(low, high, 50 * (points - 1) + 1, dtype=torch.float64)
    diff = (gelu(fine) - gelu_exact(fine)).abs()
    at = int(diff.argmax())
    return {"x": x.tolist(), "GELU, tanh (GPT-2)": gelu(x).tolist(),
            "GELU, exact (erf)": gelu_exact(x).tolist(), "ReLU": torch.relu(x).tolist(),
            "max_difference": float(diff[at]), "where": abs(float(fine[at]))}


def feed_forward_table(seed: int = 0, n_embd: int = 16, n_tokens: int = 4) -> list[dict]:
    """The same MLP weights with each activation, on the same tokens: how many of the 4C
    hidden units come out exactly 0 or negative, and the size (norm) of the output."""
    configs = [GPTConfig(n_embd=n_embd, n_head=1, vocab_size=10, block_size=8, activation=a)
               for a in ACTIVATIONS]
    first = _seeded(seed, lambda: MLP(configs[0]))
    x = torch.randn(1, n_tokens, n_embd, generator=torch.Generator().manual_seed(seed))
    rows = []
    for c in configs:
        mlp = MLP(c)
        mlp.load_state_dict(first.state_dict())
        with torch.no_grad():
            hidden = []  # what the activation gives c_proj
            handle = mlp.c_proj.register_forward_pre_hook(lambda m, inp: hidden.append(inp[0]))
            out = mlp(x)
            handle.remove()
        rows.append({"activation": c.activation, "hidden units": hidden[0].numel(),
                     "exactly 0": int((hidden[0] == 0).sum()), "negative": int((hidden[0] < 0).sum()),
                     "output norm": float(out.norm())})
    return rows


# ------------------------------------------------------------------ residuals


def residual_rms(depth: int, residual: bool = True, seed: int = 0) -> list[float]:
    """RMS of the residual stream after the embeddings (index 0) and after each of `depth`
    blocks of a freshly initialised GPT (64 wide, 16 tokens): √(mean(x²)) over every value."""
    config = GPTConfig(n_layer=depth, n_head=4, n_embd=64, block_size=16, vocab_size=50,
                       residual=residual)
    model = _seeded(seed, lambda: GPT(config)).eval()
    hidden = model.inspect(torch.arange(16).view(1, 16))["hidden"]
    return [float(h.pow(2).mean().sqrt()) for h in hidden]


# ------------------------------------------------------------------ dropout


def dropout_demo(p: float, n: int = 12, seed: int = 0) -> dict:
    """nn.Dropout(p) on a row of ones, in training and in eval mode. In training each value is
    zeroed with probability p and the survivors become 1/(1-p), so the mean stays 1 on average;
    in eval mode it returns its input."""
    drop = nn.Dropout(p)
    ones = torch.ones(n)
    train = _seeded(seed, lambda: drop.train()(ones))
    return {"input": ones.tolist(), "train": train.tolist(), "eval": drop.eval()(ones).tolist(),
            "scale": 1 / (1 - p) if p < 1 else math.inf}


# ------------------------------------------------------------------ where LayerNorm goes

PLACEMENTS = {True: "pre-LN (GPT-2)", False: "post-LN (2017 Transformer)"}


def transformer_2017_init(model: GPT) -> GPT:
    """The initialisation Xiong et al. (2020) analyse: Xavier-normal weight matrices and
    embeddings of unit variance (the 2017 Transformer scales its embeddings by √C)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(("transformer.wte", "transformer.wpe")):
                nn.init.normal_(p, std=1.0)
            elif p.dim() == 2:
                nn.init.xavier_normal_(p)
    return model


def ln_placement_gradients(n_layer: int, seed: int = 0, n_embd: int = 64) -> dict:
    """Why GPT-2 put LayerNorm before each sub-block. For a pre-LN and a post-LN GPT of
    `n_layer` blocks with the same weights (the 2017 initialisation above), one backward pass
    of the loss on random tokens: the gradient norm of each block's parameters.

    Post-LN's gradients are larger, largest near the output, and do not shrink with depth;
    pre-LN's shrink as depth grows (Xiong et al., 2020). So post-LN's first steps are big in
    its top layers, which is why it needs a learning-rate warm-up; pre-LN trains without one.
    Also returned: how much the final LayerNorm ln_f changes the last block's output (max |Δ|):
    in post-LN that output is already normalised, so ln_f (γ = 1, β = 0 here) barely moves it.
    """
    V, T = 64, 32
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, V, (8, T), generator=g)  # (B, T)
    y = torch.randint(0, V, (8, T), generator=g)
    rows, ln_f_change = [], {}
    for pre_ln, label in PLACEMENTS.items():
        config = GPTConfig(n_layer=n_layer, n_head=4, n_embd=n_embd, block_size=T, vocab_size=V,
                           pre_ln=pre_ln)
        model = _seeded(seed, lambda: transformer_2017_init(GPT(config)))
        _, loss = model(x, y)
        loss.backward()
        for i, block in enumerate(model.transformer.h):
            norm = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in block.parameters()))
            rows.append({"layer": i, "placement": label, "gradient norm": norm})
        last = model.inspect(x)["hidden"][-1]  # (B, T, C), the last block's output
        with torch.no_grad():
            ln_f_change[label] = float((model.transformer.ln_f(last) - last).abs().max())
    return {"rows": rows, "ln_f_change": ln_f_change}
