"""Attention rollout (Abnar & Zuidema 2020) on plain numpy arrays.

The teacher's knowledge reaches the students as one vector per clip: how much
the first context vector c_1 (the one the classifier reads) draws, through all
layers, on each input frame. Rollout models the residual path explicitly: per
layer the fused head map A becomes B = (1 - w) * A + w * I (w = 0.5 in the
paper), and the layers are chained from the first one up,
R = B_L @ ... @ B_1. The result is row 0 of R.

Written for numpy only so the torch exporter, the TF side and users with maps
from any other transformer share one implementation. `RolloutAccumulator`
folds one layer at a time, so an exporter never holds every layer's maps.

Conventions (documented in docs/rollout.md):
- maps are post-softmax, [layers, heads, T, T] or [batch, layers, heads, T, T],
  rows are queries, columns keys;
- `mask` is True on real frames; padded frames are removed as keys (columns)
  and every row is renormalised to sum 1 (rows, never columns);
- head fusion "max" is renormalised by rows too before the residual is added,
  so `residual_weight` is always the share each frame keeps on itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence, Union

import numpy as np

from kws_kd.errors import KwsKdError

MODES = ("rollout", "last_layer")
HEAD_FUSIONS = ("mean", "max")

LayerSpec = Union[None, str, int, slice, range, Sequence[int]]


def resolve_layers(layers: LayerSpec, num_layers: int) -> list[int]:
    """Turn a layer selection into sorted layer indices in [0, num_layers).

    Accepts None or "all" (every layer), an int, a slice/range, a sequence of
    ints, or a string: "all", "5", "top2" (the top 2 layers), "-2:" (python
    slice syntax, the same), "0,3,5". Negative indices count from the top.
    """
    if num_layers < 1:
        raise KwsKdError("attention maps have no layers")
    if isinstance(layers, str):
        layers = _parse_layer_string(layers)
    if layers is None:
        return list(range(num_layers))
    if isinstance(layers, (slice, range)):
        sl = slice(layers.start, layers.stop, layers.step)
        out = list(range(num_layers))[sl]
    elif isinstance(layers, (int, np.integer)):
        out = [int(layers)]
    else:
        out = [int(i) for i in layers]
    resolved = []
    for i in out:
        j = i + num_layers if i < 0 else i
        if not 0 <= j < num_layers:
            raise KwsKdError(f"layer {i} is out of range for {num_layers} layers")
        resolved.append(j)
    resolved = sorted(set(resolved))
    if not resolved:
        raise KwsKdError(f"layer selection {layers!r} selects none of {num_layers} layers")
    return resolved


def _parse_layer_string(text: str):
    text = text.strip().lower()
    if text in ("", "all"):
        return None
    try:
        if text.startswith("top"):
            k = int(text[3:])
            if k < 1:
                raise ValueError
            return slice(-k, None)
        if ":" in text:
            parts = [p.strip() for p in text.split(":")]
            if len(parts) > 3:
                raise ValueError
            nums = [int(p) if p else None for p in parts]
            return slice(*nums)
        if "," in text:
            return [int(p) for p in text.split(",") if p.strip()]
        return int(text)
    except ValueError:
        raise KwsKdError(
            f"bad layer selection {text!r}; use 'all', 'topK' (e.g. 'top2'), an index like '5' or '-1', "
            "a slice like '-2:' or a list like '0,3'"
        ) from None


@dataclass(frozen=True)
class RolloutOptions:
    """Everything that defines a rollout target; stored in the teacher store's metadata.

    `layers` is kept as text (see `resolve_layers`) so it round-trips through JSON.
    The defaults are the paper's: every layer, 0.5 * A + 0.5 * I, mean over heads.
    """

    layers: str = "all"
    residual_weight: float = 0.5
    head_fusion: str = "mean"
    mode: str = "rollout"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise KwsKdError(f"unknown rollout mode {self.mode!r}; expected one of {', '.join(MODES)}")
        if self.head_fusion not in HEAD_FUSIONS:
            raise KwsKdError(f"unknown head fusion {self.head_fusion!r}; expected one of {', '.join(HEAD_FUSIONS)}")
        if not 0.0 <= float(self.residual_weight) <= 1.0:
            raise KwsKdError(f"residual weight must be in [0, 1], got {self.residual_weight}")
        _parse_layer_string(str(self.layers))  # validates the syntax early

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RolloutOptions":
        return cls(
            layers=str(d.get("layers", "all")),
            residual_weight=float(d.get("residual_weight", 0.5)),
            head_fusion=str(d.get("head_fusion", "mean")),
            mode=str(d.get("mode", "rollout")),
        )


def fuse_heads(layer_map: np.ndarray, head_fusion: str = "mean") -> np.ndarray:
    """[..., heads, T, T] -> [..., T, T] by mean or max over heads (float64)."""
    layer_map = np.asarray(layer_map)
    # Reduce first, convert after: no float64 copy of all heads.
    if head_fusion == "mean":
        return layer_map.mean(axis=-3, dtype=np.float64)
    if head_fusion == "max":
        return layer_map.max(axis=-3).astype(np.float64)
    raise KwsKdError(f"unknown head fusion {head_fusion!r}; expected one of {', '.join(HEAD_FUSIONS)}")


def _mask_and_normalise_rows(a: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Drop padded keys and rescale every row to sum 1. `a` is [B, T, T], mask [B, T]."""
    if mask is not None:
        a = a * mask[:, None, :]
    sums = a.sum(axis=-1, keepdims=True)
    # A row with no mass left (a padded query) carries nothing; keep it zero.
    return np.divide(a, sums, out=np.zeros_like(a), where=sums > 0)


class RolloutAccumulator:
    """Incremental rollout: feed one layer's map at a time, from layer 0 up.

    Holds only the running product R_l = B_l @ R_{l-1} ([batch, T, T], float64),
    so memory does not grow with the number of layers. Layers outside the
    selection are counted and skipped. `result()` checks that every layer was
    seen, which turns a silently skipped layer (e.g. LayerDrop) into an error.
    """

    def __init__(
        self,
        num_layers: int,
        mask: np.ndarray | None = None,
        *,
        layers: LayerSpec = None,
        residual_weight: float = 0.5,
        head_fusion: str = "mean",
        mode: str = "rollout",
        matmul: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    ) -> None:
        if mode not in MODES:
            raise KwsKdError(f"unknown rollout mode {mode!r}; expected one of {', '.join(MODES)}")
        if head_fusion not in HEAD_FUSIONS:
            raise KwsKdError(f"unknown head fusion {head_fusion!r}; expected one of {', '.join(HEAD_FUSIONS)}")
        self.num_layers = int(num_layers)
        self.selected = set(resolve_layers(layers, self.num_layers))
        self.residual_weight = float(residual_weight)
        self.head_fusion = head_fusion
        self.mode = mode
        self.mask = None if mask is None else np.asarray(mask).astype(bool)
        # [B, T, T] @ [B, T, T]. numpy's stacked matmul can be several times slower than the
        # caller's BLAS (the torch exporter passes torch.bmm, on the model's device).
        self.matmul = matmul or np.matmul
        self._batched: bool | None = None
        self._seen = 0
        self._state: np.ndarray | None = None  # running product (rollout) or last raw map

    @classmethod
    def from_options(
        cls,
        num_layers: int,
        options: RolloutOptions,
        mask: np.ndarray | None = None,
        matmul: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    ) -> "RolloutAccumulator":
        return cls(
            num_layers,
            mask,
            layers=options.layers,
            residual_weight=options.residual_weight,
            head_fusion=options.head_fusion,
            mode=options.mode,
            matmul=matmul,
        )

    def update(self, layer_map: np.ndarray) -> None:
        """Fold the next layer's post-softmax map, [heads, T, T] or [batch, heads, T, T]."""
        layer_map = np.asarray(layer_map)
        if layer_map.ndim not in (3, 4) or layer_map.shape[-1] != layer_map.shape[-2]:
            raise KwsKdError(f"a layer map must be [heads, T, T] or [batch, heads, T, T], got shape {layer_map.shape}")
        batched = layer_map.ndim == 4
        if self._batched is None:
            self._batched = batched
        elif self._batched != batched:
            raise KwsKdError("layer maps switched between batched and unbatched shapes")
        if self._seen >= self.num_layers:
            raise KwsKdError(f"got more than {self.num_layers} layer maps")
        index = self._seen
        self._seen += 1
        if index not in self.selected:
            return
        if not batched:
            layer_map = layer_map[None]
        mask = self._mask_for(layer_map.shape[0], layer_map.shape[-1])
        a = _mask_and_normalise_rows(fuse_heads(layer_map, self.head_fusion), mask)
        if self.mode == "last_layer":
            self._state = a
            return
        w = self.residual_weight
        t = a.shape[-1]
        eye = np.eye(t)[None]
        if mask is not None:
            eye = eye * mask[:, None, :]
        b = (1.0 - w) * a + w * eye
        if self._state is None:
            self._state = b
        else:
            if self._state.shape != b.shape:
                raise KwsKdError(f"layer {index} map has shape {layer_map.shape}, unlike the layers before it")
            self._state = self.matmul(b, self._state)

    def _mask_for(self, batch: int, t: int) -> np.ndarray | None:
        if self.mask is None:
            return None
        m = self.mask if self.mask.ndim == 2 else np.broadcast_to(self.mask, (batch, self.mask.shape[-1]))
        if m.shape != (batch, t):
            raise KwsKdError(f"mask shape {self.mask.shape} does not fit maps with batch {batch} and {t} frames")
        return m.astype(np.float64)

    def result(self) -> np.ndarray:
        """The row-0 vector(s): [T] or [batch, T], float64, each summing to 1 over real frames."""
        if self._seen != self.num_layers:
            raise KwsKdError(f"rollout got {self._seen} layer maps, expected {self.num_layers}")
        if self._state is None:
            raise KwsKdError("no selected layer was folded")
        row0 = self._state[:, 0, :].copy()
        if self.mode == "last_layer" or self.mask is not None:
            sums = row0.sum(axis=-1, keepdims=True)
            row0 = np.divide(row0, sums, out=np.zeros_like(row0), where=sums > 0)
        return row0 if self._batched else row0[0]


def attention_rollout(
    maps: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    layers: LayerSpec = None,
    residual_weight: float = 0.5,
    head_fusion: str = "mean",
    mode: str = "rollout",
    matmul: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Row-0 attention rollout of stacked maps.

    maps: [layers, heads, T, T] or [batch, layers, heads, T, T], post-softmax.
    mask: [T] or [batch, T], True (or 1) on real frames.
    layers: which layers take part (see `resolve_layers`), e.g. "-2:" for the top 2.
    mode: "rollout" chains the selected layers; "last_layer" returns the raw
    fused row 0 of the last selected layer (no residual).
    matmul: optional batched matmul ([B, T, T] @ [B, T, T]) to use instead of numpy's.
    Returns [T] or [batch, T]; masked frames are 0 and each vector sums to 1.
    """
    maps = np.asarray(maps)
    if maps.ndim not in (4, 5) or maps.shape[-1] != maps.shape[-2]:
        raise KwsKdError(f"attention maps must be [layers, heads, T, T] or [batch, layers, heads, T, T], got shape {maps.shape}")
    batched = maps.ndim == 5
    if mask is not None:
        mask = np.asarray(mask)
        want = maps.shape[-1]
        if mask.shape[-1] != want or mask.ndim > 2 or (mask.ndim == 2 and (not batched or mask.shape[0] != maps.shape[0])):
            raise KwsKdError(f"mask shape {mask.shape} does not fit maps of shape {maps.shape}")
        if batched and mask.ndim == 1:
            mask = np.broadcast_to(mask, (maps.shape[0], want))
    num_layers = maps.shape[-4]
    acc = RolloutAccumulator(
        num_layers, mask, layers=layers, residual_weight=residual_weight, head_fusion=head_fusion, mode=mode,
        matmul=matmul,
    )
    for i in range(num_layers):
        acc.update(maps[:, i] if batched else maps[i])
    return acc.result()


#: How `interpolate_attention` resamples: bin-centre linear (the paper's) or mass-preserving area.
INTERPOLATIONS = ("linear", "area")


def interpolate_attention(vector: np.ndarray, length: int, method: str = "linear") -> np.ndarray:
    """Resample a frame-attention vector to `length` frames and renormalise it to sum 1 (float64).

    How a teacher vector (wav2vec 2.0, 50 frames/s) meets a student's n'
    frames, on both halves (the store, the distillation targets). Frames are
    equal bins over the clip. `linear` (the paper's "simple linear
    interpolation"): output bin j takes the value interpolated at its centre
    (j + 0.5) / length from the inputs at theirs (PyTorch's `interpolate(mode=
    "linear", align_corners=False)`). `area`: the cumulative mass is
    interpolated at the output bin edges, so every input frame's mass lands in
    the bins it overlaps, even when n' << n. Negatives are clipped to 0.

    Edge case, one rule: when linear sampling leaves no positive mass (a sparse
    vector whose non-zero frames all fall between output centres), the vector
    is resampled by `area` instead, which keeps its mass; a vector with no
    positive mass at all cannot be a distribution and is a KwsKdError.
    """
    v = np.asarray(vector, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise KwsKdError(f"attention must be a non-empty 1-D vector, got shape {v.shape}")
    if length < 1:
        raise KwsKdError(f"target attention length must be >= 1, got {length}")
    if method not in INTERPOLATIONS:
        raise KwsKdError(f"unknown interpolation {method!r}; expected one of {', '.join(INTERPOLATIONS)}")
    if not np.all(np.isfinite(v)):
        raise KwsKdError("attention vector has non-finite values")
    n = v.size
    if method == "linear":
        out = np.interp((np.arange(length) + 0.5) / length, (np.arange(n) + 0.5) / n, v)
    else:
        cdf = np.concatenate([[0.0], np.cumsum(np.clip(v, 0.0, None))])
        out = np.diff(np.interp(np.linspace(0.0, n, length + 1), np.arange(n + 1), cdf))
    out = np.clip(out, 0.0, None)
    total = out.sum()
    if total > 0:
        return out / total
    if method == "linear" and np.any(v > 0):
        return interpolate_attention(v, length, "area")
    raise KwsKdError("attention vector has no positive mass")


def _load_npy(path: str, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise KwsKdError(f"{path}: no such {what} file") from None
    except (OSError, ValueError) as exc:
        raise KwsKdError(f"{path}: not a readable .npy {what} file ({exc})") from None


def rollout_files(
    maps_path: str,
    out_path: str,
    *,
    mask_path: str | None = None,
    options: RolloutOptions = RolloutOptions(),
) -> tuple[int, ...]:
    """`kws-kd teacher rollout`: MAPS.npy (+ MASK.npy) -> ROLLOUT.npy (float32), written atomically.

    Returns the output shape. Errors name the offending file.
    """
    from kws_kd.atomic import atomic_path

    maps = _load_npy(maps_path, "attention maps")
    if maps.ndim not in (4, 5) or maps.shape[-1] != maps.shape[-2]:
        raise KwsKdError(
            f"{maps_path}: attention maps must be [layers, heads, T, T] or [batch, layers, heads, T, T], got shape {maps.shape}"
        )
    if not np.issubdtype(maps.dtype, np.floating) or not np.all(np.isfinite(maps)) or (maps < 0).any():
        raise KwsKdError(f"{maps_path}: attention maps must be finite non-negative floats (post-softmax)")
    mask = None
    if mask_path is not None:
        mask = _load_npy(mask_path, "mask") != 0
        batched = maps.ndim == 5
        ok = mask.shape == (maps.shape[-1],) or (batched and mask.shape == (maps.shape[0], maps.shape[-1]))
        if not ok:
            raise KwsKdError(f"{mask_path}: mask shape {mask.shape} does not fit maps of shape {maps.shape}")
    try:
        result = attention_rollout(
            maps,
            mask,
            layers=options.layers,
            residual_weight=options.residual_weight,
            head_fusion=options.head_fusion,
            mode=options.mode,
        )
    except KwsKdError as exc:
        raise KwsKdError(f"{maps_path}: {exc}") from None
    with atomic_path(out_path, suffix=".npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, result.astype(np.float32))
    return tuple(result.shape)
