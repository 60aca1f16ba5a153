"""The generative seq2seq student (the paper's kind): intent text in, the three tool calls out as
one short text, e.g. `adjust exposure 10 contrast -5 ; selective orange 30 20 ; filter
warm_Golden 40` (concise, no rationale: SPEC 8).

Model. `model=None` (the default) builds, from what is on the machine, an encoder-decoder
(transformers' `EncoderDecoderModel`): the encoder is the bundled all-MiniLM-L6-v2 BERT
(pretrained, 384-d; its first `encoder_layers` of 6 layers kept, word embeddings frozen), the
decoder a small randomly initialised BERT with causal self-attention and cross-attention. The
decoder writes words of a closed target vocabulary: the tool words, the 14 slider and 6 colour
names, the filter names and every integer from -100 to 100 (266 words with specials).
Why this, measured on the demo corpus (7,777 training intents, a busy 2-core CPU):
- No T5 is possible offline: no T5 weights or SentencePiece model are on the machine and
  `sentencepiece` is not installed. MiniLM is the only pretrained text encoder there is.
- A closed word vocabulary rather than MiniLM's 30,522 WordPiece pieces on the decoder side: the
  output softmax over 30K pieces would be the largest single cost of a training step, WordPiece
  makes targets 40% longer (32 pieces against 23 words: `-35` is two pieces, `warm_Golden`
  three, lower-cased), and words keep the catalogue's spelling.
- 3 of MiniLM's 6 layers for 3 epochs beats all 6 layers for 2 epochs in the same CPU time
  (~15 minutes): RQ1 Overall .83 against .76 on the 1,000 test intents.
Training is a plain torch loop (AdamW, linear warm-up and decay, teacher forcing): shorter than
`Seq2SeqTrainer`. Under `accelerate launch` with several processes (GPUs) the same loop runs
data-parallel through accelerate's Accelerator (`workbench.students.parallel`). Any local path or hub id of a seq2seq
checkpoint (e.g. google/flan-t5-base, where the user has it) is fine-tuned instead when given as
`model`, with its own tokenizer on both sides and every parameter at `lr`.

Intents are read with their typos corrected against the training intents' words (`spelling`,
on by default for new runs; `workbench.students.spelling`). Every generated text goes through
`parse_generation`, which turns any text into a valid answer and lists what it had to repair;
the student counts repaired outputs in `last_parse_failures`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.embeddings import Encoder
from workbench.errors import WorkbenchError
from workbench.progress import Progress
from workbench.students.base import TrainingData, device_name
from workbench.students.parallel import data_parallel, index_loader
from workbench.students.spelling import Speller, corrected, tokenizer_words
from workbench.tools import (
    ADJUST_KEYS,
    COLOURS,
    FILTER_NAMES,
    INTENSITY_MAX,
    INTENSITY_MIN,
    SLIDER_MAX,
    SLIDER_MIN,
    TOOLS,
    Answer,
    ToolValidationError,
    parse_answer,
)

DEVICES = ("auto", "cpu", "cuda")
CONFIG_FILE = "student.json"
MODEL_DIR = "model"
TOKENIZER_DIR = "tokenizer"
TARGET_VOCAB_FILE = "target_vocab.json"

# ---------------------------------------------------------------------------------------------
# The target text: format and forgiving parse (pure: no torch)
# ---------------------------------------------------------------------------------------------
SEPARATOR = ";"
NONE = "none"
TOOL_WORDS = {"adjust": "adjust", "selective": "selective_adjust",
              "selective_adjust": "selective_adjust", "filter": "filter"}
SEGMENT_WORD = {"adjust": "adjust", "selective_adjust": "selective", "filter": "filter"}
# A filter whose intensity was cut off keeps its name at the middle of the range.
MISSING_INTENSITY = 50
# An unknown filter name is read as the nearest catalogue name when at most this many edits
# away (and the nearest is unique); otherwise the filter is dropped.
MAX_FILTER_EDITS = 2

_ADJUST_BY_LOWER = {key.lower(): key for key in ADJUST_KEYS}
_COLOUR_BY_LOWER = {colour.lower(): colour for colour in COLOURS}
_FILTER_BY_LOWER = {name.lower(): name for name in FILTER_NAMES}
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)|;")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def format_answer(answer: Answer) -> str:
    """The target text of an answer: three segments in tool order, only non-zero values.

    `adjust none` means the tool is unused; a bare `adjust` means used with every slider at 0.
    """
    if answer.adjust is None:
        adjust = f"adjust {NONE}"
    else:
        adjust = " ".join(["adjust"] + [f"{key} {value}" for key, value in answer.adjust.items()
                                         if value != 0])
    if answer.selective_adjust is None:
        selective = f"selective {NONE}"
    else:
        selective = " ".join(["selective"] + [
            f"{colour} {channels['saturation']} {channels['luminance']}"
            for colour, channels in answer.selective_adjust.items() if any(channels.values())])
    if answer.filter is None:
        filter_ = f"filter {NONE}"
    else:
        filter_ = f"filter {answer.filter.name} {answer.filter.intensity}"
    return f" {SEPARATOR} ".join((adjust, selective, filter_))


def parse_generation(text: str) -> tuple[Answer, list[str]]:
    """Any text -> a valid answer and the problems repaired on the way; never raises.

    Forgiving by design: case is ignored, tokenizer spacing (`warm _ golden`, `- 5`, `##`) is
    undone, unknown slider and colour names are dropped, values are clipped to the schema's range
    and rounded, the first of duplicated tools or keys wins, a tool with no segment is unused,
    and an unknown filter name becomes the nearest catalogue name within MAX_FILTER_EDITS edits
    (or its unique prefix, for truncated text), else the filter is dropped.
    """
    problems: list[str] = []
    if not isinstance(text, str):
        problems.append(f"output is a {type(text).__name__}, not text")
        text = ""
    segments = _segments(_tokens(text), problems)
    raw: dict[str, Any] = {}
    for tool in TOOLS:
        if tool not in segments:
            problems.append(f"no {SEGMENT_WORD[tool]} segment: {tool} unused")
            raw[tool] = None
            continue
        words = segments[tool]
        if words and words[0].lower() == NONE:
            if len(words) > 1:
                problems.append(f"{tool}: {len(words) - 1} token(s) after '{NONE}' ignored")
            raw[tool] = None
        elif tool == "adjust":
            raw[tool] = _parse_adjust(words, problems)
        elif tool == "selective_adjust":
            raw[tool] = _parse_selective(words, problems)
        else:
            raw[tool] = _parse_filter(words, problems)
    try:
        return parse_answer(raw), problems
    except ToolValidationError as error:   # not expected: every value above is repaired
        return Answer(), problems + [f"repaired output still invalid ({error}): nothing used"]


def _tokens(text: str) -> list[str]:
    text = re.sub(r"\s*##", "", text)                  # WordPiece continuations
    text = re.sub(r"\s*_\s*", "_", text)               # `warm _ golden` -> `warm_golden`
    text = re.sub(r"([+-])\s+(?=[0-9.])", r"\1", text)  # `- 5` -> `-5`
    return _TOKEN.findall(text)


def _segments(tokens: list[str], problems: list[str]) -> dict[str, list[str]]:
    """Tokens grouped by the tool word that opens their segment (first segment of a tool wins)."""
    segments: dict[str, list[str]] = {}
    current: list[str] | None = None
    stray = 0
    for token in tokens:
        tool = TOOL_WORDS.get(token.lower())
        if tool is not None:
            if tool in segments:
                problems.append(f"{tool} given again: the first one is kept")
                current = []                            # read and thrown away
            else:
                current = segments[tool] = []
        elif token == SEPARATOR:
            current = None
        elif current is None:
            stray += 1
        else:
            current.append(token)
    if stray:
        problems.append(f"{stray} token(s) outside any tool segment ignored")
    return segments


def _number(token: str) -> float | None:
    return float(token) if _NUMBER.fullmatch(token) else None


def _integer(token: str, path: str, low: int, high: int, problems: list[str]) -> int:
    value = _number(token)
    assert value is not None   # callers check first
    if not low <= value <= high:                        # also catches inf from huge digit runs
        problems.append(f"{path}: {token[:20]} out of [{low}, {high}], clipped")
        value = float(min(max(value, low), high))
    if not value.is_integer():
        problems.append(f"{path}: {token[:20]} is not an integer, rounded")
    return round(value)


def _parse_adjust(words: list[str], problems: list[str]) -> dict[str, int]:
    values: dict[str, int] = {}
    i = 0
    while i < len(words):
        word = words[i]
        key = _ADJUST_BY_LOWER.get(word.lower())
        following = words[i + 1] if i + 1 < len(words) else None
        if key is None:
            if _number(word) is not None:
                problems.append(f"adjust: value {word[:20]} without a slider ignored")
            else:
                problems.append(f"adjust: unknown slider {word[:30]!r} dropped")
                if following is not None and _number(following) is not None:
                    i += 1                                  # its value goes with it
            i += 1
            continue
        if following is None:
            problems.append(f"adjust.{key}: no value (cut off?), dropped")
            break
        if _number(following) is None:
            problems.append(f"adjust.{key}: value {following[:30]!r} is not a number, dropped")
            # A slider name right after is read as the next key; any other word is the bad value.
            i += 1 if following.lower() in _ADJUST_BY_LOWER else 2
            continue
        value = _integer(following, f"adjust.{key}", SLIDER_MIN, SLIDER_MAX, problems)
        if key in values:
            problems.append(f"adjust.{key} given again: the first value is kept")
        else:
            values[key] = value
        i += 2
    return values


def _parse_selective(words: list[str], problems: list[str]) -> dict[str, dict[str, int]]:
    values: dict[str, dict[str, int]] = {}
    i = 0
    while i < len(words):
        word = words[i]
        numbers: list[str] = []
        j = i + 1
        while j < len(words) and len(numbers) < 2 and _number(words[j]) is not None:
            numbers.append(words[j])
            j += 1
        colour = _COLOUR_BY_LOWER.get(word.lower())
        if colour is None:
            if _number(word) is not None:
                problems.append(f"selective_adjust: value {word[:20]} without a colour ignored")
                i += 1
            else:
                problems.append(f"selective_adjust: unknown colour {word[:30]!r} dropped")
                i = j
            continue
        i = j
        if not numbers:
            problems.append(f"selective_adjust.{colour}: no values, dropped")
            continue
        if len(numbers) == 1:
            problems.append(f"selective_adjust.{colour}: no luminance (cut off?), 0 used")
        channels = {
            channel: _integer(token, f"selective_adjust.{colour}.{channel}",
                              SLIDER_MIN, SLIDER_MAX, problems)
            for channel, token in zip(("saturation", "luminance"), numbers)}
        if colour in values:
            problems.append(f"selective_adjust.{colour} given again: the first values are kept")
        else:
            values[colour] = channels
    return values


def _parse_filter(words: list[str], problems: list[str]) -> dict[str, Any] | None:
    names = [word for word in words if _number(word) is None]
    numbers = [word for word in words if _number(word) is not None]
    if not names:
        problems.append("filter: no name, filter dropped")
        return None
    if len(names) > 1 or len(numbers) > 1:
        problems.append("filter: extra tokens after the name and intensity ignored")
    name = _filter_name(names[0], problems)
    if name is None:
        return None
    if not numbers:
        problems.append(f"filter: no intensity (cut off?), {MISSING_INTENSITY} used")
        return {"name": name, "intensity": MISSING_INTENSITY}
    return {"name": name, "intensity": _integer(numbers[0], "filter.intensity", INTENSITY_MIN,
                                                 INTENSITY_MAX, problems)}


def _filter_name(word: str, problems: list[str]) -> str | None:
    lower = word.lower()
    if lower in _FILTER_BY_LOWER:
        return _FILTER_BY_LOWER[lower]
    prefixed = [name for low, name in _FILTER_BY_LOWER.items() if low.startswith(lower)]
    if len(lower) >= 3 and len(prefixed) == 1:
        problems.append(f"filter: {word[:30]!r} read as {prefixed[0]!r} (cut off?)")
        return prefixed[0]
    if len(lower) <= 40:   # bounded: edit distance is quadratic
        distances = sorted((_edits(lower, low), name) for low, name in _FILTER_BY_LOWER.items())
        (best, name), runner_up = distances[0], distances[1][0]
        if best <= MAX_FILTER_EDITS and best < runner_up:
            problems.append(f"filter: unknown name {word!r} read as {name!r} ({best} edits)")
            return name
    problems.append(f"filter: unknown name {word[:30]!r}, filter dropped")
    return None


def _edits(a: str, b: str) -> int:
    """Levenshtein distance."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Seq2SeqConfig:
    model: str | None = None     # None: MiniLM encoder + small decoder (offline); else a seq2seq
    #                              checkpoint path or hub id (AutoModelForSeq2SeqLM)
    epochs: int = 3
    lr: float = 1e-4             # pretrained weights (the MiniLM encoder, or the whole checkpoint)
    decoder_lr: float = 1e-3     # the randomly initialised decoder of the offline default
    warmup: float = 0.05         # fraction of steps with a linear warm-up; then linear decay
    batch_size: int = 32
    max_source_len: int = 32     # intent tokens
    max_target_len: int = 64     # generated tokens
    num_beams: int = 1           # 1 = greedy, for latency
    seed: int = 0
    device: str = "auto"         # auto | cpu | cuda (auto: the GPU when there is one)
    encoder_layers: int | None = 3   # the offline default keeps MiniLM's first N of 6 (None: 6)
    decoder_layers: int = 2      # the offline default's decoder
    decoder_hidden: int = 256
    decoder_heads: int = 4
    spelling: bool = True        # typos corrected against the training words first

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        for name in ("epochs", "batch_size", "max_source_len", "max_target_len", "num_beams",
                     "decoder_layers", "decoder_hidden", "decoder_heads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.encoder_layers is not None and (
                isinstance(self.encoder_layers, bool) or not isinstance(self.encoder_layers, int)
                or not 1 <= self.encoder_layers <= 6):
            raise ValueError(f"encoder_layers must be None or 1 to 6, got {self.encoder_layers!r}")
        for name in ("lr", "decoder_lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup must be a fraction in [0, 1), got {self.warmup!r}")
        if self.decoder_hidden % self.decoder_heads:
            raise ValueError(f"decoder_hidden ({self.decoder_hidden}) must be a multiple of "
                             f"decoder_heads ({self.decoder_heads})")


# ---------------------------------------------------------------------------------------------
# Target codecs: text <-> decoder token ids
# ---------------------------------------------------------------------------------------------
class WordVocabulary:
    """The offline default's closed target vocabulary: one id per word of the target format."""

    PAD, BOS, EOS, UNK = 0, 1, 2, 3

    def __init__(self, words: Sequence[str] | None = None):
        self.words = list(words) if words is not None else self.default_words()
        self.ids = {word: i for i, word in enumerate(self.words)}

    @staticmethod
    def default_words() -> list[str]:
        return ["[PAD]", "[BOS]", "[EOS]", "[UNK]", SEPARATOR, NONE, "adjust", "selective",
                "filter", *ADJUST_KEYS, *COLOURS, *FILTER_NAMES,
                *(str(v) for v in range(min(SLIDER_MIN, INTENSITY_MIN),
                                        max(SLIDER_MAX, INTENSITY_MAX) + 1))]

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, texts: Sequence[str], max_len: int) -> list[list[int]]:
        """Ids ending in EOS (cut to max_len, EOS kept last)."""
        return [[self.ids.get(word, self.UNK) for word in text.split()][:max_len - 1] + [self.EOS]
                for text in texts]

    def decode(self, rows: Sequence[Sequence[int]]) -> list[str]:
        texts = []
        for row in rows:
            words = []
            for i in row:
                if i == self.EOS:
                    break
                if i not in (self.PAD, self.BOS) and 0 <= i < len(self.words):
                    words.append(self.words[i])
            texts.append(" ".join(words))
        return texts


class CheckpointTokenizer:
    """A checkpoint's own tokenizer on the target side (e.g. T5's SentencePiece)."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer

    def encode(self, texts: Sequence[str], max_len: int) -> list[list[int]]:
        ids: list[list[int]] = self.tokenizer(text_target=list(texts), max_length=max_len,
                                              truncation=True)["input_ids"]
        return ids

    def decode(self, rows: Sequence[Sequence[int]]) -> list[str]:
        texts: list[str] = self.tokenizer.batch_decode(rows, skip_special_tokens=True)
        return texts


# ---------------------------------------------------------------------------------------------
# The student
# ---------------------------------------------------------------------------------------------
class Seq2SeqStudent:
    """Fine-tunes an encoder-decoder to write the target text; predictions are parsed back."""

    kind = "seq2seq"
    data_parallel = True   # trains on a shard of every batch under several processes

    def __init__(self, config: Seq2SeqConfig | None = None, encoder: Encoder | None = None):
        # `encoder` (a shared sentence encoder, as other students take) is accepted and unused:
        # this student fine-tunes its own copy of the encoder.
        self.config = config or Seq2SeqConfig()
        self.device = device_name(self.config.device)
        self.model: Any = None
        self.tokenizer: Any = None          # the source (intent) tokenizer
        self.target: WordVocabulary | CheckpointTokenizer | None = None
        self.last_parse_failures = 0        # outputs of the last predict() that needed repair
        self.last_parse_problems: list[list[str]] = []   # per intent of the last predict()
        self.speller: Speller | None = None  # with `spelling`: from the training intents

    # -- model ---------------------------------------------------------------------------------
    def _build(self) -> None:
        """A fresh model: the offline default, or the configured checkpoint."""
        import torch
        from transformers import AutoModel, AutoTokenizer

        _quiet_transformers()
        torch.manual_seed(self.config.seed)    # the decoder's random initialisation
        if self.config.model is not None:
            self.tokenizer, self.model = _load_checkpoint(self.config.model)
            self.target = CheckpointTokenizer(self.tokenizer)
            return
        from transformers import BertConfig, BertLMHeadModel, EncoderDecoderModel

        from workbench.embeddings import model_path

        path = model_path(None)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        encoder = AutoModel.from_pretrained(path)   # its pooler is loaded but never used
        # The word embeddings stay frozen: a third of the encoder's parameters (a fifth of a
        # step's CPU time), and a few thousand short intents would only make them drift.
        encoder.embeddings.word_embeddings.weight.requires_grad_(False)
        if self.config.encoder_layers is not None:   # fewer layers: cheaper steps on a CPU
            encoder.encoder.layer = encoder.encoder.layer[:self.config.encoder_layers]
            encoder.config.num_hidden_layers = self.config.encoder_layers
        vocabulary = WordVocabulary()
        c = self.config
        decoder = BertLMHeadModel(BertConfig(
            vocab_size=len(vocabulary), hidden_size=c.decoder_hidden,
            num_hidden_layers=c.decoder_layers, num_attention_heads=c.decoder_heads,
            intermediate_size=4 * c.decoder_hidden, max_position_embeddings=c.max_target_len + 2,
            is_decoder=True, add_cross_attention=True, pad_token_id=vocabulary.PAD,
            bos_token_id=vocabulary.BOS, eos_token_id=vocabulary.EOS))
        model = EncoderDecoderModel(encoder=encoder, decoder=decoder)
        for settings in (model.config, model.generation_config):
            settings.decoder_start_token_id = vocabulary.BOS
            settings.pad_token_id = vocabulary.PAD
            settings.eos_token_id = vocabulary.EOS
        self.model, self.target = model, vocabulary

    def _pretrained_parameters(self) -> set[int]:
        """Ids of parameters that start pretrained (trained at `lr`; the rest at `decoder_lr`)."""
        if self.config.model is not None:
            return {id(p) for p in self.model.parameters()}
        return {id(p) for p in self.model.encoder.parameters()}

    def _start_token(self) -> int:
        start = self.model.config.decoder_start_token_id
        if start is None:
            start = self.model.generation_config.decoder_start_token_id
        if start is None:
            raise WorkbenchError(f"the checkpoint {self.config.model!r} names no "
                                 "decoder_start_token_id; it is not a seq2seq model")
        return int(start)

    def _sources(self, intents: Sequence[str]) -> dict[str, Any]:
        batch = self.tokenizer(list(intents), padding=True, truncation=True,
                               max_length=self.config.max_source_len, return_tensors="pt")
        return {"input_ids": batch["input_ids"].to(self.device),
                "attention_mask": batch["attention_mask"].to(self.device)}

    # -- train ---------------------------------------------------------------------------------
    def train(self, data: TrainingData, progress: Progress | None = None) -> None:
        """Fine-tune with AdamW (linear warm-up and decay) on teacher-forced cross-entropy."""
        import torch

        if len(data.intents) != len(data.answers):
            raise ValueError(f"{len(data.intents)} intents but {len(data.answers)} answers")
        if not data.intents:
            raise WorkbenchError("the seq2seq student needs at least one training intent")
        c = self.config
        self._build()
        assert self.target is not None
        self.speller = Speller.from_texts(data.intents, tokenizer_words(self.tokenizer)) \
            if c.spelling else None
        model = self.model.to(self.device)
        targets = self.target.encode([format_answer(a) for a in data.answers], c.max_target_len)
        pad = int(model.config.pad_token_id if model.config.pad_token_id is not None else 0)
        start = self._start_token()

        pretrained = self._pretrained_parameters()
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if id(p) in pretrained], "lr": c.lr},
                  {"params": [p for p in params if id(p) not in pretrained], "lr": c.decoder_lr}]
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=0.01)
        steps_per_epoch = math.ceil(len(targets) / c.batch_size)
        total = steps_per_epoch * c.epochs
        warmup = max(1, int(c.warmup * total))

        def schedule(step: int) -> float:   # linear warm-up, then linear decay to 0
            return min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        generator = torch.Generator().manual_seed(c.seed)
        loader = index_loader(len(targets), c.batch_size, generator)   # (B,) rows per batch
        model.train()
        trained, group = model, data_parallel(self.device)
        if group is not None:   # see workbench.students.parallel
            group.check_batch_size(c.batch_size)
            torch.manual_seed(c.seed + 1 + group.index)   # the shards' own dropout masks
            trained, optimizer, loader = group.prepare(model, optimizer, loader)
        for epoch in range(c.epochs):
            for step, batch in enumerate(loader):   # alone: the batch; else this shard of it
                rows = batch.tolist()
                sources = self._sources([data.intents[r] for r in rows])
                labels = _pad([targets[r] for r in rows], -100).to(self.device)   # (B, T)
                decoder_input = labels[:, :-1].masked_fill(labels[:, :-1] == -100, pad)
                decoder_input = torch.cat(                                          # (B, T)
                    [torch.full_like(labels[:, :1], start), decoder_input], dim=1)
                logits = trained(**sources, decoder_input_ids=decoder_input,
                                 decoder_attention_mask=(labels != -100).long()).logits  # (B,T,V)
                if group is None:
                    loss = torch.nn.functional.cross_entropy(
                        logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                        ignore_index=-100)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                else:
                    # This shard's token losses over the whole batch's tokens, times the
                    # processes: DDP's average is then the whole batch's gradient.
                    tokens = group.total((labels != -100).sum().float())
                    loss = torch.nn.functional.cross_entropy(
                        logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                        ignore_index=-100, reduction="sum") / tokens * group.processes
                    group.backward(loss)
                    group.clip_grad_norm_(params, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                if progress is not None:
                    progress("step", epoch * steps_per_epoch + step + 1, total)
            if progress is not None:
                progress("epoch", epoch + 1, c.epochs)
        model.eval()

    # -- predict -------------------------------------------------------------------------------
    def generate(self, intents: Sequence[str], batch_size: int = 256) -> list[str]:
        """The raw generated text for each intent."""
        import torch

        if self.model is None or self.target is None:
            raise WorkbenchError("the seq2seq student is not trained")
        intents = corrected(self.speller, intents)
        self.model.eval()
        # A checkpoint may keep its special tokens in `config` only, not `generation_config`.
        special = {"decoder_start_token_id": self._start_token()}
        for name in ("eos_token_id", "pad_token_id"):
            if getattr(self.model.generation_config, name, None) is None \
                    and getattr(self.model.config, name, None) is not None:
                special[name] = getattr(self.model.config, name)
        texts: list[str] = []
        with torch.inference_mode():
            for begin in range(0, len(intents), batch_size):
                sources = self._sources(intents[begin:begin + batch_size])
                output = self.model.generate(                                  # (B, T)
                    **sources, max_new_tokens=self.config.max_target_len,
                    num_beams=self.config.num_beams, do_sample=False, **special)
                texts.extend(self.target.decode(output.tolist()))
        return texts

    def predict(self, intents: Sequence[str], batch_size: int = 256) -> list[Answer]:
        """One valid answer per intent; outputs that needed repair are counted, not hidden."""
        answers, problems = [], []
        for text in self.generate(intents, batch_size):
            answer, found = parse_generation(text)
            answers.append(answer)
            problems.append(found)
        self.last_parse_problems = problems
        self.last_parse_failures = sum(1 for found in problems if found)
        return answers

    # -- save / load ---------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    def size_bytes(self) -> int:
        """Parameters (shared ones once), in their stored dtype."""
        if self.model is None:
            return 0
        return int(sum(p.numel() * p.element_size() for p in self.model.parameters()))

    def save(self, folder: Path) -> None:
        if self.model is None or self.target is None:
            raise WorkbenchError("the seq2seq student is not trained; nothing to save")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _quiet_transformers()
        self.model.save_pretrained(folder / MODEL_DIR)
        self.tokenizer.save_pretrained(folder / TOKENIZER_DIR)
        if isinstance(self.target, WordVocabulary):
            (folder / TARGET_VOCAB_FILE).write_text(json.dumps(self.target.words))
        if self.speller is not None:
            self.speller.save(folder)
        (folder / CONFIG_FILE).write_text(json.dumps(
            {"kind": self.kind, "config": self.config_dict()}, indent=2))

    @classmethod
    def load(cls, folder: Path, encoder: Encoder | None = None) -> Seq2SeqStudent:
        """A student saved by `save`, on the device its config asks for (`encoder`: unused)."""
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, EncoderDecoderModel

        _quiet_transformers()
        folder = Path(folder)
        if not (folder / CONFIG_FILE).exists():
            raise WorkbenchError(f"{folder} holds no saved seq2seq student ({CONFIG_FILE} missing)")
        stored = json.loads((folder / CONFIG_FILE).read_text())
        stored["config"].setdefault("spelling", False)   # read typos as typed before
        student = cls(Seq2SeqConfig(**stored["config"]))
        student.tokenizer = AutoTokenizer.from_pretrained(folder / TOKENIZER_DIR)
        if student.config.spelling:
            student.speller = Speller.load(folder, tokenizer_words(student.tokenizer))
        if (folder / TARGET_VOCAB_FILE).exists():
            student.model = EncoderDecoderModel.from_pretrained(folder / MODEL_DIR)
            student.target = WordVocabulary(json.loads((folder / TARGET_VOCAB_FILE).read_text()))
        else:
            student.model = AutoModelForSeq2SeqLM.from_pretrained(folder / MODEL_DIR)
            student.target = CheckpointTokenizer(student.tokenizer)
        student.model.to(student.device).eval()
        return student


def _quiet_transformers() -> None:
    """No "Loading weights" / "Writing model shards" bars from transformers: the workbench shows
    its own progress (and none with --no-progress or in a job's log)."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def _load_checkpoint(name: str) -> tuple[Any, Any]:
    """Tokenizer and model of a seq2seq checkpoint; a clear error when it cannot be had."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name), AutoModelForSeq2SeqLM.from_pretrained(name)
    except (OSError, ValueError) as error:
        where = "path" if Path(name).exists() else "hub id (not available offline?)"
        raise WorkbenchError(f"cannot load the seq2seq checkpoint {name!r} as a {where}: "
                             f"{error}") from None


def _pad(rows: Sequence[Sequence[int]], value: int) -> Any:
    """Right-padded LongTensor (B, T) with T the longest row."""
    import torch

    width = max(len(row) for row in rows)
    return torch.tensor([list(row) + [value] * (width - len(row)) for row in rows],
                        dtype=torch.long)

