"""BPE training time for a 1024-token vocabulary: gptcore's incremental trainer, the naive
recount it is tested against, and Hugging Face `tokenizers` (Rust) on the same text.

    python -m benchmarks.bpe --corpus ../shared/data/tinyshakespeare.txt
"""
from benchmarks.common import parser, report, setup, timed
from gptcore.tokenizers import BPETokenizer


def hf_bpe(text: str, vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([text], trainer=trainer)
    return tok


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--vocab-size", type=int, default=1024)
    p.add_argument("--skip-naive", action="store_true", help="the naive recount takes minutes")
    args = p.parse_args(argv)
    text = setup(args)
    fast, t_fast = timed(BPETokenizer.train, text, args.vocab_size)
    rows = [{"trainer": "gptcore incremental (Python)", "seconds": t_fast,
             "merges": fast.n_merges}]
    if not args.skip_naive:
        naive, t_naive = timed(BPETokenizer.train_naive, text, args.vocab_size)
        assert naive.merges == fast.merges, "the incremental trainer must equal the naive one"
        rows.append({"trainer": "naive recount (Python)", "seconds": t_naive, "merges": naive.n_merges})
    hf, t_hf = timed(hf_bpe, text, args.vocab_size)
    rows.append({"trainer": "HF tokenizers BpeTrainer (Rust)", "seconds": t_hf,
                 "merges": hf.get_vocab_size() - 256})
    summary = {"corpus_chars": len(text), "vocab_size": args.vocab_size}
    if not args.skip_naive:
        summary["speedup_vs_naive"] = rows[1]["seconds"] / t_fast
    return report("bpe_training", rows, summary)


if __name__ == "__main__":
    main()
