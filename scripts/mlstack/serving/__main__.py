"""`python -m mlstack.serving [--host H] [--port P] [--workers N]`: the serving API
under uvicorn; SERVING_HOST, SERVING_PORT and SERVING_WORKERS when not given."""

from __future__ import annotations

import argparse

import uvicorn

from mlstack.settings import get_serving_settings


def main(argv: list[str] | None = None) -> None:
    settings = get_serving_settings()
    parser = argparse.ArgumentParser(
        prog="python -m mlstack.serving",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default=settings.serving_host, help="address")
    parser.add_argument("--port", type=int, default=settings.serving_port, help="port")
    parser.add_argument(
        "--workers", type=int, default=settings.serving_workers, help="worker processes"
    )
    args = parser.parse_args(argv)
    # An import string, not the app: uvicorn imports it in each worker it starts.
    uvicorn.run("mlstack.serving.app:app", host=args.host, port=args.port, workers=args.workers)


if __name__ == "__main__":
    main()
