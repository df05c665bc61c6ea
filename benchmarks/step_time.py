"""Training-step time (forward, backward, AdamW) of nanoGPT's CPU "baby GPT" (4 layers × 4
heads × 128, context 64, 65 characters) trained from scratch: gptcore's GPT against the real
nanoGPT model (imported from ../shared/reference/nanogpt; skipped when absent) and
`transformers`' GPT2LMHeadModel, at batch 12 (nanoGPT's README recipe) and 32 (lesson 5).

    python -m benchmarks.step_time

gptcore runs its from-scratch activation, the exact (erf) GELU ("gelu_exact"), which is also
nanoGPT's; nanoGPT starts from gptcore's weights and must compute the same loss. gptcore with
GPT-2's tanh approximation ("gelu", what a port of GPT-2 needs) is timed beside it, so is
GPT2LMHeadModel with its GPT-2 configuration ("gelu_new", the same tanh formula).
Biases are on (GPT2LMHeadModel has no switch for them). In each round every model takes a
few steps, in a random order, so that the machine's drift hits all of them alike.
"""
import random
import statistics
import time

import torch

from benchmarks import nanogpt
from benchmarks.common import load_average, parser, report
from gptcore.model import GPT, GPTConfig

V, T, L, H, C = 65, 64, 4, 4, 128
OURS, TANH = "gptcore GPT (gelu_exact)", "gptcore GPT (gelu: GPT-2's tanh)"
NANO, HF = "nanoGPT model.py (real)", "transformers GPT2LMHeadModel (gelu_new)"


def make_step(model, loss_of):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)

    def step(x, y):
        loss_of(model, x, y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def own_loss(model, x, y):
    return model(x, y)[1]


def hf_loss(model, x, y):
    return model(input_ids=x, labels=y).loss


def gptcore(activation: str) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=H, n_embd=C,
                         activation=activation))


def builders() -> dict:
    """name -> a function that builds (model, loss_of(model, x, y)) afresh."""
    from transformers import GPT2Config, GPT2LMHeadModel

    out = {OURS: lambda: (gptcore("gelu_exact"), own_loss),
           TANH: lambda: (gptcore("gelu"), own_loss)}
    module = nanogpt.load()
    if module is not None:
        def nano():
            model = nanogpt.build(module, V, T, L, H, C, bias=True)
            model.load_state_dict(gptcore("gelu_exact").state_dict())  # GPT-2's names, both
            return model, own_loss
        out[NANO] = nano
    out[HF] = lambda: (GPT2LMHeadModel(GPT2Config(
        vocab_size=V, n_positions=T, n_layer=L, n_head=H, n_embd=C, resid_pdrop=0, embd_pdrop=0,
        attn_pdrop=0)), hf_loss)
    return out


def time_batch(batch_size: int, rounds: int, steps_per_round: int) -> dict:
    """Median seconds per step of each model at this batch size.

    Every round builds the models afresh, in that round's random order, and warms them up:
    where a model's tensors land in memory moves its speed by a few percent, so none keeps
    one place.
    """
    build = builders()
    x = torch.randint(0, V, (batch_size, T), generator=torch.Generator().manual_seed(batch_size))
    y = torch.randint(0, V, (batch_size, T), generator=torch.Generator().manual_seed(-batch_size))
    if NANO in build:  # the same computation
        with torch.no_grad():
            ours, nano = build[OURS]()[0], build[NANO]()[0]
            assert abs(ours(x, y)[1].item() - nano(x, y)[1].item()) < 1e-5
    names, shuffle = list(build), random.Random(0).shuffle
    times = {name: [] for name in names}
    for _ in range(rounds):
        order = names[:]
        shuffle(order)  # a model's step runs faster or slower after another's: mix who follows whom
        steps = {}
        for name in order:
            model, loss_of = build[name]()
            steps[name] = make_step(model.train(), loss_of)
            for _ in range(2):
                steps[name](x, y)
        for name in order:
            start = time.perf_counter()
            for _ in range(steps_per_round):
                steps[name](x, y)
            times[name].append((time.perf_counter() - start) / steps_per_round)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--steps-per-round", type=int, default=4)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[12, 32])
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load = load_average()
    rows, summary = [], {"config": f"{L} layers, {H} heads, {C} wide, block {T}, vocab {V}"}
    for batch in args.batch_sizes:
        med = time_batch(batch, args.rounds, args.steps_per_round)
        ours = med[OURS]
        rows += [{"batch": batch, "model": name, "ms/step (median)": 1000 * t,
                  "tokens/s": batch * T / t, "its time / gptcore's": t / ours}
                 for name, t in med.items()]
        if NANO in med:
            summary[f"speedup_vs_nanogpt_b{batch}"] = med[NANO] / ours
        summary[f"speedup_vs_transformers_b{batch}"] = med[HF] / ours
        summary[f"same_gelu_vs_transformers_b{batch}"] = med[HF] / med[TANH]  # both tanh
        summary[f"tanh_gelu_step_cost_b{batch}"] = med[TANH] / ours
    if nanogpt.load() is None:
        summary["nanogpt"] = nanogpt.MISSING
    summary["load_average_before"] = load
    return report("training_step", rows, summary)


if __name__ == "__main__":
    main()
