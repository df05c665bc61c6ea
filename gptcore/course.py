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
