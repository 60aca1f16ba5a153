"""The heads student: a sentence embedding with small multi-task heads, one per tool (SPEC 8).

    intent -> all-MiniLM-L6-v2 sentence embedding (B, 384), unit length
           +  a bag of hashed word and character n-grams (fastText-style), learned
           -> shared MLP trunk (B, hidden)
           -> used          (B, 3)   logits of "tool used" for adjust, selective_adjust, filter
              adjust        (B, 14)  tanh, the sliders / 100
              selective     (B, 12)  tanh, the colour channels / 100
              filter_name   (B, F)   logits over tools.FILTER_NAMES
              intensity     (B,)     sigmoid, the filter intensity / 100

Training losses: BCE on "used"; for each vector tool, over the intents whose ground truth uses it,
squared error plus (1 - cosine), because the metric is the cosine over TP intents (SPEC 5) and
squared error alone lets small vectors point anywhere; cross-entropy on the filter name and
squared error on the intensity, over the intents that use a filter.

Why the bag. A frozen mean-pooled sentence embedding places "increase the contrast" and "decrease
the contrast" close together (cosine ~0.9), blurs which of two edits goes which way ("brighter and
less saturated"), and barely sees numbers ("saturation -100"); trained on it alone, the heads
answered instructions the wrong way about one time in six. The bag adds what the words say
exactly: word unigrams and bigrams ("less saturated", "too dark"), signed numbers with their size,
and character trigrams of each word so that a typo ("contrats") still shares most of its
features. Each feature is hashed into `lexical_buckets` rows of an `EmbeddingBag` whose sum,
each feature weighted 1 / sqrt(the intent's feature count), is added to the trunk's first layer,
so the bag and the embedding are read together. It costs a few milliseconds per batch and no
download; `lexical_buckets=0` turns it off (the student as it was, and how runs saved before it
load). In training each intent's features are dropped at random
(`bag_dropout`, 30%), so that no one n-gram answers for an intent alone: on the paper-scale
demo it raised Overall by about .02 (.774 -> .797 and .776 -> .791 over two seeds) with the
same share of directions right.

Typos are corrected against the training intents' words before anything reads a request
("incrase the contrats" -> "increase the contrast"; `spelling`, on by default for new runs):
see `workbench.students.spelling`. A request of several clauses ("brighter and less saturated")
is answered clause by clause, each adjust slider from the clause that moves it most (`clauses`,
on by default for new runs; runs saved before it answer whole): see
`workbench.students.clauses`.

By default the encoder is frozen: the training intents are embedded once and only the heads are
trained (seconds to tens of seconds on a CPU). With `fine_tune_encoder`, that stage is followed
by `fine_tune_epochs` epochs in which the sentence-transformer runs inside the loop and is
trained together with the heads, everything at the small learning rate `encoder_lr` ("linear
probe, then fine-tune": the heads start good, so their gradients do not wreck the encoder).
It costs a full encoder forward and backward per batch (minutes per epoch on a CPU; a GPU is
advised) and the tuned encoder is saved with the heads.

Under `accelerate launch` with several processes both stages run data-parallel, each process on
its shard of every batch (`workbench.students.parallel`); every process embeds the whole
training set for stage 1.
"""

from __future__ import annotations

import copy
import json
import random
import re
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from workbench.embeddings import Encoder, embedding_dimension
from workbench.errors import WorkbenchError
from workbench.onnx_encoder import OnnxEncoder, load_twin, save_twin
from workbench.progress import Progress
from workbench.students.base import TrainingData, device_name
from workbench.students.clauses import answer_by_clauses
from workbench.students.parallel import data_parallel, index_loader
from workbench.students.spelling import Speller, corrected, tokenizer_words
from workbench.tools import (
    ADJUST_KEYS,
    COLOUR_CHANNELS,
    COLOURS,
    FILTER_NAMES,
    TOOLS,
    Answer,
    adjust_vector,
    parse_answer,
    selective_adjust_vector,
)

DEVICES = ("auto", "cpu", "cuda")
RUNTIMES = ("onnx", "torch")
CONFIG_FILE = "student.json"
HEADS_FILE = "heads.pt"
ENCODER_DIR = "encoder"
EMBED_BATCH = 256  # texts per encoder call when embedding the training set
_LEXICAL_TOKEN = re.compile(r"[+-]?\d+(?:\.\d+)?|[a-z]+|&")


@dataclass(frozen=True)
class HeadsConfig:
    """Every setting of the heads student, with its default; stored with the run as JSON."""

    encoder: str | None = None        # sentence-transformers path or hub id; None: all-MiniLM-L6-v2
    fine_tune_encoder: bool = False   # train the encoder too (slow on CPU); else embed once
    hidden: int = 256                 # width of the two trunk layers
    dropout: float = 0.1
    epochs: int = 40
    lr: float = 5e-3                  # heads (AdamW, cosine decay to 0 over all steps)
    fine_tune_epochs: int = 3         # with fine_tune_encoder: joint epochs after `epochs`
    encoder_lr: float = 5e-5          # with fine_tune_encoder: encoder and heads, joint stage
    batch_size: int = 128
    weight_decay: float = 1e-4
    cosine_weight: float = 1.0        # weight of (1 - cosine) beside squared error (vector tools)
    seed: int = 0
    device: str = "auto"              # auto | cpu | cuda (auto: the GPU when there is one)
    runtime: str = "onnx"             # onnx: a saved student embeds with ONNX Runtime on CPU
    lexical_buckets: int = 16_384     # hashed n-gram features beside the embedding; 0: none
    lexical_version: int = 2          # which features the bag reads (LEXICAL_VERSIONS)
    bag_dropout: float = 0.3          # share of an intent's bag features dropped per step
    clauses: bool = True              # a request of several clauses: sliders clause by clause
    spelling: bool = True             # typos corrected against the training words first

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        for name in ("hidden", "epochs", "batch_size", "fine_tune_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.lexical_buckets, bool) or not isinstance(self.lexical_buckets, int) \
                or self.lexical_buckets < 0:
            raise ValueError(f"lexical_buckets must be a non-negative integer, got "
                             f"{self.lexical_buckets!r}")
        if self.lexical_version not in LEXICAL_VERSIONS:
            raise ValueError(f"lexical_version must be one of "
                             f"{', '.join(map(str, LEXICAL_VERSIONS))}, got "
                             f"{self.lexical_version!r}")
        for name in ("lr", "encoder_lr", "weight_decay", "cosine_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        for name in ("dropout", "bag_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")


# -- lexical features ----------------------------------------------------------------------------
# Version 1: words, bigrams, number signs and sizes, trigrams. Version 2 adds what ties a word to
# a word one further on and a number to the word it sets: skip-bigrams ("not so saturated" ->
# "not _ saturated", "too _ orange") and each number's sign beside its neighbouring words
# ("shadows +30" -> "shadows #+", "+20 saturation" -> "#+ saturation"), which the sum of
# single words and numbers cannot say. Runs keep the version they were trained with.
LEXICAL_VERSIONS = (1, 2)


def _is_number(word: str) -> bool:
    return word[0] in "+-" or word[0].isdigit()


def lexical_features(text: str, version: int = 2) -> list[str]:
    """The words of `text` as the bag sees them: lower-cased words and signed numbers, word
    bigrams, each number's sign and size ("#-", "#big"), and the character trigrams of each word
    with its boundaries ("<co", "con", ... "st>"), so a typo keeps most of a word's features;
    from version 2 also skip-bigrams and each number's sign beside its neighbours."""
    words = _LEXICAL_TOKEN.findall(" ".join(text.lower().split()))
    features = list(words)
    features += [f"{a} {b}" for a, b in pairwise(words)]
    for word in words:
        if _is_number(word):
            sign = "-" if word.startswith("-") else "+"
            size = abs(float(word))
            features += [f"#{sign}", f"#{sign}{'big' if size >= 50 else 'small'}"]
        elif len(word) > 2:
            padded = f"<{word}>"
            features += [padded[i:i + 3] for i in range(len(padded) - 2)]
    if version >= 2:
        features += [f"{a} _ {b}" for a, b in zip(words, words[2:])]
        for i, word in enumerate(words):
            if _is_number(word):
                sign = "#-" if word.startswith("-") else "#+"
                if i > 0 and not _is_number(words[i - 1]):
                    features.append(f"{words[i - 1]} {sign}")
                if i + 1 < len(words) and not _is_number(words[i + 1]):
                    features.append(f"{sign} {words[i + 1]}")
    return features


def lexical_ids(text: str, buckets: int, version: int = 2) -> list[int]:
    """`lexical_features` hashed into [0, buckets) (CRC-32: the same on every machine and run).
    An empty text gets one id, so every intent has a bag."""
    return [zlib.crc32(feature.encode("utf-8")) % buckets
            for feature in lexical_features(text, version)] or [0]


def _bags(id_lists: Sequence[list[int]], device: str, drop: float = 0.0,
          rng: random.Random | None = None) -> tuple[Any, Any, Any]:
    """`EmbeddingBag` inputs for a batch: the ids end to end, where each intent's start, and
    each feature's weight 1 / sqrt(features of its intent): a sum that neither grows with the
    length of the request nor drowns one telling word among twenty trigrams as a mean would.

    With `drop` and `rng` (training), each feature is left out with probability `drop` (one is
    always kept), so no single feature can carry an intent alone."""
    import torch

    if drop and rng is not None:
        id_lists = [[i for i in ids if rng.random() >= drop] or [rng.choice(ids)]
                    for ids in id_lists]

    offsets = [0]
    for ids in id_lists[:-1]:
        offsets.append(offsets[-1] + len(ids))
    flat = [i for ids in id_lists for i in ids]
    weights = [len(ids) ** -0.5 for ids in id_lists for _ in ids]
    return (torch.tensor(flat, dtype=torch.long, device=device),
            torch.tensor(offsets, dtype=torch.long, device=device),
            torch.tensor(weights, dtype=torch.float32, device=device))


# -- model ---------------------------------------------------------------------------------------
def _build_net(dim: int, hidden: int, dropout: float, n_filters: int, buckets: int = 0) -> Any:
    import torch
    from torch import nn

    class HeadsNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = nn.Linear(dim, hidden)
            # The bag's mean joins the embedding in the first layer (none when buckets is 0).
            self.bag = nn.EmbeddingBag(buckets, hidden, mode="sum", sparse=True) \
                if buckets else None
            self.trunk = nn.Sequential(
                nn.GELU(), nn.Dropout(dropout),
                nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout))
            self.used = nn.Linear(hidden, len(TOOLS))
            self.adjust = nn.Linear(hidden, len(ADJUST_KEYS))
            self.selective = nn.Linear(hidden, len(COLOURS) * len(COLOUR_CHANNELS))
            self.filter_name = nn.Linear(hidden, n_filters)
            self.intensity = nn.Linear(hidden, 1)

        def forward(self, x: torch.Tensor,  # x (B, D)
                    bags: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
                    ) -> dict[str, torch.Tensor]:
            first = self.first(x)                                          # (B, H)
            if self.bag is not None and bags is not None:
                ids, offsets, weights = bags
                first = first + self.bag(ids, offsets, per_sample_weights=weights)  # (B, H)
            h = self.trunk(first)                                          # (B, H)
            return {
                "used": self.used(h),                                      # (B, 3) logits
                "adjust": torch.tanh(self.adjust(h)),                      # (B, 14)
                "selective": torch.tanh(self.selective(h)),                # (B, 12)
                "filter_name": self.filter_name(h),                        # (B, F) logits
                "intensity": torch.sigmoid(self.intensity(h)).squeeze(-1),  # (B,)
            }

    return HeadsNet()


def _build_joint(encoder: Any, net: Any, device: str) -> Any:
    """The encoder and the heads as one module (intent features -> head outputs), so that the
    fine-tuning stage trains, and under several processes DDP-wraps, both together."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Joint(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder, self.net = encoder, net

        def forward(self, features: dict[str, torch.Tensor],
                    bags: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
                    ) -> dict[str, torch.Tensor]:
            x = F.normalize(self.encoder(features)["sentence_embedding"], dim=-1)  # (B, D)
            return self.net(x.to(device), bags)

    return Joint()


def _targets(answers: Sequence[Answer], filter_names: Sequence[str]) -> dict[str, Any]:
    """The training targets as tensors on the CPU, scaled like the heads' outputs."""
    import torch

    index = {name: i for i, name in enumerate(filter_names)}
    return {
        "used": torch.tensor([[float(a.uses(t)) for t in TOOLS] for a in answers]),   # (N, 3)
        "adjust": torch.tensor([adjust_vector(a) for a in answers]) / 100.0,          # (N, 14)
        "selective": torch.tensor([selective_adjust_vector(a) for a in answers]) / 100.0,
        "filter_name": torch.tensor([index[a.filter.name] if a.filter else 0
                                     for a in answers]),                              # (N,)
        "intensity": torch.tensor([a.filter.intensity / 100.0 if a.filter else 0.0
                                   for a in answers]),                                # (N,)
    }


def _loss(out: dict[str, Any], target: dict[str, Any], cosine_weight: float) -> Any:
    import torch.nn.functional as F

    loss = F.binary_cross_entropy_with_logits(out["used"], target["used"])
    for column, key in ((0, "adjust"), (1, "selective")):
        mask = target["used"][:, column] > 0
        if mask.any():
            pred, true = out[key][mask], target[key][mask]         # (M, K)
            loss = loss + ((pred - true) ** 2).sum(-1).mean()
            loss = loss + cosine_weight * (1 - F.cosine_similarity(pred, true, dim=-1)).mean()
    mask = target["used"][:, 2] > 0
    if mask.any():
        loss = loss + F.cross_entropy(out["filter_name"][mask], target["filter_name"][mask])
        loss = loss + ((out["intensity"][mask] - target["intensity"][mask]) ** 2).mean()
    return loss


def _batch_counts(target: dict[str, Any]) -> Any:
    """(4,) float: the rows of a batch, and those whose ground truth uses adjust,
    selective_adjust and a filter: the denominators of `_loss`'s means."""
    import torch

    used = target["used"] > 0                                             # (B, 3)
    return torch.cat([torch.tensor([float(len(used))], device=used.device),
                      used.sum(0).float()])


def _shard_loss(out: dict[str, Any], target: dict[str, Any], cosine_weight: float,
                counts: Any, processes: int) -> Any:
    """`_loss` of one process's shard of a batch, as its share of the whole batch's loss: each
    term summed over the shard and divided by the whole batch's count (`counts`, as
    `_batch_counts` summed over the processes), times `processes`, since DDP averages the
    processes' gradients. The average is then the gradient of `_loss` on the whole batch, however
    unevenly the shards use each tool."""
    import torch.nn.functional as F

    rows, per_tool = counts[0], counts[1:]
    loss = F.binary_cross_entropy_with_logits(out["used"], target["used"], reduction="sum") \
        / (rows * len(TOOLS))
    for column, key in ((0, "adjust"), (1, "selective")):
        mask = target["used"][:, column] > 0
        if mask.any():
            pred, true = out[key][mask], target[key][mask]         # (M, K)
            per_row = ((pred - true) ** 2).sum(-1) \
                + cosine_weight * (1 - F.cosine_similarity(pred, true, dim=-1))  # (M,)
            loss = loss + per_row.sum() / per_tool[column]
    mask = target["used"][:, 2] > 0
    if mask.any():
        names = F.cross_entropy(out["filter_name"][mask], target["filter_name"][mask],
                                reduction="sum")
        intensity = ((out["intensity"][mask] - target["intensity"][mask]) ** 2).sum()
        loss = loss + (names + intensity) / per_tool[2]
    return loss * processes


def _renamed_layers(state: dict[str, Any]) -> dict[str, Any]:
    """A state saved when the first layer sat inside the trunk (trunk.0, its second linear
    layer trunk.3), under today's names (first, trunk.2); today's states pass unchanged."""
    if "trunk.0.weight" not in state:
        return state
    moved = {"trunk.0.": "first.", "trunk.3.": "trunk.2."}
    return {next((new + key[len(old):] for old, new in moved.items() if key.startswith(old)),
                 key): value for key, value in state.items()}


# -- the student ---------------------------------------------------------------------------------
class HeadsStudent:
    """Sentence embedding + multi-task heads. See the module docstring.

    `encoder` may be passed in (a loaded SentenceTransformer shared between students); it is
    never modified: fine-tuning works on a copy. Otherwise it is loaded on first use and kept.
    """

    kind = "heads"
    data_parallel = True   # trains on a shard of every batch under several processes

    def __init__(self, config: HeadsConfig | None = None, encoder: Encoder | None = None):
        self.config = config or HeadsConfig()
        self.device = device_name(self.config.device)
        self._encoder: Any = encoder
        self.net: Any = None
        self.filter_names: tuple[str, ...] = FILTER_NAMES
        self.history: list[float] = []   # mean training loss per epoch
        self.onnx: OnnxEncoder | None = None  # set by load() when an ONNX twin was saved
        self.speller: Speller | None = None   # with `spelling`: from the training intents
        self._id_lists: list[list[int]] = []  # the training intents' bags, while training

    @property
    def encoder(self) -> Any:
        """The SentenceTransformer itself: this student runs (and may fine-tune) it as a torch
        module, beyond the `Encoder` protocol."""
        if self._encoder is None:
            from workbench.embeddings import load_encoder

            self._encoder = load_encoder(self.config.encoder, self.device)
        return self._encoder

    def _encode(self, texts: Sequence[str]) -> Any:
        """Unit sentence embeddings (B, D) on self.device; with grad when the caller allows it."""
        import torch.nn.functional as F

        features = self._features(texts)
        return F.normalize(self.encoder(features)["sentence_embedding"], dim=-1).to(self.device)

    def _features(self, texts: Sequence[str]) -> dict[str, Any]:
        """The encoder's inputs for `texts` (token ids, attention mask), on its device."""
        encoder = self.encoder
        prepare = getattr(encoder, "preprocess", None) or encoder.tokenize  # ST >= 5 / older
        return {key: value.to(encoder.device) if hasattr(value, "to") else value
                for key, value in prepare(list(texts)).items()}

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> Any:
        """Frozen-encoder embeddings (N, D), in batches of similar length (less padding)."""
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        result = torch.empty((len(texts), embedding_dimension(self.encoder)),
                             device=self.device)
        self.encoder.eval()
        with torch.inference_mode():
            for start in range(0, len(order), EMBED_BATCH):
                chunk = order[start:start + EMBED_BATCH]
                result[chunk] = self._encode([texts[i] for i in chunk])
                if progress is not None:
                    progress("embed", min(start + EMBED_BATCH, len(texts)), len(texts))
        return result

    def _lexical_ids(self, text: str) -> list[int]:
        return lexical_ids(text, self.config.lexical_buckets, self.config.lexical_version)

    # -- train ----------------------------------------------------------------------------------
    def train(self, data: TrainingData, progress: Progress | None = None) -> None:
        """Fit the heads (then, with fine_tune_encoder, heads and encoder), seeded by config.seed.

        progress("epoch", i, total) counts the frozen epochs, then the joint ones."""
        if len(data.intents) != len(data.answers):
            raise ValueError(f"{len(data.intents)} intents but {len(data.answers)} answers")
        if not data.intents:
            raise WorkbenchError("the heads student needs at least one training intent")
        intents = list(data.intents)
        self.speller = Speller.from_texts(intents, tokenizer_words(self.encoder.tokenizer)) \
            if self.config.spelling else None
        target = {k: v.to(self.device) for k, v in _targets(data.answers, FILTER_NAMES).items()}
        embeddings = self.embed(intents, progress).clone()  # (N, D), outside inference mode
        self._id_lists = [self._lexical_ids(text) for text in intents] \
            if self.config.lexical_buckets else []
        self._fit(intents, embeddings, target, progress)
        if self.config.fine_tune_encoder:
            # Tune a copy, so an encoder shared with other students stays as it was.
            self._encoder = copy.deepcopy(self.encoder).to(self.device)
            self._fine_tune(intents, target, progress)
        self._id_lists = []

    def _fit(self, intents: list[str], embeddings: Any, target: dict[str, Any],
             progress: Progress | None) -> None:
        """Stage 1: a new net, trained on the frozen embeddings (N, D)."""
        import torch

        cfg = self.config
        # Initialisation and dropout draw from torch's global generator, the shuffle from its
        # own; nothing here uses numpy's.
        torch.manual_seed(cfg.seed)
        self.filter_names = FILTER_NAMES
        self.net = _build_net(embedding_dimension(self.encoder), cfg.hidden, cfg.dropout,
                              len(FILTER_NAMES), cfg.lexical_buckets).to(self.device)
        self.history = []
        self._epochs(self.net, lambda batch: (embeddings[batch.to(self.device)],), target,
                     [{"params": list(self.net.parameters()), "lr": cfg.lr}], cfg.epochs,
                     progress)

    def _fine_tune(self, intents: list[str], target: dict[str, Any],
                   progress: Progress | None) -> None:
        """Stage 2: encoder and heads together, at encoder_lr."""
        joint = _build_joint(self.encoder, self.net, self.device)
        params = [*self.net.parameters(), *self.encoder.parameters()]

        def features(batch: Any) -> tuple[dict[str, Any]]:
            return (self._features([intents[i] for i in batch.tolist()]),)

        self._epochs(joint, features, target,
                     [{"params": params, "lr": self.config.encoder_lr}],
                     self.config.fine_tune_epochs, progress, tune_encoder=True)

    def _epochs(self, model: Any, inputs: Any, target: dict[str, Any],
                groups: list[dict[str, Any]], epochs: int, progress: Progress | None,
                tune_encoder: bool = False) -> None:
        """`epochs` passes of AdamW with a cosine decay to 0 over `model` (the net, or the
        encoder and the net), called as model(*inputs(batch indices), bags) -> head outputs.

        Under several processes (`parallel.data_parallel`) each process takes its shard of
        every batch and the gradients are averaged: see `workbench.students.parallel`."""
        import torch

        cfg = self.config
        n = len(target["used"])
        total_epochs = cfg.epochs + (cfg.fine_tune_epochs if cfg.fine_tune_encoder else 0)
        # The bag's table gets sparse gradients (a batch touches a few thousand of its rows)
        # and lazy Adam on those rows alone; a dense AdamW step over the whole table cost
        # more than the rest of the step together.
        table = {id(self.net.bag.weight)} if self.net.bag is not None else set()
        dense = [{**g, "params": [p for p in g["params"] if id(p) not in table]} for g in groups]
        lazy = [{**g, "params": [p for p in g["params"] if id(p) in table]} for g in groups]
        optimisers: list[torch.optim.Optimizer] = [torch.optim.AdamW([g for g in dense if g["params"]],
                                        weight_decay=cfg.weight_decay)]
        if any(g["params"] for g in lazy):
            optimisers.append(torch.optim.SparseAdam([g for g in lazy if g["params"]]))
        steps_per_epoch = (n + cfg.batch_size - 1) // cfg.batch_size
        schedules = [torch.optim.lr_scheduler.CosineAnnealingLR(
            optimiser, T_max=epochs * steps_per_epoch) for optimiser in optimisers]
        shuffle = torch.Generator().manual_seed(cfg.seed + len(self.history))
        dropping = random.Random(cfg.seed + len(self.history))
        loader = index_loader(n, cfg.batch_size, shuffle)   # (B,) row numbers per batch
        group = data_parallel(self.device)
        if group is not None:
            group.check_batch_size(cfg.batch_size)
            group.check_sparse(model)
            # Dropout masks and dropped bag features differ between the shards.
            torch.manual_seed(cfg.seed + len(self.history) + 1 + group.index)
            dropping = random.Random(f"{cfg.seed + len(self.history)}/{group.index}")
            model, *optimisers, loader = group.prepare(model, *optimisers, loader)
        for _ in range(epochs):
            self.net.train()
            self.encoder.train(tune_encoder)
            total = 0.0
            seen = torch.zeros((), device=self.device)   # several processes: this shard's
            rows = torch.zeros((), device=self.device)   # share of loss x rows, and of rows
            for batch in loader:                 # alone: the batch; else this process's shard
                index = batch.to(self.device)
                bags = _bags([self._id_lists[i] for i in batch.tolist()], self.device,
                             cfg.bag_dropout, dropping) if self._id_lists else None
                out = model(*inputs(batch), bags)
                batch_target = {k: v[index] for k, v in target.items()}
                if group is None:
                    loss = _loss(out, batch_target, cfg.cosine_weight)
                else:
                    counts = group.total(_batch_counts(batch_target))   # (4,) whole batch
                    loss = _shard_loss(out, batch_target, cfg.cosine_weight, counts,
                                       group.processes)
                for optimiser in optimisers:
                    optimiser.zero_grad()
                if group is None:
                    loss.backward()
                else:
                    group.backward(loss)
                for optimiser, schedule in zip(optimisers, schedules, strict=True):
                    optimiser.step()
                    schedule.step()
                if group is None:
                    total += loss.item() * len(batch)
                else:   # this shard's share of the whole batch's mean loss, times its rows
                    seen += loss.detach() / group.processes * counts[0]
                    rows += counts[0] / group.processes
            if group is None:
                self.history.append(total / n)
            else:   # mean loss per row over the epoch's batches (the last one completed)
                loss_sum, rows_seen = group.total(torch.stack([seen, rows])).tolist()
                self.history.append(loss_sum / rows_seen)
            if progress is not None:
                progress("epoch", len(self.history), total_epochs)
        self.net.eval()
        self.encoder.eval()

    # -- predict --------------------------------------------------------------------------------
    def predict(self, intents: Sequence[str], batch_size: int = 256) -> list[Answer]:
        """One valid answer per intent. Any string is accepted: an empty or meaningless one is
        embedded like any other text and gets the answer the heads give to that embedding.
        With `spelling`, typos are corrected first (`workbench.students.spelling`); with
        `clauses`, a request of several clauses gets its sliders clause by clause
        (`workbench.students.clauses`)."""
        intents = corrected(self.speller, intents)
        whole = self._predict_whole(intents, batch_size)
        if not self.config.clauses:
            return whole
        return answer_by_clauses(intents, whole,
                                 lambda texts: self._predict_whole(texts, batch_size))

    def _predict_whole(self, intents: Sequence[str], batch_size: int) -> list[Answer]:
        import torch

        if self.net is None:
            raise WorkbenchError("the heads student is not trained")
        if self.encoder.training:  # a shared encoder someone left in training mode (dropout)
            self.encoder.eval()
        answers: list[Answer] = []
        with torch.inference_mode():
            for start in range(0, len(intents), batch_size):
                batch = intents[start:start + batch_size]
                if self.onnx is not None:  # ~3x faster for one intent on a CPU, same numbers
                    embeddings = torch.from_numpy(self.onnx.encode(batch)).to(self.device)
                else:
                    embeddings = self._encode(batch)
                bags = _bags([self._lexical_ids(text) for text in batch], self.device) \
                    if self.config.lexical_buckets else None
                out = self.net(embeddings, bags)
                answers.extend(self._decode({k: v.cpu().numpy() for k, v in out.items()}))
        return answers

    def _decode(self, out: dict[str, Any]) -> list[Answer]:
        """Head outputs (numpy, batch-first) -> valid answers, through parse_answer."""
        import numpy as np

        used = out["used"] > 0                                                   # sigmoid > 0.5
        adjust = np.clip(np.rint(out["adjust"] * 100), -100, 100).astype(int)    # (B, 14)
        selective = np.clip(np.rint(out["selective"] * 100), -100, 100).astype(int)
        names = out["filter_name"].argmax(-1)                                    # (B,)
        intensity = np.clip(np.rint(out["intensity"] * 100), 0, 100).astype(int)
        answers = []
        for i in range(len(used)):
            sel = selective[i].tolist()
            answers.append(parse_answer({
                "adjust": dict(zip(ADJUST_KEYS, adjust[i].tolist(), strict=True))
                if used[i, 0] else None,
                "selective_adjust": {
                    colour: {"saturation": sel[2 * c], "luminance": sel[2 * c + 1]}
                    for c, colour in enumerate(COLOURS)} if used[i, 1] else None,
                "filter": {"name": self.filter_names[int(names[i])],
                           "intensity": int(intensity[i])} if used[i, 2] else None,
            }))
        return answers

    # -- save / load ----------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    def size_bytes(self) -> int:
        """Parameters of the heads and of the encoder they need."""
        modules = [self.encoder] + ([self.net] if self.net is not None else [])
        return int(sum(p.numel() * p.element_size() for m in modules for p in m.parameters()))

    def save(self, folder: Path) -> None:
        import torch

        if self.net is None:
            raise WorkbenchError("the heads student is not trained; nothing to save")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_FILE).write_text(json.dumps({
            "kind": self.kind, "config": self.config_dict(),
            "filter_names": list(self.filter_names),
            "embedding_dim": embedding_dimension(self.encoder)}, indent=2) + "\n")
        torch.save(self.net.state_dict(), folder / HEADS_FILE)
        if self.config.fine_tune_encoder:
            self.encoder.save(str(folder / ENCODER_DIR))
        if self.config.runtime == "onnx":
            save_twin(self.encoder, folder)
        if self.speller is not None:
            self.speller.save(folder)

    @classmethod
    def load(cls, folder: Path, encoder: Encoder | None = None) -> HeadsStudent:
        """Restore a saved student; `encoder` is used only when the encoder was not tuned."""
        import torch

        folder = Path(folder)
        stored = json.loads((folder / CONFIG_FILE).read_text())
        stored["config"].setdefault("lexical_buckets", 0)  # saved before the bag existed
        stored["config"].setdefault("lexical_version", 1)  # saved before version 2
        stored["config"].setdefault("bag_dropout", 0.0)    # trained before bag dropout
        stored["config"].setdefault("clauses", False)      # answered whole before clauses
        stored["config"].setdefault("spelling", False)     # read typos as typed before
        config = HeadsConfig(**stored["config"])
        if config.fine_tune_encoder:
            from workbench.embeddings import load_encoder

            encoder = load_encoder(str(folder / ENCODER_DIR), device_name(config.device))
        student = cls(config, encoder)
        missing = [name for name in stored["filter_names"] if name not in FILTER_NAMES]
        if missing:
            raise WorkbenchError(f"{folder}: the model predicts filters that are no longer in "
                                 f"the catalogue ({', '.join(missing)}); retrain it")
        student.filter_names = tuple(stored["filter_names"])
        student.net = _build_net(stored["embedding_dim"], config.hidden, config.dropout,
                                 len(student.filter_names), config.lexical_buckets
                                 ).to(student.device)
        state = torch.load(folder / HEADS_FILE, map_location=student.device, weights_only=True)
        student.net.load_state_dict(_renamed_layers(state))
        student.net.eval()
        student.encoder.eval()
        if config.runtime == "onnx":
            student.onnx = load_twin(folder, student.encoder, student.device)
        if config.spelling:
            student.speller = Speller.load(folder, tokenizer_words(student.encoder.tokenizer))
        return student
