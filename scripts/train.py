"""Build data/ref_data.csv, train the scaler and classifier, save the artifacts.

python scripts/train.py               # a new artifact version from the data set
python scripts/train.py --retrain     # ref + prod data, embedding kept frozen
python scripts/train.py --rollback 3  # make version 3 current again
python scripts/train.py --pin 3       # never prune version 3 (--unpin 3 undoes it)
python scripts/train.py --worker      # the trainer worker (python -m mlstack.trainer)

With DATABASE_URL set, every command acts on the versions in the database.
"""

import argparse
import json

from mlstack.logs import setup_logging
from mlstack.pipeline import train_initial
from mlstack.retraining import retrain
from mlstack.settings import PipelineSettings
from mlstack.stores import open_artifact_store

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--retrain", action="store_true", help="retrain on ref + prod data")
    group.add_argument("--rollback", type=int, metavar="VERSION", help="activate a kept version")
    group.add_argument("--pin", type=int, metavar="VERSION", help="never prune this version")
    group.add_argument("--unpin", type=int, metavar="VERSION", help="let it be pruned again")
    group.add_argument(
        "--worker", action="store_true", help="run due retrainings until stopped (RETRAIN_IN_API)"
    )
    args = parser.parse_args()
    if args.worker:
        from mlstack.trainer import main

        raise SystemExit(main([]))
    setup_logging()
    settings = PipelineSettings()
    store = open_artifact_store(settings)
    if args.pin or args.unpin:
        store.pin(args.pin or args.unpin, pinned=bool(args.pin))
        manifest = store.manifest(args.pin or args.unpin)
    elif args.rollback:
        manifest = store.activate(args.rollback)
    elif args.retrain:
        manifest = retrain(settings, reason="manual retraining")
    else:
        manifest = train_initial(settings)
    print(json.dumps(manifest.to_dict(), indent=2))
