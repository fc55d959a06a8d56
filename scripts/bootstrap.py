"""Everything a fresh clone needs before the services start: data/ref_data.csv,
the artifacts and sample images (mlstack.bootstrap; --force: train again).

    python scripts/bootstrap.py
"""

import sys

from mlstack.bootstrap import main

if __name__ == "__main__":
    sys.exit(main())
