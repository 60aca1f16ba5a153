"""A sentence encoder exported to ONNX and run with ONNX Runtime, for fast single-intent answers.

On these 2-core CPUs the all-MiniLM-L6-v2 forward pass for one short intent takes ~20 ms in
torch (the small matrix products run far below the memory bandwidth) and ~8 ms in ONNX Runtime,
with the same numbers to 1e-5. Students that embed at predict time export their encoder next to
their weights when they are saved and use this class after loading, on the CPU.

Only the shape all-MiniLM-L6-v2 has is exported: a transformer, mean pooling, then (optionally)
normalisation. Any other sentence-transformers pipeline keeps running in torch.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ONNX_FILE = "encoder.onnx"
BUCKET = 8        # texts per encoder run in `encode`, grouped by length


def exportable(encoder: Any) -> bool:
    """True when the sentence-transformer is Transformer -> mean Pooling [-> Normalize]."""
    modules = list(encoder)
    if len(modules) not in (2, 3) or not hasattr(modules[0], "auto_model"):
        return False
    pooling = modules[1]
    mode = getattr(pooling, "pooling_mode", None)   # sentence-transformers >= 5: one string
    if mode is not None:
        mean_only = mode == "mean"
    else:                                            # older: one boolean per mode
        flags = {name: getattr(pooling, name) for name in vars(pooling)
                 if name.startswith("pooling_mode_") and isinstance(getattr(pooling, name), bool)}
        mean_only = flags.get("pooling_mode_mean_tokens") is True and sum(flags.values()) == 1
    return mean_only and (len(modules) == 2 or type(modules[2]).__name__ == "Normalize")


def _traceable(model: Any) -> Any:
    """The transformer as a module of (input_ids, attention_mask) -> token states (B, T, D)."""
    import torch

    class Hidden(torch.nn.Module):
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            # Token types and positions are passed explicitly: tracing would otherwise bake the
            # example's length into them.
            positions = torch.arange(input_ids.shape[1]).unsqueeze(0)
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=torch.zeros_like(input_ids),
                              position_ids=positions).last_hidden_state

    return Hidden(model)


def export_encoder(encoder: Any, path: Path) -> Path:
    """Write the encoder's transformer to `path` as ONNX (dynamic batch and length)."""
    import torch

    if not exportable(encoder):
        raise ValueError("only Transformer + mean Pooling encoders can be exported")
    # Export a CPU copy: tracing changes the module it traces, and the caller keeps using theirs.
    model = copy.deepcopy(encoder[0].auto_model).to("cpu").eval()
    features = encoder.tokenizer(["an example intent"], return_tensors="pt")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            _traceable(model), (features["input_ids"], features["attention_mask"]), str(path),
            input_names=["input_ids", "attention_mask"], output_names=["hidden"],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                          "attention_mask": {0: "batch", 1: "tokens"},
                          "hidden": {0: "batch", 1: "tokens"}},
            dynamo=False)
    return path


class OnnxEncoder:
    """Unit sentence embeddings from an exported encoder; `encode` matches the torch encoder's."""

    def __init__(self, path: Path, tokenizer: Any, max_seq_length: int, normalize: bool = True,
                 threads: int = 0):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's default (all cores)
        # ONNX Runtime's threads spin after each run by default; the torch heads that run next
        # then fight them for the cores (2 here): one heads prediction took 8.6 ms p50 / 24 ms
        # p95 with spinning and 4.7 / 5.9 ms without.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(path), options,
                                                    providers=["CPUExecutionProvider"])
        self.path = Path(path)
        self.threads = threads
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.normalize = normalize

    @classmethod
    def for_encoder(cls, path: Path, encoder: Any, threads: int = 0) -> OnnxEncoder:
        """The ONNX twin of a loaded sentence-transformer (tokenizer and settings from it)."""
        return cls(path, encoder.tokenizer, encoder.max_seq_length,
                   normalize=len(list(encoder)) == 3, threads=threads)

    def with_threads(self, threads: int) -> OnnxEncoder:
        """The same encoder with a session of `threads` intra-op threads (ONNX Runtime fixes
        them when a session is created)."""
        if threads == self.threads:
            return self
        return OnnxEncoder(self.path, self.tokenizer, self.max_seq_length, self.normalize,
                           threads=threads)

    def encode(self, texts: Sequence[str]) -> Any:
        """(B, D) float32 embeddings: masked mean of the token states, then unit length.

        Texts are run in groups of similar length (`BUCKET` at a time, shortest first), each
        padded only to its own longest: the encoder's cost grows with the padded tokens, and
        one long intent would otherwise make every short one in the batch pay for its length
        (32 demo intents: 5.2 ms of CPU each padded together, 3.7 ms bucketed)."""
        import numpy as np

        if not texts:                                     # (0, D), as a batch of none
            width = self.session.get_outputs()[0].shape[-1]
            return np.zeros((0, width if isinstance(width, int) else 0), dtype=np.float32)
        ids = self.tokenizer(list(texts), truncation=True,
                             max_length=self.max_seq_length)["input_ids"]
        pad = self.tokenizer.pad_token_id or 0
        order = np.argsort([len(row) for row in ids], kind="stable")
        out: Any = None                                   # (B, D), once D is known
        for start in range(0, len(order), BUCKET):
            chosen = order[start:start + BUCKET]
            width = max(len(ids[i]) for i in chosen)
            input_ids = np.full((len(chosen), width), pad, dtype=np.int64)      # (b, T)
            mask = np.zeros((len(chosen), width), dtype=np.int64)              # (b, T)
            for row, i in enumerate(chosen):
                input_ids[row, :len(ids[i])] = ids[i]
                mask[row, :len(ids[i])] = 1
            (hidden,) = self.session.run(None, {"input_ids": input_ids,
                                                "attention_mask": mask})       # (b, T, D)
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)  # (b, D)
            if out is None:
                out = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            out[chosen] = pooled
        if self.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


def onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def save_twin(encoder: Any, folder: Path) -> bool:
    """Export the encoder into a student's folder when it can be; True when written."""
    import warnings

    if not (onnx_available() and exportable(encoder)):
        return False
    with warnings.catch_warnings():  # the tracer's notes about shapes are for exporter authors
        warnings.simplefilter("ignore")
        export_encoder(encoder, Path(folder) / ONNX_FILE)
    return True


def load_twin(folder: Path, encoder: Any, device: str) -> OnnxEncoder | None:
    """The folder's ONNX encoder when there is one and the student runs on the CPU."""
    path = Path(folder) / ONNX_FILE
    if device != "cpu" or not path.exists() or not onnx_available():
        return None
    return OnnxEncoder.for_encoder(path, encoder)
