"""The embedding model: image -> grid in the data set's format -> PCA vector.

One code path embeds training images, /predict uploads and /feedback uploads, so
ref_data.csv and prod_data.csv live in the same vector space. The PCA is fitted
once, on the training split, and then frozen: retraining refits only the scaler
and the classifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA

from .preprocessing import ImageFormat, bytes_to_format


def feature_columns(n: int) -> list[str]:
    return [f"PCA_{i}" for i in range(1, n + 1)]


@dataclass
class Embedding:
    format: ImageFormat
    mean: np.ndarray  # (pixels,)
    components: np.ndarray  # (n_components, pixels)
    explained_variance_ratio: np.ndarray

    @classmethod
    def fit(cls, grids: np.ndarray, fmt: ImageFormat, n_components: int, seed: int = 0):
        flat = grids.reshape(len(grids), -1)
        n_components = min(n_components, flat.shape[0], flat.shape[1])
        pca = PCA(n_components=n_components, random_state=seed).fit(flat)
        # Plain arrays: a transform is one matrix product, with no per-call validation.
        return cls(fmt, pca.mean_.copy(), pca.components_.copy(), pca.explained_variance_ratio_)

    @property
    def n_components(self) -> int:
        return self.components.shape[0]

    @property
    def columns(self) -> list[str]:
        return feature_columns(self.n_components)

    def transform(self, grids: np.ndarray) -> np.ndarray:
        """(n, height, width) grids -> (n, n_components) vectors."""
        flat = np.asarray(grids, dtype=np.float64).reshape(len(grids), -1)
        return (flat - self.mean) @ self.components.T

    def embed_bytes(self, data: bytes, *, max_bytes: int, max_pixels: int) -> np.ndarray:
        """Image file bytes -> one (n_components,) vector."""
        grid = bytes_to_format(data, self.format, max_bytes=max_bytes, max_pixels=max_pixels)
        return self.transform(grid[None])[0]
