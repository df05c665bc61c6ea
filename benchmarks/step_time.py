"""Training-step time (forward, backward, AdamW) of gptcore's GPT against `transformers`'
GPT2LMHeadModel and a minimal nanoGPT-style model, same config and batch, alternated in one
process so that machine noise hits all three alike.

    python -m benchmarks.step_time
"""
import statistics
import time

import torch

from benchmarks.common import parser, report
from benchmarks.nanogpt_reference import NanoGPT
from gptcore.model import GPT, GPTConfig


def make_step(model, lr=1e-3):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, foreach=True)

    def step(x, y):
        out = model(x, labels=y) if hasattr(model, "transformer") and not isinstance(model, GPT) \
            else model(x, y)
        loss = out.loss if hasattr(out, "loss") else out[1]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--steps-per-round", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=12)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers import GPT2Config, GPT2LMHeadModel

    V, T, L, H, C = 65, 64, 4, 4, 128  # nanoGPT's CPU "baby GPT", character level
    torch.manual_seed(0)
    models = {
        "gptcore GPT": GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=H, n_embd=C)),
        "transformers GPT2LMHeadModel": GPT2LMHeadModel(GPT2Config(
            vocab_size=V, n_positions=T, n_layer=L, n_head=H, n_embd=C, resid_pdrop=0,
            embd_pdrop=0, attn_pdrop=0)),
        "nanoGPT-style minimal model": NanoGPT(V, T, L, H, C),
    }
    steps = {name: make_step(m.train()) for name, m in models.items()}
    x = torch.randint(0, V, (args.batch_size, T))
    y = torch.randint(0, V, (args.batch_size, T))
    for step in steps.values():  # warm up
        for _ in range(3):
            step(x, y)
    times = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.steps_per_round):
                step(x, y)
            times[name].append((time.perf_counter() - start) / args.steps_per_round)
    med = {name: statistics.median(t) for name, t in times.items()}
    ours = med["gptcore GPT"]
    rows = [{"model": name, "ms/step (median)": 1000 * t, "tokens/s": args.batch_size * T / t,
             "gptcore speedup": t / ours} for name, t in med.items()]
    return report("training_step", rows, {
        "config": f"{L} layers, {H} heads, {C} wide, block {T}, vocab {V}, batch {args.batch_size}",
        "speedup_vs_transformers": med["transformers GPT2LMHeadModel"] / ours,
        "speedup_vs_nanogpt_style": med["nanoGPT-style minimal model"] / ours,
    })


if __name__ == "__main__":
    main()
