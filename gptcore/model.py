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
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from gptcore.attention import MultiHeadAttention

ACTIVATIONS = ("gelu", "relu")


@dataclass
class GPTConfig:
    vocab_size: int = 50257
    block_size: int = 128  # the context: the most tokens the model sees at once
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True
    tie_weights: bool = True  # the head reuses the token embedding matrix
    pre_ln: bool = True  # GPT-2: LayerNorm before attention/MLP; False: after the residual add
    activation: str = "gelu"  # "gelu" is GPT-2's tanh approximation
    residual: bool = True  # turn off to see why deep nets need the residual stream
    causal: bool = True  # turn off to see a model cheat by reading the next token
    fast_attention: bool = True  # F.scaled_dot_product_attention instead of the explicit path
    layer_norm_eps: float = 1e-5

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1.")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"The width (n_embd={self.n_embd}) must be divisible by the number of heads "
                f"(n_head={self.n_head}): each head gets n_embd / n_head channels."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1).")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}.")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)


class MLP(nn.Module):
    """The feed-forward net: widen to 4C, a non-linearity, back to C. Works on each token alone."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.activation = config.activation
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()

    def forward(self, x):
        x = self.c_fc(x)  # (B, T, 4C)
        x = F.gelu(x, approximate="tanh") if self.activation == "gelu" else F.relu(x)
        return self.dropout(self.c_proj(x))  # (B, T, C)


class Block(nn.Module):
    """One transformer block: attention (tokens talk) then MLP (each token thinks)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.attn = MultiHeadAttention(config.n_embd, config.n_head, bias=config.bias,
                                       dropout=config.dropout, causal=config.causal,
                                       fast=config.fast_attention)
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
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
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
        from transformers import GPT2LMHeadModel

        hf = model_or_path
        if isinstance(model_or_path, (str, Path)):
            hf = GPT2LMHeadModel.from_pretrained(model_or_path, local_files_only=True)
        c = hf.config
        activation = {"gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "relu": "relu"}.get(
            c.activation_function)
        if activation is None:
            raise ValueError(f"Activation {c.activation_function!r} has no gptcore equivalent.")
        config = GPTConfig(
            vocab_size=c.vocab_size, block_size=c.n_positions, n_layer=c.n_layer,
            n_head=c.n_head, n_embd=c.n_embd, dropout=0.0, bias=True,
            tie_weights=bool(getattr(c, "tie_word_embeddings", True)), activation=activation,
            layer_norm_eps=c.layer_norm_epsilon,
        )
        model = cls(config)
        theirs = {k: v for k, v in hf.state_dict().items() if not k.endswith((".attn.bias", ".masked_bias"))}
        ours = model.state_dict()
        missing = set(ours) - set(theirs)
        if missing:
            raise ValueError(f"The Hugging Face model lacks {sorted(missing)[:5]}.")
        with torch.no_grad():
            for name, tensor in ours.items():
                src = theirs[name]
                if _is_conv1d(name):
                    src = src.t()  # Conv1D stores (in, out); nn.Linear wants (out, in)
                if src.shape != tensor.shape:
                    raise ValueError(f"{name}: shape {tuple(src.shape)} != {tuple(tensor.shape)}.")
                tensor.copy_(src)
        return model.eval()

    def to_hf(self):
        """The same weights as a `transformers` GPT2LMHeadModel (pre-LN GPT-2 configs only)."""
        from transformers import GPT2Config, GPT2LMHeadModel

        c = self.config
        if not (c.pre_ln and c.residual):
            raise ValueError("Only pre-LN GPTs with residuals have a GPT-2 equivalent.")
        hf_config = GPT2Config(
            vocab_size=c.vocab_size, n_positions=c.block_size, n_embd=c.n_embd,
            n_layer=c.n_layer, n_head=c.n_head, resid_pdrop=c.dropout, embd_pdrop=c.dropout,
            attn_pdrop=c.dropout, layer_norm_epsilon=c.layer_norm_eps,
            activation_function="gelu_new" if c.activation == "gelu" else "relu",
            tie_word_embeddings=c.tie_weights,
        )
        hf = GPT2LMHeadModel(hf_config)
        theirs = hf.state_dict()
        ours = self.state_dict()
        with torch.no_grad():
            for name, tensor in theirs.items():
                if name.endswith((".attn.bias", ".masked_bias")):
                    continue
                if name not in ours:  # a bias-free gptcore model: GPT-2's biases are zero
                    tensor.zero_()
                    continue
                src = ours[name].t() if _is_conv1d(name) else ours[name]
                tensor.copy_(src)
        return hf.eval()


@torch.no_grad()
def attention_maps(model, idx) -> list[torch.Tensor]:
    """Attention weights of every layer, (n_head, T, T) each, for idx (1, T).

    For a `transformers` GPT-2 the weights are recomputed with gptcore's attention from each
    block's input (its fused SDPA kernel does not return them): LN, c_attn, then softmax.
    """
    if isinstance(model, GPT):
        return [w[0] for w in model.inspect(idx)["attention"]]
    from gptcore.attention import causal_mask, scaled_dot_product_attention

    out = model(idx, output_hidden_states=True)
    maps = []
    for block, h in zip(model.transformer.h, out.hidden_states):
        C, nh = h.size(-1), model.config.n_head
        q, k, _ = block.attn.c_attn(block.ln_1(h)).split(C, dim=2)  # (1, T, C) each
        q = q.view(1, -1, nh, C // nh).transpose(1, 2)  # (1, nh, T, hs)
        k = k.view(1, -1, nh, C // nh).transpose(1, 2)
        _, weights = scaled_dot_product_attention(q, k, k, mask=causal_mask(idx.size(1)))
        maps.append(weights[0])
    return maps


def config_of(model) -> GPTConfig:
    """The GPTConfig of a gptcore GPT, or the equivalent one of a `transformers` GPT-2."""
    if isinstance(model, GPT):
        return model.config
    c = model.config
    return GPTConfig(vocab_size=c.vocab_size, block_size=c.n_positions, n_layer=c.n_layer,
                     n_head=c.n_head, n_embd=c.n_embd, bias=True,
                     tie_weights=bool(getattr(c, "tie_word_embeddings", True)),
                     activation="relu" if c.activation_function == "relu" else "gelu",
                     layer_norm_eps=c.layer_norm_epsilon)


def _is_conv1d(name: str) -> bool:
    return name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight"))


MODEL_PRESETS = {
    # The tutorial's chapter 4 model: 6 layers, 8 heads, 256 wide, context 128, GPT-2 vocab.
    "Tutorial GPT": GPTConfig(n_layer=6, n_head=8, n_embd=256, block_size=128,
                              vocab_size=50257, dropout=0.1, tie_weights=False),
    # nanoGPT's README "baby GPT" for CPUs, character level (65 characters of Shakespeare).
    "nanoGPT baby GPT (CPU)": GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=64,
                                        vocab_size=65, bias=False),
    "DistilGPT2": GPTConfig(n_layer=6, n_head=12, n_embd=768, block_size=1024, vocab_size=50257),
    "GPT-2 small": GPTConfig(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=50257),
}


def shape_trace(config: GPTConfig, batch: int = 1, seq_len: int = 8) -> list[dict]:
    """Run a real forward pass on the meta device (shapes only, no memory) and list every
    module's input and output shape in call order."""
    rows = []

    def shape(t):
        if isinstance(t, torch.Tensor):
            return tuple(t.shape)
        if isinstance(t, (tuple, list)) and t and isinstance(t[0], torch.Tensor):
            return tuple(t[0].shape)
        return None

    def hook(name):
        def record(module, inputs, output):
            rows.append({"module": name or "GPT", "type": type(module).__name__,
                         "input": shape(inputs[0]) if inputs else None, "output": shape(output)})
        return record

    with torch.device("meta"):
        model = GPT(config)
    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()
               if not isinstance(m, (nn.ModuleList, nn.ModuleDict))]
    idx = torch.zeros(batch, min(seq_len, config.block_size), dtype=torch.long, device="meta")
    with torch.no_grad():
        model(idx)
    for h in handles:
        h.remove()
    return rows


@torch.no_grad()
def compare_with_hf(hf_model, ours: GPT, idx) -> dict:
    """Max |difference| after the embeddings, after each block and in the logits."""
    ref = hf_model(idx, output_hidden_states=True)
    mine = ours.inspect(idx)
    rows = [{"stage": "embeddings" if i == 0 else f"block {i - 1}",
             "max |Δ|": (a - b).abs().max().item()}
            for i, (a, b) in enumerate(zip(ref.hidden_states[:-1], mine["hidden"][:-1]))]
    # transformers applies ln_f to its last hidden state; compare the last block before it
    rows.append({"stage": f"block {len(mine['hidden']) - 2}",
                 "max |Δ|": (ours.transformer.ln_f(mine["hidden"][-1]) - ref.hidden_states[-1]).abs().max().item()})
    logits_diff = (mine["logits"] - ref.logits).abs().max().item()
    rows.append({"stage": "logits (after ln_f and the head)", "max |Δ|": logits_diff})
    return {"rows": rows, "logits_max_abs_diff": logits_diff,
            "same_argmax": bool((mine["logits"].argmax(-1) == ref.logits.argmax(-1)).all())}
