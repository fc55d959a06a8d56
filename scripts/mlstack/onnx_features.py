"""A pretrained image model the user supplies as an ONNX file (IMAGE_MODEL) as the
embedding's feature extractor: its output, flattened, goes to the PCA instead of the
photo features. Nothing is downloaded: the file is read once and its bytes travel
inside the embedding's pickle, so the artifacts are all a server needs.

The picture is brought to the model's input size (224x224 when the file leaves it
open) in RGB, scaled to [0, 1] and normalised with ImageNet's mean and standard
deviation, as torchvision's pretrained models expect, in NCHW order. A picture is
blank only when uniform, as with the photo features.

onnxruntime is optional: the service images leave it out. Serving such a model takes
`pip install onnxruntime` (in Docker: add `onnxruntime` to serving/requirements.txt
and rebuild).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .photos import is_uniform, square_pixels

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SIDE = 224
MISSING_RUNTIME = (
    "IMAGE_MODEL needs onnxruntime, which the service images leave out: "
    "pip install onnxruntime (in Docker, add `onnxruntime` to serving/requirements.txt "
    "and rebuild)"
)


class ImageModelError(RuntimeError):
    """The ONNX model cannot be used: no onnxruntime, or a file it refuses."""


def _runtime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImageModelError(MISSING_RUNTIME) from exc
    return onnxruntime


@dataclass(eq=False)
class OnnxFeatures:
    """An ONNX image model as a feature extractor (pickled with its file's bytes)."""

    model: bytes = field(repr=False)
    name: str
    side: int = DEFAULT_SIDE
    blank_spread: float = 0.02  # as PhotoFeatures: uniform pictures only

    @classmethod
    def load(cls, path: Path) -> OnnxFeatures:
        """Read the file and check that onnxruntime opens it; the input's side is the
        file's own when it fixes one."""
        path = Path(path)
        try:
            model = path.read_bytes()
        except OSError as exc:
            raise ImageModelError(f"IMAGE_MODEL {path}: {exc}") from exc
        features = cls(model, path.name)
        shape = features._session().get_inputs()[0].shape
        if len(shape) != 4:
            raise ImageModelError(
                f"IMAGE_MODEL {path.name}: the input is {shape}; an image model takes "
                "(batch, 3, height, width)"
            )
        if isinstance(shape[2], int) and shape[2] > 0:
            features.side = shape[2]
        return features

    def prepare(self) -> None:
        """Open the model now (a server at its start), not at the first image."""
        self._session()

    def _session(self) -> Any:
        # Made on first use and never pickled: a session holds native resources.
        session = self.__dict__.get("_cached_session")
        if session is None:
            runtime = _runtime()
            try:
                session = runtime.InferenceSession(self.model, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own, undocumented types
                raise ImageModelError(f"IMAGE_MODEL {self.name}: {exc}") from exc
            self.__dict__["_cached_session"] = session
        return session

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_cached_session"}

    def of_pixels(self, rgb: np.ndarray) -> np.ndarray:
        """(side, side, 3) RGB in [0, 1] -> the model's output, flattened (float32)."""
        normalised = (rgb - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
        batch = np.ascontiguousarray(normalised.transpose(2, 0, 1)[None], dtype=np.float32)
        session = self._session()
        output = session.run(None, {session.get_inputs()[0].name: batch})[0]
        return np.asarray(output, dtype=np.float32).ravel()

    def of_image(self, image: Image.Image) -> tuple[np.ndarray, bool]:
        """A decoded image -> (the model's features, whether it is blank)."""
        rgb = square_pixels(image, self.side)
        return self.of_pixels(rgb), is_uniform(rgb, self.blank_spread)

    def weights(self, features: np.ndarray) -> np.ndarray:
        """One weight for all: a model's outputs are one block."""
        return np.ones(features.shape[1])

    def summary(self) -> dict:
        """What the manifest records of the model."""
        return {
            "kind": "onnx",
            "model": self.name,
            "sha256": hashlib.sha256(self.model).hexdigest(),
            "side": self.side,
        }
