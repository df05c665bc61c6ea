"""Shared fixtures: tiny seeded GPT-2 models saved locally (never downloaded)."""
import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def make_tiny_gpt2(seed=0, n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=50257,
                   perturb=0.0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(n_layer=n_layer, n_head=n_head, n_embd=n_embd, n_positions=n_positions,
                        vocab_size=vocab_size, bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config).eval()
    if perturb:  # GPT-2 starts with zero biases and unit LayerNorms: make every weight count
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * perturb)
    return model


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory):
    """A GPT-2 family model with random weights and GPT-2's vocabulary, saved like DistilGPT2."""
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    make_tiny_gpt2(perturb=0.02).save_pretrained(folder)
    return folder


REPORT: list[dict] = []  # classroom checks: input -> behaviour, printed at the end of the run


def pytest_terminal_summary(terminalreporter):
    if not REPORT:
        return
    tr = terminalreporter
    tr.section("classroom report: input -> behaviour")
    width = max(len(r["page"]) for r in REPORT)
    width_in = max(len(r["input"]) for r in REPORT)
    for r in REPORT:
        tr.write_line(f"{r['page']:<{width}}  {r['input']:<{width_in}}  {r['behaviour']}")
