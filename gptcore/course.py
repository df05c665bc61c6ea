"""The course: its five lessons in order, as the book tells them.

Each lesson mirrors a chapter of the tutorial "Building GPT Step-by-Step" and has a number, a
title, the name of its notebook (the tutorial's chapter name, `1_Setup` … `5_Training`) and a
short explanation in markdown with its key formula. This is the one registry of lesson titles
and order: the app's lesson pages (`classroom.lessons`) and the notebooks (`gptcore.notebooks`)
both read it.

    >>> CHAPTERS[2].notebook, CHAPTERS[2].title
    ('3_Attention', 'Attention')
"""
from __future__ import annotations

from dataclasses import dataclass

COURSE_TITLE = "Building GPT, step by step"


@dataclass(frozen=True)
class Chapter:
    """One lesson of the course, as the book tells it (no app wording here)."""

    number: int  # 1-5
    title: str
    notebook: str  # file name of its notebook, without .ipynb
    explanation: str  # markdown; formulas between $$ … $$


CHAPTERS: tuple[Chapter, ...] = (
    Chapter(1, "Setup: meet a real GPT", "1_Setup", r"""
A GPT reads text as **tokens**, ids in a vocabulary of $V$ entries. At every position it outputs
one score per token of the vocabulary, the **logits** $z$, and softmax turns them into the
probability of each possible next token. Dividing by a **temperature** $T$ first sharpens
($T < 1$) or flattens ($T > 1$) the distribution:

$$p_i = \frac{e^{z_i / T}}{\sum_{j=1}^{V} e^{z_j / T}}$$

Generating is a loop: pick one token from $p$, append it, ask again. **Greedy** decoding always
takes the most likely token; **sampling** draws from $p$ after cutting off its unlikely tail:
**top-k** keeps the $k$ most likely tokens, **top-p** the smallest set whose probability reaches
$p$. The book's sampling code is in `gptcore/generate.py`.
"""),
    Chapter(2, "Tokenization and the dataloader", "2_Tokenization", r"""
A **tokenizer** turns text into ids: one per character, per word, or per **BPE** piece.
Byte-pair encoding starts from the 256 bytes and repeatedly replaces the most frequent pair of
neighbouring tokens with a new token, so that frequent words end up as one token each. GPT-2's
vocabulary is 256 bytes + 50,000 merges + one end-of-text token = 50,257.

The **dataloader** cuts the stream of ids into windows of $B$ tokens (the block size). The
model learns to predict each next token, so the target $y$ is the input $x$ shifted by one:

$$x = \text{ids}[s : s + B] \qquad y = \text{ids}[s + 1 : s + B + 1]$$

With windows starting every $S$ tokens, $N$ ids give $\lfloor (N - B - 1) / S \rfloor + 1$
windows. Validation is the end of the stream, cut by position: windows overlap, so a shuffled
split would leak validation text into training (the book's code is in `gptcore/tokenizers.py`
and `gptcore/data.py`).
"""),
    Chapter(3, "Attention", "3_Attention", r"""
Attention lets every token take a **weighted average** of what the other tokens carry. Each
token emits a **query** $q$, a **key** $k$ and a **value** $v$ (three linear maps of its vector).
Token $i$ weighs token $j$ by the softmax of $q_i \cdot k_j$, divided by $\sqrt{d_k}$ so that the
scores keep unit variance whatever the width; the **causal mask** $M$ ($-\infty$ where $j > i$)
hides the future:

$$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}} + M\right)V$$

**Multi-head** attention cuts the $C$ channels into $n_h$ heads of $h_s = C / n_h$ channels, runs
attention in every head at once, and puts the heads' outputs side by side again:
(B, T, C) → (B, $n_h$, T, $h_s$) → (B, T, C). The book's code is in `gptcore/attention.py`.
"""),
    Chapter(4, "GPT architecture", "4_GPT_Architecture", r"""
A GPT adds a token embedding and a position embedding, runs the sum through $L$ identical
**blocks**, then a final LayerNorm and a linear head that gives one logit per vocabulary entry.
GPT-2's block is **pre-LN**: each sublayer reads a normalised copy of the **residual stream**
$x$ and adds its result back:

$$x \leftarrow x + \mathrm{Attention}(\mathrm{LN}_1(x)) \qquad
x \leftarrow x + \mathrm{MLP}(\mathrm{LN}_2(x))$$

LayerNorm centres each vector on 0 and scales it to spread 1 over its channels, then applies a
learned scale and shift; the MLP widens each vector to $4C$ channels, applies GELU and projects
back to $C$. With width $C$ a block holds $12C^2 + 13C$ parameters, biases included. The book's
code is in `gptcore/model.py`.
"""),
    Chapter(5, "Training lab", "5_Training", r"""
Training repeats one step: take a batch of windows, measure how surprised the model is by each
true next token, backpropagate, clip the gradient norm, and let AdamW nudge every weight. The
loss is the **cross-entropy**: the mean negative log-probability of the true next token, in nats.
Its exponential, the **perplexity**, reads as the number of equally likely tokens the model
still hesitates between:

$$\mathcal{L} = -\frac{1}{N} \sum_{t} \ln p_\theta(x_{t+1} \mid x_{\le t}) \qquad
\mathrm{PPL} = e^{\mathcal{L}}$$

An untrained model spreads its probability evenly, so its loss starts near $\ln V$. The book's
trainer (`gptcore/trainer.py`) warms the learning rate up linearly, then lowers it along a
cosine curve.
"""),
)
BY_NUMBER: dict[int, Chapter] = {chapter.number: chapter for chapter in CHAPTERS}

# Each chapter's exercises and predict-then-see questions, by id, in the order its lesson sets
# them: the course's table of contents. `gptcore.exercises` defines and checks them (a test
# holds the two equal); the list lives here, free of torch, so that a table of contents, such
# as the app's home page with a learner's progress, opens without loading the checkers.
EXERCISE_IDS: dict[int, tuple[str, ...]] = {
    1: ("generate.top_k_filter", "generate.top_p_filter"),
    2: ("tokenizers.merge_pair", "data.SlidingWindowDataset", "data.train_val_split",
        "data.random_batch"),
    3: ("attention.causal_mask", "attention.scaled_dot_product_attention",
        "attention.split_heads", "attention.merge_heads"),
    4: ("model.layer_norm", "model.gelu", "model.Block"),
    5: ("train.train_step", "train.perplexity"),
}
QUESTION_IDS: dict[int, tuple[str, ...]] = {
    1: ("generate.top_k_one", "generate.nucleus_size"),
    2: ("data.window_count", "tokenizers.merge_length"),
    3: ("attention.saturation", "attention.head_shape"),
    4: ("model.block_params", "model.layer_norm_mean"),
    5: ("train.untrained_loss", "train.perplexity_of"),
}

# The words the lessons use, each in one or two sentences, as the lessons mean them.
GLOSSARY: dict[str, str] = {
    "token": "A piece of text the model reads as one unit (a character, a word or a BPE "
             "piece), numbered by its id in the vocabulary.",
    "vocabulary (V)": "Every token a tokenizer can produce; GPT-2's has 50,257.",
    "BPE (byte-pair encoding)": "A tokenizer that starts from the 256 bytes and repeatedly "
                                "merges the most frequent neighbouring pair into a new token. "
                                "GPT-2 first splits text into chunks with a regex, and pairs "
                                "never cross a chunk.",
    "context (block size, T)": "How many tokens the model reads at once; a training window "
                               "has this many inputs.",
    "embedding": "A learned vector per token id (token embedding) and per position (position "
                 "embedding); their sum is what the first block reads.",
    "logits": "One score per vocabulary token at each position; softmax turns them into "
              "next-token probabilities.",
    "softmax": "exp of each score divided by the sum of the exps: positive numbers that sum "
               "to 1.",
    "temperature": "Logits are divided by it before the softmax: below 1 sharpens the "
                   "distribution, above 1 flattens it.",
    "top-k / top-p": "Sampling filters: keep the k most likely tokens, or the smallest set "
                     "whose probability reaches p.",
    "attention": "Each token's output is a weighted average of every visible token's value "
                 "vector, weighted by the softmax of query·key scores.",
    "query, key, value (q, k, v)": "Three linear maps of a token's vector: what it looks "
                                   "for, what it offers to be found by, and what it passes on.",
    "causal mask": "Hides every later token from each position (score −∞ before the "
                   "softmax), so the model cannot read the token it must predict.",
    "head": "One attention computation on its own slice of the channels; multi-head "
            "attention runs several side by side.",
    "residual stream": "The vector each block adds its result to (x + f(x)); gradients flow "
                       "straight through the additions.",
    "LayerNorm": "Centres each vector on 0 and scales it to variance 1 over its channels, "
                 "then applies a learned scale and shift.",
    "pre-LN / post-LN": "Where LayerNorm sits: before each sublayer, inside the residual "
                        "branch (GPT-2), or after the addition (the original Transformer).",
    "GELU": "The MLP's activation, x·Φ(x) (Φ the normal CDF); GPT-2 uses a tanh "
            "approximation of it.",
    "weight tying": "The head reuses the token embedding matrix, saving V·C parameters.",
    "KV cache": "During generation, the keys and values of tokens already read are kept, so "
                "each new token costs one position's forward pass instead of the whole "
                "prefix's.",
    "cross-entropy (the loss)": "The mean of −ln p(true next token), in nats; an untrained model "
                          "scores about ln V.",
    "perplexity": "e^loss: as unsure as a uniform choice among that many tokens.",
    "AdamW": "The optimizer: each weight moves by a running mean of its gradient divided by "
             "the root of a running mean of its square; weight decay shrinks it towards 0 "
             "apart from that step (decoupled).",
    "warmup and cosine decay": "The learning rate rises linearly for the first steps, then "
                               "falls along half a cosine to a minimum.",
    "epoch": "One pass over every training window.",
    "train / validation split": "The text the model learns from and the text held out to "
                                "measure it, cut by position so overlapping windows never "
                                "leak one into the other.",
}

# What the course builds on, cited where the lessons use it.
REFERENCES: tuple[str, ...] = (
    "The tutorial this course follows: *Building GPT Step-by-Step* (chapters 1 Setup to "
    "5 Training).",
    "Vaswani et al. (2017), *Attention Is All You Need*, NeurIPS. arXiv:1706.03762. "
    "Scaled dot-product and multi-head attention (lesson 3).",
    "Radford et al. (2019), *Language Models are Unsupervised Multitask Learners*, OpenAI. "
    "GPT-2: byte-level BPE, pre-LN blocks, the weights lessons 1 and 4 load.",
    "Kaplan et al. (2020), *Scaling Laws for Neural Language Models*. arXiv:2001.08361. "
    "The 2N + 2·L·T·C forward FLOPs per token of lesson 4.",
    "Sennrich, Haddow and Birch (2016), *Neural Machine Translation of Rare Words with "
    "Subword Units*, ACL. arXiv:1508.07909. Byte-pair encoding (lesson 2).",
    "Ba, Kiros and Hinton (2016), *Layer Normalization*. arXiv:1607.06450 (lesson 4).",
    "Hendrycks and Gimpel (2016), *Gaussian Error Linear Units (GELUs)*. arXiv:1606.08415 "
    "(lesson 4).",
    "Xiong et al. (2020), *On Layer Normalization in the Transformer Architecture*, ICML. "
    "arXiv:2002.04745. Why pre-LN keeps the gradients of every layer in range at the start of training (lesson 4).",
    "Loshchilov and Hutter (2019), *Decoupled Weight Decay Regularization*, ICLR. "
    "arXiv:1711.05101. AdamW (lesson 5).",
    "Karpathy, *nanoGPT* (github.com/karpathy/nanoGPT, MIT). The baby-GPT recipe lesson 5 "
    "and the benchmarks compare against.",
)
