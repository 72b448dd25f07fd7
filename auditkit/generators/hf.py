"""The ``hf:PATH`` backend: a local transformers causal LM (also behind ``fixture``).

Scoring is batched and padding-aware (right padding with an attention mask, windows sorted
by length so a batch wastes little). A text longer than the model's context is scored
with a sliding window: windows of the full context advancing by half of it, each token
scored once, with the longest left context any window gives it. When the tokenizer has a
BOS token it is prepended, so the first token of the text is scored too.

Log-softmax is always taken in float32; the weights run in bf16 (or fp16) only on a GPU.
Nothing is downloaded: the folder must hold the weights and the tokenizer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from auditkit.generators.base import (
    GenerationParams,
    Generator,
    GeneratorError,
    TokenScores,
    cut_at_stop,
)

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_SNAPSHOT = re.compile(r"/snapshots/([0-9a-f]{40})(/|$)")


def weight_files(folder: Path) -> list[Path]:
    """The weight files of a model folder (safetensors, or PyTorch pickles)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES))


def describe_folder(folder: Path, spec: str) -> dict[str, Any]:
    """Name, revision and sha256 of a model folder's weights, for the manifest.

    The revision is taken from ``auditkit_model.json`` (the fixture models), else from a
    Hugging Face cache path (``…/snapshots/<commit>``), else it is unknown (None): the
    sha256 of the weights identifies them regardless.
    """
    from auditkit.cache import folder_digest

    card: dict[str, Any] = {}
    card_path = folder / "auditkit_model.json"
    if card_path.is_file():
        card = json.loads(card_path.read_text(encoding="utf-8"))
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    snapshot = _SNAPSHOT.search(folder.resolve().as_posix())
    name = card.get("name") or config.get("_name_or_path") or folder.name
    return {
        "kind": "generator",
        "spec": spec,
        "name": name,
        "revision": card.get("revision") or (snapshot.group(1) if snapshot else None),
        "architecture": (config.get("architectures") or [config.get("model_type")])[0],
        "sha256": folder_digest(folder, weight_files(folder)),
        "path": folder.name,
    }


class HFGenerator(Generator):
    """A local transformers causal language model."""

    def __init__(
        self,
        path: str | Path,
        *,
        spec: str = "",
        batch_size: int = 16,
        device: str | None = None,
    ) -> None:
        folder = Path(path)
        self.spec = spec or f"hf:{path}"
        if not folder.is_dir():
            raise GeneratorError(
                f"generator {self.spec!r}: {folder} is not a folder",
                hint="pass the folder that holds config.json, the weights and the tokenizer",
            )
        if not (folder / "config.json").is_file():
            raise GeneratorError(
                f"generator {self.spec!r}: {folder} has no config.json; it is not a "
                "transformers model folder",
                hint="save the model with model.save_pretrained(FOLDER) and "
                "tokenizer.save_pretrained(FOLDER)",
            )
        if not weight_files(folder):
            raise GeneratorError(
                f"generator {self.spec!r}: {folder} holds no weights (*.safetensors, *.bin)",
                hint="the folder may be a Git LFS pointer checkout; fetch the weight files",
            )
        self.folder = folder
        self.batch_size = max(1, batch_size)
        self._device_name = device
        self._model: Any = None
        self._tokenizer: Any = None
        self._description: dict[str, Any] | None = None

    # -- loading -------------------------------------------------------------------------

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        # Progress bars and advice from transformers would interleave with auditkit's own.
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        device = self._device_name or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.float32
        if device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.folder, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                self.folder, local_files_only=True, dtype=dtype
            )
        except (OSError, ValueError, KeyError) as exc:
            raise GeneratorError(
                f"generator {self.spec!r}: cannot load the model in {self.folder} "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
                hint="the folder must hold a causal LM and its tokenizer, saved with "
                "save_pretrained; auditkit never downloads models",
            ) from None
        if not tokenizer.is_fast:
            raise GeneratorError(
                f"generator {self.spec!r}: the tokenizer in {self.folder} is not a fast "
                "tokenizer (character offsets are needed)",
                hint="save a tokenizer.json with the model (transformers' fast tokenizers)",
            )
        # Long texts are windowed here, so the tokenizer's length warning does not apply.
        self._tokenizer_limit = tokenizer.model_max_length
        tokenizer.model_max_length = 1 << 30
        model.to(device).eval()
        self._model, self._tokenizer, self._device = model, tokenizer, device
        pad = tokenizer.pad_token_id
        self._pad_id = pad if pad is not None else (tokenizer.eos_token_id or 0)

    @property
    def context(self) -> int:
        """Longest token sequence the model attends to at once."""
        self._load()
        cfg = self._model.config
        for attr in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(cfg, attr, None)
            if isinstance(value, int) and value > 1:
                return min(value, 8192)
        limit = self._tokenizer_limit
        return limit if isinstance(limit, int) and 1 < limit < 100_000 else 1024

    @property
    def has_distribution(self) -> bool:
        """The full next-token distribution is visible: Min-K%++ can run."""
        return True

    def describe(self) -> dict[str, Any]:
        """Name, revision, sha256 of the weights (cached: hashing is done once)."""
        if self._description is None:
            self._description = describe_folder(self.folder, self.spec)
        return dict(self._description)

    # -- scoring -------------------------------------------------------------------------

    def _encode(self, text: str) -> tuple[list[int], list[tuple[int, int]], int]:
        """Token ids (BOS first when there is one), offsets, and the index of token 0."""
        enc = self._tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        offsets = [tuple(o) for o in enc["offset_mapping"]]
        bos = self._tokenizer.bos_token_id
        if bos is not None:
            return [bos, *ids], offsets, 1
        return ids, offsets, 0

    def windows(self, length: int) -> list[tuple[int, int, int]]:
        """``(start, end, first_target)`` windows over a sequence of ``length`` ids.

        Targets are positions 1..length-1 (position 0 has no left context); every target
        belongs to exactly one window, the first that reaches it after the previous one
        ended, so it keeps at least half a context of left context.
        """
        ctx = self.context
        if length <= ctx:
            return [(0, length, 1)]
        stride = max(1, ctx // 2)
        out, scored_to, start = [], 1, 0
        while scored_to < length:
            end = min(start + ctx, length)
            out.append((start, end, scored_to))
            scored_to = end
            start += stride
            if end == length:
                break
        return out

    def score(self, texts: Sequence[str]) -> list[TokenScores]:
        """Per-token log-probs and next-token distribution statistics of each text."""
        import numpy as np
        import torch

        self._load()
        encoded = [self._encode(t) for t in texts]
        jobs = []  # (text index, start, end, first target)
        for i, (ids, _, _) in enumerate(encoded):
            if len(ids) >= 2:
                jobs.extend((i, s, e, f) for s, e, f in self.windows(len(ids)))
        jobs.sort(key=lambda j: (j[2] - j[1], j[0], j[1]))
        parts: dict[int, list[tuple[int, Any, Any, Any]]] = {i: [] for i in range(len(texts))}
        with torch.inference_mode():
            for b in range(0, len(jobs), self.batch_size):
                batch = jobs[b : b + self.batch_size]
                width = max(e - s for _, s, e, _ in batch)
                ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, (i, s, e, _) in enumerate(batch):
                    ids[row, : e - s] = torch.tensor(encoded[i][0][s:e])
                    mask[row, : e - s] = 1
                logits = self._model(
                    input_ids=ids.to(self._device), attention_mask=mask.to(self._device)
                ).logits.float()
                logp = torch.log_softmax(logits[:, :-1], dim=-1)
                probs = logp.exp()
                mean = (probs * logp).sum(-1)
                # two-pass variance: E[(x - mu)^2] keeps float32 precision, E[x^2] - mu^2 does not
                std = (probs * (logp - mean.unsqueeze(-1)).square()).sum(-1).sqrt()
                chosen = logp.gather(-1, ids[:, 1:].unsqueeze(-1).to(self._device)).squeeze(-1)
                for row, (i, s, e, first) in enumerate(batch):
                    # logits at position p predict id p+1: target t sits at row t-s-1.
                    a, z = first - s - 1, e - s - 1
                    parts[i].append(
                        (
                            s + a,
                            chosen[row, a:z].double().cpu().numpy(),
                            mean[row, a:z].double().cpu().numpy(),
                            std[row, a:z].double().cpu().numpy(),
                        )
                    )
        out = []
        for i, (_, offsets, shift) in enumerate(encoded):
            pieces = sorted(parts[i], key=lambda p: p[0])
            cat = [
                np.concatenate([p[k] for p in pieces]) if pieces else np.zeros(0) for k in (1, 2, 3)
            ]
            # Targets start at position 1; without a BOS, token 0 of the text is unscored.
            kept = offsets[1 - shift :] if offsets else []
            out.append(
                TokenScores(
                    logprobs=tuple(float(x) for x in cat[0]),
                    offsets=tuple((int(a), int(b)) for a, b in kept),
                    mean=tuple(float(x) for x in cat[1]),
                    std=tuple(float(x) for x in cat[2]),
                )
            )
        return out

    # -- generation ----------------------------------------------------------------------

    def _chat_prompt(self, prompt: str) -> str:
        """The prompt as one user turn of the model's own chat template."""
        tok = self._tokenizer
        if not getattr(tok, "chat_template", None):
            raise GeneratorError(
                f"generator {self.spec!r} has no chat template",
                hint="use --mode completion for a base model, or a chat/instruct model folder",
            )
        messages = [{"role": "user", "content": prompt}]
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(self, prompts: Sequence[str], params: GenerationParams) -> list[str]:
        """Continue each prompt (greedy at temperature 0, else seeded sampling)."""
        import torch

        self._load()
        tok = self._tokenizer
        budget = max(1, self.context - params.max_tokens)
        if params.chat:
            prompts = [self._chat_prompt(p) for p in prompts]
        encoded = []
        for prompt in prompts:
            ids, _, _ = self._encode(prompt)
            encoded.append(ids[-budget:])  # keep the end of an over-long prompt
        order = sorted(range(len(prompts)), key=lambda i: (len(encoded[i]), i))
        out: dict[int, str] = {}
        sample = params.temperature > 0
        with torch.inference_mode():
            for b in range(0, len(order), self.batch_size):
                idx = order[b : b + self.batch_size]
                width = max(len(encoded[i]) for i in idx)
                ids = torch.full((len(idx), width), self._pad_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):  # left padding: generation continues at the end
                    ids[row, width - len(encoded[i]) :] = torch.tensor(encoded[i])
                    mask[row, width - len(encoded[i]) :] = 1
                kwargs: dict[str, Any] = {
                    "max_new_tokens": params.max_tokens,
                    "do_sample": sample,
                    "pad_token_id": self._pad_id,
                }
                if sample:
                    torch.manual_seed(params.seed + b)
                    kwargs.update(temperature=params.temperature, top_p=params.top_p)
                else:
                    kwargs.update(temperature=None, top_p=None, top_k=None)
                gen = self._model.generate(
                    input_ids=ids.to(self._device),
                    attention_mask=mask.to(self._device),
                    **kwargs,
                )
                for row, i in enumerate(idx):
                    text = tok.decode(gen[row, width:], skip_special_tokens=True)
                    out[i] = cut_at_stop(text, params.stop)
        return [out[i] for i in range(len(prompts))]
