"""Write example image folders (one sub-folder per label) a user can point DATASET_DIR at:

    python scripts/make_example_images.py --out data/examples [shapes|faces|textures|all]

shapes is made here; faces (lfw_subset) and textures (brick, grass, gravel) come with
scikit-image, a development dependency (mlstack/example_images.py).
"""

from mlstack.example_images import main

if __name__ == "__main__":
    main()
