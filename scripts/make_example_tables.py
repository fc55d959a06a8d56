"""Write the example tables (scikit-learn's wine and breast cancer) as CSV files:

    python scripts/make_example_tables.py --out data/examples [wine|breast_cancer|all]

then serve one with DATASET_CSV=data/examples/wine.csv (see docs/tables.md).
"""

from mlstack.examples import main

if __name__ == "__main__":
    main()
