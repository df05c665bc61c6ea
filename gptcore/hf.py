"""gptcore's GPT and `transformers`' GPT-2, weight for weight, both ways.

GPT-2's checkpoint stores its linear layers as Conv1D with weights of shape (in, out) and
computes x @ W + b; nn.Linear stores (out, in) and computes x @ W.T + b. So the port
transposes c_attn, c_proj and c_fc weights and copies everything else as is, checking every
shape (as nanoGPT's `from_pretrained` does). `config_from_hf` is the one translation of a
GPT-2 config into a GPTConfig; the port, the model card and the lessons all use it.
"""
from __future__ import annotations

from pathlib import Path

import torch

from gptcore.attention import causal_mask, scaled_dot_product_attention, split_heads
from gptcore.config import GPTConfig
from gptcore.model import GPT, AllocateOnly

# transformers' names for the activations gptcore has: GPT-2 uses "gelu_new" (tanh).
HF_ACTIVATIONS = {"gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "relu": "relu"}
CONV1D_WEIGHTS = ("c_attn.weight", "c_proj.weight", "c_fc.weight")
HF_BUFFERS = (".attn.bias", ".masked_bias")  # causal-mask buffers of older checkpoints


def config_from_hf(hf_config) -> GPTConfig:
    """The GPTConfig of a `transformers` GPT2Config; an activation gptcore lacks is an error."""
    activation = HF_ACTIVATIONS.get(hf_config.activation_function)
    if activation is None:
        raise ValueError(f"Activation {hf_config.activation_function!r} has no gptcore "
                         f"equivalent (gptcore has {', '.join(sorted(set(HF_ACTIVATIONS)))}).")
    return GPTConfig(
        vocab_size=hf_config.vocab_size, block_size=hf_config.n_positions,
        n_layer=hf_config.n_layer, n_head=hf_config.n_head, n_embd=hf_config.n_embd,
        dropout=0.0, bias=True, tie_weights=bool(getattr(hf_config, "tie_word_embeddings", True)),
        activation=activation, layer_norm_eps=hf_config.layer_norm_epsilon,
    )


def config_of(model) -> GPTConfig:
    """The GPTConfig of a gptcore GPT, or the equivalent one of a `transformers` GPT-2."""
    return model.config if isinstance(model, GPT) else config_from_hf(model.config)


def _is_conv1d(name: str) -> bool:
    return name.endswith(CONV1D_WEIGHTS)


def from_hf(model_or_path) -> GPT:
    """Port a `transformers` GPT2LMHeadModel (or a saved folder of one), weight for weight."""
    from transformers import GPT2LMHeadModel

    hf = model_or_path
    if isinstance(model_or_path, (str, Path)):
        hf = GPT2LMHeadModel.from_pretrained(model_or_path, local_files_only=True)
    with AllocateOnly():  # every tensor is copied from hf below
        model = GPT(config_from_hf(hf.config))
    theirs = {k: v for k, v in hf.state_dict().items() if not k.endswith(HF_BUFFERS)}
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


def has_gpt2_equivalent(c: GPTConfig) -> bool:
    """GPT-2 is causal, pre-LN, with residuals: a gptcore GPT without one of these has none."""
    return c.pre_ln and c.residual and c.causal


def to_hf(model: GPT):
    """The same weights as a `transformers` GPT2LMHeadModel (pre-LN GPT-2 configs only)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    c = model.config
    if not has_gpt2_equivalent(c):
        raise ValueError("Only causal pre-LN GPTs with residuals have a GPT-2 equivalent.")
    hf_config = GPT2Config(
        vocab_size=c.vocab_size, n_positions=c.block_size, n_embd=c.n_embd,
        n_layer=c.n_layer, n_head=c.n_head, resid_pdrop=c.dropout, embd_pdrop=c.dropout,
        attn_pdrop=c.dropout, layer_norm_epsilon=c.layer_norm_eps,
        activation_function="gelu_new" if c.activation == "gelu" else "relu",
        tie_word_embeddings=c.tie_weights,
    )
    with AllocateOnly():  # every tensor is set below (transformers 5's GPT-2 has no buffers)
        hf = GPT2LMHeadModel(hf_config)
    ours = model.state_dict()
    with torch.no_grad():
        for name, tensor in hf.state_dict().items():
            if name.endswith(HF_BUFFERS):
                continue
            if name not in ours:  # a bias-free gptcore model: GPT-2's biases are zero
                tensor.zero_()
                continue
            tensor.copy_(ours[name].t() if _is_conv1d(name) else ours[name])
    return hf.eval()


@torch.no_grad()
def attention_maps_hf(model, idx) -> list[torch.Tensor]:
    """Attention weights (n_head, T, T) of every layer of a `transformers` GPT-2 for idx (1, T).

    Its fused SDPA kernel does not return them, so they are recomputed with gptcore's
    attention from each block's input: LN, c_attn, then softmax(q kᵀ / √d) under the mask.
    """
    out = model(idx, output_hidden_states=True)
    maps = []
    for block, h in zip(model.transformer.h, out.hidden_states):
        C, nh = h.size(-1), model.config.n_head
        q, k, _ = block.attn.c_attn(block.ln_1(h)).split(C, dim=2)  # (1, T, C) each
        q, k = split_heads(q, nh), split_heads(k, nh)  # (1, nh, T, hs)
        _, weights = scaled_dot_product_attention(q, k, k, mask=causal_mask(idx.size(1)))
        maps.append(weights[0])  # (nh, T, T)
    return maps


@torch.no_grad()
def compare_with_hf(hf_model, ours: GPT, idx) -> dict:
    """The port report for idx (1, T): max |difference| after the embeddings, after each block,
    after the last block and the final LayerNorm together (transformers only returns that
    one normalised), and in the logits; whether the next-token argmax agrees at every
    position, and the positions where it does not."""
    ref = hf_model(idx, output_hidden_states=True)
    mine = ours.inspect(idx)
    n_blocks = len(mine["hidden"]) - 1
    rows = [{"stage": "embeddings" if i == 0 else f"after block {i - 1}",
             "max |Δ|": (a - b).abs().max().item()}
            for i, (a, b) in enumerate(zip(ref.hidden_states[:n_blocks], mine["hidden"][:n_blocks]))]
    # transformers applies ln_f to its last hidden state: compare it after ours's ln_f too
    last = ours.transformer.ln_f(mine["hidden"][-1])
    rows.append({"stage": f"after block {n_blocks - 1} and the final LayerNorm (ln_f)",
                 "max |Δ|": (last - ref.hidden_states[-1]).abs().max().item()})
    logits_diff = (mine["logits"] - ref.logits).abs().max().item()
    rows.append({"stage": "logits (the head)", "max |Δ|": logits_diff})
    same = mine["logits"].argmax(-1) == ref.logits.argmax(-1)
    return {"rows": rows, "logits_max_abs_diff": logits_diff, "same_argmax": bool(same.all()),
            "argmax_differs_at": [int(i) for i in (~same[0]).nonzero().flatten()],
            "positions": idx.size(1)}


def port_report(model, ids: list[int]) -> dict:
    """Port a `transformers` GPT-2 into gptcore's GPT and compare the two on the token ids
    `ids` (at most the context): compare_with_hf's report. The port is dropped afterwards.

    A gptcore GPT (random weights, the shipped model, a learner's) is first written into
    transformers' GPT-2 with `to_hf`: then transformers computes with the very same weights."""
    hf_model = to_hf(model) if isinstance(model, GPT) else model
    ours = from_hf(hf_model)
    return compare_with_hf(hf_model, ours, torch.tensor([ids[: ours.config.block_size]]))
