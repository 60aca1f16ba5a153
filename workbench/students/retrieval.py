"""The retrieval student: answer with the ground truth of the most similar training intent.

A baseline with no training beyond embedding: the training intents are embedded once with the
sentence encoder (unit vectors), and an intent is answered with the teacher's ground truth of its
nearest training intent by cosine (a matrix product over unit vectors).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.embeddings import Encoder
from workbench.errors import WorkbenchError
from workbench.onnx_encoder import OnnxEncoder, load_twin, save_twin
from workbench.progress import Progress
from workbench.students.base import TrainingData, device_name
from workbench.tools import Answer, parse_answer

DEVICES = ("auto", "cpu", "cuda")
RUNTIMES = ("onnx", "torch")
CONFIG_FILE = "student.json"
EMBEDDINGS_FILE = "embeddings.npy"
ANSWERS_FILE = "answers.jsonl"
INTENTS_FILE = "intents.jsonl"


@dataclass(frozen=True)
class RetrievalConfig:
    encoder: str | None = None   # sentence-transformers path or hub id; None: all-MiniLM-L6-v2
    batch_size: int = 256        # texts per encoder call
    device: str = "auto"         # auto | cpu | cuda (auto: the GPU when there is one)
    runtime: str = "onnx"        # onnx: a saved student embeds queries with ONNX Runtime on CPU

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) \
                or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")


class RetrievalStudent:
    """Nearest training intent by cosine; its ground truth is the answer.

    `encoder` may be passed in (an already loaded SentenceTransformer, e.g. shared between
    students); otherwise it is loaded on first use and kept on the instance.
    """

    kind = "retrieval"

    def __init__(self, config: RetrievalConfig | None = None, encoder: Encoder | None = None):
        self.config = config or RetrievalConfig()
        self.device = device_name(self.config.device)
        self._encoder = encoder
        self.intents: list[str] = []
        self.answers: list[Answer] = []
        self.embeddings: Any = None   # (N, D) float32, unit rows
        self.onnx: OnnxEncoder | None = None  # set by load() when an ONNX twin was saved

    # -- encoder -------------------------------------------------------------------------------
    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from workbench.embeddings import load_encoder

            self._encoder = load_encoder(self.config.encoder, self.device)
        return self._encoder

    def _embed(self, texts: Sequence[str], progress: Progress | None = None) -> Any:
        from workbench.embeddings import embed

        if self.onnx is not None and progress is None:
            return self.onnx.encode(texts)

        return embed(self.encoder, texts, self.config.batch_size, progress)

    # -- train / predict -----------------------------------------------------------------------
    def train(self, data: TrainingData, progress: Progress | None = None) -> None:
        """Embed the training intents; nothing else is learnt."""
        if len(data.intents) != len(data.answers):
            raise ValueError(f"{len(data.intents)} intents but {len(data.answers)} answers")
        if not data.intents:
            raise WorkbenchError("the retrieval student needs at least one training intent")
        self.intents = list(data.intents)
        self.answers = list(data.answers)
        self.embeddings = self._embed(self.intents, progress)

    def nearest(self, intents: Sequence[str], batch_size: int = 256) -> tuple[Any, Any]:
        """Per intent, the index of its nearest training intent and the cosine, shapes (B,).

        The product runs in torch rather than numpy: numpy's BLAS starts its own threads, which
        on a busy 2-core machine made one query 10x slower."""
        import numpy as np
        import torch

        if self.embeddings is None:
            raise WorkbenchError("the retrieval student is not trained")
        index = torch.from_numpy(self.embeddings)                            # (N, D), shared
        indices, similarities = [], []
        with torch.inference_mode():
            for start in range(0, len(intents), batch_size):
                queries = torch.from_numpy(self._embed(intents[start:start + batch_size]))
                best_sim, best = (queries @ index.T).max(dim=1)  # (B, N) -> (B,); ties: first
                indices.append(best.numpy())
                similarities.append(best_sim.numpy())
        if not indices:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return np.concatenate(indices), np.concatenate(similarities)

    def predict(self, intents: Sequence[str], batch_size: int = 256) -> list[Answer]:
        """The ground truth of each intent's nearest training intent (any text, even empty)."""
        indices, _ = self.nearest(intents, batch_size)
        return [self.answers[int(i)] for i in indices]

    # -- save / load ---------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    def size_bytes(self) -> int:
        """The index (embeddings) plus the encoder's parameters (float32)."""
        index = 0 if self.embeddings is None else int(self.embeddings.nbytes)
        encoder = sum(p.numel() * p.element_size() for p in self.encoder.parameters())
        return index + int(encoder)

    def save(self, folder: Path) -> None:
        import numpy as np

        if self.embeddings is None:
            raise WorkbenchError("the retrieval student is not trained; nothing to save")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_FILE).write_text(json.dumps(
            {"kind": self.kind, "config": self.config_dict()}, indent=2) + "\n")
        np.save(folder / EMBEDDINGS_FILE, self.embeddings)
        with (folder / ANSWERS_FILE).open("w", encoding="utf-8") as handle:
            for answer in self.answers:
                handle.write(json.dumps(answer.to_dict(), separators=(",", ":")) + "\n")
        with (folder / INTENTS_FILE).open("w", encoding="utf-8") as handle:
            for text in self.intents:
                handle.write(json.dumps(text, ensure_ascii=False) + "\n")
        if self.config.runtime == "onnx":
            save_twin(self.encoder, folder)

    @classmethod
    def load(cls, folder: Path, encoder: Encoder | None = None) -> RetrievalStudent:
        import numpy as np

        folder = Path(folder)
        stored = json.loads((folder / CONFIG_FILE).read_text())
        student = cls(RetrievalConfig(**stored["config"]), encoder)
        student.embeddings = np.load(folder / EMBEDDINGS_FILE)
        with (folder / ANSWERS_FILE).open(encoding="utf-8") as handle:
            student.answers = [parse_answer(json.loads(line)) for line in handle if line.strip()]
        with (folder / INTENTS_FILE).open(encoding="utf-8") as handle:
            student.intents = [json.loads(line) for line in handle if line.strip()]
        if not len(student.answers) == len(student.intents) == len(student.embeddings):
            raise WorkbenchError(f"{folder}: the saved retrieval index is inconsistent "
                                 f"({len(student.embeddings)} embeddings, {len(student.answers)} "
                                 f"answers, {len(student.intents)} intents); retrain it")
        if student.config.runtime == "onnx":
            student.onnx = load_twin(folder, student.encoder, student.device)
        return student
