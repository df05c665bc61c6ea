"""The GPT: token + position embeddings, a stack of transformer blocks, a language-model head.

Parameter names follow GPT-2's checkpoint (wte, wpe, h, ln_1, attn.c_attn, attn.c_proj,
mlp.c_fc, mlp.c_proj, ln_f, lm_head) so weights port one-to-one, as in nanoGPT. The only
difference from `transformers`' GPT2LMHeadModel is the layout of the linear weights: GPT-2
stores them as Conv1D (in, out), nn.Linear as (out, in), so `from_hf` transposes them.

Options the lesson toggles: pre-LN (GPT-2) or post-LN (the 2017 Transformer), GELU or ReLU,
a tied or untied head, biases, residual connections on or off.
"""
from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from gptcore.attention import MultiHeadAttention
from gptcore.config import ACTIVATIONS, GPTConfig  # noqa: F401 - GPTConfig is part of this module's API

def layer_norm(x: torch.Tensor, weight, bias, eps: float = 1e-5) -> torch.Tensor:
    """Normalise each vector over its last dimension, then scale and shift:

        y = (x - mean) / sqrt(var + eps) * weight + bias      (var is the biased variance, /C)

    What nn.LayerNorm computes; eps goes inside the square root. bias may be None.
    """
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True, unbiased=False)
    y = (x - mean) / torch.sqrt(var + eps) * weight
    return y + bias if bias is not None else y


def gelu(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's GELU, the tanh approximation of x · Φ(x):

        gelu(x) = 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))
    """
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_exact(x: torch.Tensor) -> torch.Tensor:
    """The exact GELU, x · Φ(x) with Φ the standard normal's cumulative distribution:

        gelu_exact(x) = 0.5 · x · (1 + erf(x / √2))

    GPT-2 (2019) used the tanh formula above because erf was slow then; the two differ by
    less than 0.0005, and on today's CPUs erf is the faster one. gelu_exact(1.0) = 0.8413.
    """
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


# The fused PyTorch kernels MLP runs, by GPTConfig.activation; tests check each against its
# formula above (the tanh one only to float precision: PyTorch evaluates it another way).
ACTIVATION_FUNCTIONS = {
    "gelu": partial(F.gelu, approximate="tanh"),  # GPT-2's: a port of GPT-2 needs it
    "gelu_exact": F.gelu,  # nanoGPT's nn.GELU(): from-scratch models
    "relu": F.relu,
}


class AllocateOnly(TorchFunctionMode):
    """`with AllocateOnly(): GPT(config)` builds the modules without drawing a single weight:
    torch.nn.init's functions and in-place fills do nothing inside, so the tensors are only
    allocated, for a caller that sets every one of them next (trainer.init_model, the ports
    in gptcore.hf). transformers' `no_init_weights` patches torch.nn.init instead, which would
    reach every thread; a mode belongs to this thread alone. On the meta device it also keeps
    the first random fill from importing torch._dynamo (2 s)."""

    FILLS = {torch.Tensor.normal_, torch.Tensor.uniform_, torch.Tensor.zero_, torch.Tensor.fill_}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.FILLS or getattr(func, "__module__", None) == "torch.nn.init":
            return args[0] if args else kwargs["tensor"]  # the tensor, untouched
        return func(*args, **kwargs)


class MLP(nn.Module):
    """The feed-forward net: widen to 4C, a non-linearity, back to C. Works on each token alone."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.activation = config.activation
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()

    def forward(self, x):
        x = ACTIVATION_FUNCTIONS[self.activation](self.c_fc(x))  # (B, T, 4C)
        return self.dropout(self.c_proj(x))  # (B, T, C)


class Block(nn.Module):
    """One transformer block: attention (tokens talk) then MLP (each token thinks)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.attn = MultiHeadAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.mlp = MLP(config)
        self.pre_ln, self.residual = config.pre_ln, config.residual

    def forward(self, x, past_kv=None, return_weights=False):
        skip = x if self.residual else torch.zeros_like(x)
        if self.pre_ln:  # GPT-2: x + f(LN(x))
            a, weights, present = self.attn(self.ln_1(x), past_kv=past_kv,
                                            return_weights=return_weights)
            x = skip + a
            x = (x if self.residual else 0) + self.mlp(self.ln_2(x))
        else:  # the original Transformer: LN(x + f(x))
            a, weights, present = self.attn(x, past_kv=past_kv, return_weights=return_weights)
            x = self.ln_1(skip + a)
            x = self.ln_2((x if self.residual else 0) + self.mlp(x))
        return x, weights, present


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity(),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.transformer.wte.weight
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # GPT-2: scale the residual projections
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, trainable_only: bool = False) -> int:
        """Each tensor counted once (a tied head shares the embedding matrix)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def _embed(self, idx, start: int = 0):
        B, T = idx.size()
        if start + T > self.config.block_size:
            raise ValueError(f"{start + T} tokens exceed the context of {self.config.block_size}.")
        pos = torch.arange(start, start + T, dtype=torch.long, device=idx.device)  # (T,)
        return self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))

    def forward(self, idx, targets=None):
        """idx (B, T) of token ids -> (logits (B, T, vocab), mean cross-entropy or None).

        Targets equal to -100 (padding) are ignored by the loss.
        """
        x = self._embed(idx)  # (B, T, C)
        for block in self.transformer.h:
            x, _, _ = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))  # (B, T, vocab)
        loss = None
        if targets is not None:
            # reshape, not view: targets may be a slice such as idx[:, 1:] (not contiguous)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1),
                                   ignore_index=-100)
        return logits, loss

    def forward_cached(self, idx, past=None):
        """Generation step: logits of the last position and every layer's (k, v) for reuse."""
        start = 0 if past is None else past[0][0].size(2)
        x = self._embed(idx, start)
        present = []
        for i, block in enumerate(self.transformer.h):
            x, _, kv = block(x, past_kv=None if past is None else past[i])
            present.append(kv)
        logits = self.lm_head(self.transformer.ln_f(x[:, -1:, :]))  # (B, 1, vocab)
        return logits[:, -1, :], present

    @torch.no_grad()
    def inspect(self, idx) -> dict:
        """Everything the lessons draw: the residual stream after each stage, attention weights
        of every layer (B, nh, T, T), and the logits."""
        x = self._embed(idx)
        hidden, attention = [x], []
        for block in self.transformer.h:
            x, weights, _ = block(x, return_weights=True)
            hidden.append(x)
            attention.append(weights)
        logits = self.lm_head(self.transformer.ln_f(x))
        return {"hidden": hidden, "attention": attention, "logits": logits}

    # ----------------------------------------------------------------- Hugging Face interop
    @classmethod
    def from_hf(cls, model_or_path) -> "GPT":
        """Port a `transformers` GPT2LMHeadModel (or a saved folder of one), weight for weight."""
        from gptcore.hf import from_hf

        return from_hf(model_or_path)

    def to_hf(self):
        """The same weights as a `transformers` GPT2LMHeadModel (pre-LN GPT-2 configs only)."""
        from gptcore.hf import to_hf

        return to_hf(self)


@torch.no_grad()
def attention_maps(model, idx) -> list[torch.Tensor]:
    """Attention weights of every layer, (n_head, T, T) each, for idx (1, T): gptcore's GPT
    or a `transformers` GPT-2 (see gptcore.hf.attention_maps_hf)."""
    if isinstance(model, GPT):
        return [w[0] for w in model.inspect(idx)["attention"]]
    from gptcore.hf import attention_maps_hf

    return attention_maps_hf(model, idx)


def shape_trace(config: GPTConfig, batch: int = 1, seq_len: int = 8) -> list[dict]:
    """Run a real forward pass on the meta device (shapes only, no memory) and list every
    call in the order it starts: "depth" is how deep it is nested (GPT = 0, its blocks 1, ...).

    Besides modules, it lists what happens inside them with plain functions: the activation
    in the MLP, and in attention the per-head q, k, v (B, nh, T, hs), the weights
    (B, nh, T, T) and their weighted sum of v. PyTorch's fused attention never stores the
    weights; their row gives the shape it computes them in (from q's and k's real shapes).

    shape_trace(GPTConfig(n_layer=1, n_head=2, n_embd=8, vocab_size=10), 1, 3)[:2] ->
        [{"module": "GPT", "depth": 0, "input": (1, 3), "output": (1, 3, 10), ...},
         {"module": "transformer.wte", "depth": 1, "input": (1, 3), "output": (1, 3, 8), ...}]
    """
    rows, running = [], []  # running: the rows of the modules whose forward has not returned

    def shape(t):
        if isinstance(t, torch.Tensor):
            return tuple(t.shape)
        if isinstance(t, (tuple, list)) and t and isinstance(t[0], torch.Tensor):
            return tuple(t[0].shape)  # Block and attention return (x, weights, kv): x
        return None

    def add(module, kind, inputs, output):
        rows.append({"module": module, "type": kind, "depth": len(running),
                     "input": inputs, "output": output})
        return rows[-1]

    def started(name):
        def hook(module, inputs):
            running.append(add(name or "GPT", type(module).__name__,
                               shape(inputs[0]) if inputs else None, None))
        return hook

    def finished(module, inputs, output):
        running.pop()["output"] = shape(output)

    class InsideModules(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            where = running[-1]["module"] if running else ""
            if func is F.scaled_dot_product_attention:
                q, k, v = args[:3]
                B, nh, T, hs = q.shape
                add(f"{where} · q, k, v", "split_heads (each)", (B, T, nh * hs), shape(q))
                add(f"{where} · weights = softmax(q·kᵀ/√hs)", "inside the fused kernel",
                    shape(q), (*q.shape[:-1], k.size(-2)))
                add(f"{where} · weights · v", "scaled_dot_product_attention", shape(v), shape(out))
            elif func is torch.softmax:  # the explicit attention path (fast_attention=False)
                add(f"{where} · weights = softmax(q·kᵀ/√hs)", "softmax", shape(args[0]), shape(out))
            elif func in (F.gelu, F.relu):
                add(f"{where} · {func.__name__}", "activation", shape(args[0]), shape(out))
            return out

    with torch.device("meta"), AllocateOnly():
        model = GPT(config)
    handles = []
    for name, m in model.named_modules():
        if not isinstance(m, (nn.ModuleList, nn.ModuleDict)):
            handles += [m.register_forward_pre_hook(started(name)), m.register_forward_hook(finished)]
    idx = torch.zeros(batch, min(seq_len, config.block_size), dtype=torch.long, device="meta")
    with torch.no_grad(), InsideModules():
        model(idx)
    for h in handles:
        h.remove()
    return rows
