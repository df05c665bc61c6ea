"""Generation speed: 256 new tokens with gptcore's KV cache, without it (recomputing the whole
prefix each step), and with `transformers`' generate on the same weights. The model has
DistilGPT2's shape (6 layers, 12 heads, 768 wide), random weights: lesson 1's model.

    python -m benchmarks.generation
"""
import statistics
import time

import torch

from benchmarks.common import parser, report
from gptcore.generate import generate
from gptcore.model import GPT, GPTConfig


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50257, block_size=1024, n_layer=6, n_head=12, n_embd=768)).eval()
    hf = model.to_hf()
    prompt = torch.randint(0, 50257, (1, 16), generator=torch.Generator().manual_seed(0))
    n = args.new_tokens

    def run(fn, repeats=args.repeats):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - start)
        return out, statistics.median(times)

    cached, t_cached = run(lambda: generate(model, prompt, n, temperature=0))
    plain, t_plain = run(lambda: generate(model, prompt, n, temperature=0, use_cache=False), 1)
    ref, t_hf = run(lambda: hf.generate(prompt, max_new_tokens=n, do_sample=False,
                                        pad_token_id=0, eos_token_id=None))
    assert torch.equal(cached, plain) and torch.equal(cached, ref), "all three must agree"
    rows = [{"generator": name, "seconds": t, "tokens/s": n / t} for name, t in [
        ("gptcore, KV cache", t_cached), ("gptcore, recompute prefix", t_plain),
        ("transformers generate (its cache)", t_hf)]]
    return report("generation", rows, {"new_tokens": n, "kv_cache_speedup": t_plain / t_cached,
                                       "vs_transformers": t_hf / t_cached,
                                       "identical_greedy_text": True})


if __name__ == "__main__":
    main()
