"""The embedding model: image -> grid in the data set's format (or a photo's
features, mlstack.photos) -> PCA vector.

One code path embeds training images, /predict uploads and /feedback uploads, so
ref_data.csv and prod_data.csv live in the same vector space. The PCA is fitted
once, on the training split, and then frozen: retraining refits only the scaler
and the classifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from sklearn.decomposition import PCA

from .onnx_features import OnnxFeatures
from .photos import PhotoFeatures
from .preprocessing import ImageFormat, decode_image, to_format


def feature_columns(n: int) -> list[str]:
    return [f"PCA_{i}" for i in range(1, n + 1)]


@dataclass
class Embedding:
    format: ImageFormat
    mean: np.ndarray  # (pixels,)
    components: np.ndarray  # (n_components, pixels)
    explained_variance_ratio: np.ndarray
    # What an image becomes before the PCA: None, the grid of `format` (the digits,
    # and every set saved before photo features existed: their pickles lack the field
    # and read this default); else a photo's colour, shape and texture features, or
    # the output of the user's ONNX model.
    photo: PhotoFeatures | OnnxFeatures | None = None

    @classmethod
    def fit(
        cls,
        inputs: np.ndarray,
        fmt: ImageFormat,
        n_components: int,
        seed: int = 0,
        photo: PhotoFeatures | OnnxFeatures | None = None,
    ) -> Embedding:
        """The PCA of `inputs`: (n, height, width) grids, or (n, features) with `photo`."""
        flat = inputs.reshape(len(inputs), -1)
        n_components = min(n_components, flat.shape[0], flat.shape[1])
        weights = np.ones(flat.shape[1]) if photo is None else photo.weights(flat)
        pca = PCA(n_components=n_components, random_state=seed).fit(flat * weights)
        # Plain arrays: a transform is one matrix product, with no per-call validation.
        # The weights go into the components: ((x - mean) * w) @ C.T = (x - mean) @ (C * w).T
        return cls(
            fmt,
            pca.mean_ / np.where(weights > 0, weights, 1),
            pca.components_ * weights,
            pca.explained_variance_ratio_,
            photo,
        )

    @property
    def n_components(self) -> int:
        return self.components.shape[0]

    @property
    def columns(self) -> list[str]:
        return feature_columns(self.n_components)

    def transform(self, inputs: np.ndarray) -> np.ndarray:
        """(n, height, width) grids, or (n, features) of photos -> (n, n_components) vectors."""
        flat = np.asarray(inputs, dtype=np.float64).reshape(len(inputs), -1)
        return (flat - self.mean) @ self.components.T

    @property
    def grayscale(self) -> bool:
        """Whether the features read an image's grey levels only (the grid, not a
        photo's colours): a colour JPEG is then decoded to its luminance alone."""
        return self.photo is None

    def features(self, image: Image.Image) -> tuple[np.ndarray, bool]:
        """A decoded image -> (what the PCA takes, whether the image is blank: empty
        paper for a grid, one uniform colour for a photo)."""
        if self.photo is not None:
            return self.photo.of_image(image)
        grid = to_format(image, self.format)
        return grid, not grid.any()

    def prepare(self) -> None:
        """Ready what the first image needs (an ONNX model's session), so that a server
        without onnxruntime stops at its start with the error saying what to install,
        rather than failing every request."""
        if isinstance(self.photo, OnnxFeatures):
            self.photo.prepare()

    def embed_bytes(self, data: bytes, *, max_bytes: int, max_pixels: int) -> np.ndarray:
        """Image file bytes -> one (n_components,) vector (a blank image's too)."""
        image = decode_image(
            data, max_bytes=max_bytes, max_pixels=max_pixels, grayscale=self.grayscale
        )
        return self.transform(self.features(image)[0][None])[0]
