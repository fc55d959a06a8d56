"""Embed the data set and write data/ref_data.csv (PCA_1..PCA_n, target).

    python scripts/build_ref_data.py          # scikit-learn's digits
    DATASET_DIR=~/my_images python scripts/build_ref_data.py

The PCA fitted here is saved with the model by scripts/train.py; run that instead
to get both at once.
"""

from mlstack.logs import setup_logging
from mlstack.pipeline import build_reference
from mlstack.settings import PipelineSettings

if __name__ == "__main__":
    setup_logging()
    build_reference(PipelineSettings())
