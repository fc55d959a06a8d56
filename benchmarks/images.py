"""Image benchmark: the three images' sizes, their build from nothing, the cold start of
the stack to healthy (not a test; needs the Docker engine, and nothing else running on
it: the stack's container names and network are fixed).

    python benchmarks/images.py                   # about 15 minutes here
    python benchmarks/images.py --baseline main~5 # the same for that commit's
                                                  # Dockerfiles too: before and after,
                                                  # one run
    python benchmarks/images.py --no-start        # sizes and build time only

For each source (the checkout, and the baseline's files from `git archive` when given):
  - the build of the three images from nothing, as Compose and the brief's commands
    build them: serving first, each later build free to take a layer from this source's
    earlier ones (serving's and reporting's Dockerfiles share their first steps), none
    from anything built before the run. Each source builds from its own copy of the
    base image (python:3.11-slim plus a label naming the run, tagged python:3.11-slim
    for its builds, the tag put back at the end): the engine's build cache keys a step
    on the image below it, so no layer of an earlier build, of the other source or of
    the tests, can match. Each image is timed until its files are written to disk
    (`sync`), the three added up; with a baseline the builds take turns image by image
    (the baseline's serving image, the checkout's, the baseline's web app, ...), so
    that a slower spell of the machine or of the network weighs on both;
  - each image's size as `docker images` counts it (MB of 10^6 bytes), with its target;
  - the cold start: `docker compose up --wait` of the three on a copy of the checkout
    whose model is already trained (a first start trains it, untimed), after
    `compose down`: the time until every healthcheck passes (probes every 10 s).
Prints `skipped: ...` and exits 0 when no Docker engine answers.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BASE = "python:3.11-slim"
SERVICES = ("serving", "webapp", "reporting")
COMPOSE_SERVICE = {"serving": "serving-api", "webapp": "webapp", "reporting": "reporting"}
# issue targets: serving at most 400 MB, reporting at most 600 MB; the web app: no larger
TARGET_MB = {"serving": 400, "webapp": 602, "reporting": 600}
BUILD_BEFORE_S = 750  # the build of the three from nothing before the cuts (docs/docker.md)
PREFIX = "mlstack-bench"


def run(*args: str, cwd: Path | None = None, timeout: int = 3600) -> str:
    done = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"{' '.join(args[:4])} ... failed:\n{tail}")
    return done.stdout


def engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def export(ref: str | None, dest: Path) -> Path:
    """The files of a fresh clone: the work tree's (tracked and new, not ignored ones) or
    those of the commit `ref`."""
    dest.mkdir(parents=True, exist_ok=True)
    if ref is not None:
        archive = subprocess.run(
            ["git", "archive", ref], cwd=REPO_ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    else:
        listed = run(
            "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=REPO_ROOT
        )
        for name in filter(None, listed.split("\0")):
            src = REPO_ROOT / name
            if src.is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / name)
    for folder in ("data", "artifacts"):
        (dest / folder).mkdir(exist_ok=True)
    return dest


def tag(label: str, service: str) -> str:
    return f"{PREFIX}/{COMPOSE_SERVICE[service]}:{label}"


def base_tag(label: str) -> str:
    return f"{PREFIX}/base:{label}"


def fresh_base(label: str) -> None:
    """A copy of the base image that no earlier build has used, tagged `base_tag(label)`:
    BASE with a label naming this run and `label` (no file changed: the images' sizes do
    not move)."""
    subprocess.run(
        ["docker", "build", "-q", "-t", base_tag(label), "-"],
        input=f"FROM {BASE}\nLABEL org.mlstack.bench={label}-{time.time_ns()}\n",
        capture_output=True,
        text=True,
        check=True,
    )


def build(source: Path, label: str, service: str) -> float:
    """Seconds to build one image, until its files are on disk (on vfs a build writes
    gigabytes; each build is charged its own writes, none left over for the next one).
    The base image is this source's copy (`fresh_base`): the cache holds only what this
    source built earlier in the run."""
    run("docker", "tag", base_tag(label), BASE)
    subprocess.run(["sync"], check=True)  # the previous build's writes, not timed here
    started = time.monotonic()
    run(
        "docker",
        "build",
        "--network",
        "host",
        "-q",
        "-f",
        f"{service}/Dockerfile",
        "-t",
        tag(label, service),
        ".",
        cwd=source,
    )
    subprocess.run(["sync"], check=True)
    return time.monotonic() - started


def size_mb(image: str) -> float:
    return int(run("docker", "image", "inspect", "-f", "{{.Size}}", image)) / 1e6


def cold_start(source: Path, label: str) -> float:
    """Seconds from `compose up --wait` to every service healthy, the model trained."""
    override = source / "bench-images.yml"
    override.write_text(
        "services:\n"
        + "".join(
            f"  {COMPOSE_SERVICE[s]}:\n    image: {tag(label, s)}\n    pull_policy: never\n"
            f"    build: !reset null\n"
            for s in SERVICES
        )
    )
    compose = [
        "docker",
        "compose",
        "-p",
        f"{PREFIX}-{label}",
        "-f",
        "compose.yml",
        "-f",
        override.name,
    ]
    try:
        run(*compose, "up", "-d", "--wait", cwd=source, timeout=900)  # trains the model
        run(*compose, "down", cwd=source, timeout=300)
        started = time.monotonic()
        run(*compose, "up", "-d", "--wait", cwd=source, timeout=900)
        return time.monotonic() - started
    finally:
        subprocess.run(
            [*compose, "down", "--volumes"],
            cwd=source,
            capture_output=True,
            timeout=300,
            check=False,
        )


def measure(sources: dict[str, str | None], start: bool) -> dict[str, dict[str, float]]:
    """Figures per label of `sources` ({label: git ref, or None for the work tree}). The
    builds take turns, image by image (each source's serving image, then each one's web
    app, ...): a slower spell of the machine, or of the network pip downloads from,
    weighs on every source alike rather than on the one built last."""
    figures: dict[str, dict[str, float]] = {label: {} for label in sources}
    original = run("docker", "image", "inspect", "-f", "{{.Id}}", BASE).strip()
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        trees = {label: export(ref, Path(tmp) / label) for label, ref in sources.items()}
        try:
            for label in trees:
                fresh_base(label)
            for service in SERVICES:
                for label, source in trees.items():
                    figures[label][f"build {service}"] = build(source, label, service)
        finally:
            run("docker", "tag", original, BASE)
        for label, source in trees.items():
            figures[label]["build"] = sum(figures[label][f"build {s}"] for s in SERVICES)
            for service in SERVICES:
                figures[label][service] = size_mb(tag(label, service))
            if start:
                figures[label]["start"] = cold_start(source, label)
        # Files the containers wrote (root, or the checkout's owner) go with the copies.
        subprocess.run(["rm", "-rf", tmp], check=False)
    return figures


def remove_images(label: str) -> None:
    for image in [tag(label, service) for service in SERVICES] + [base_tag(label)]:
        subprocess.run(["docker", "rmi", image], capture_output=True, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", metavar="REF", help="also measure that commit")
    parser.add_argument("--no-start", action="store_true", help="no cold-start figure")
    parser.add_argument("--keep", action="store_true", help="keep the images built")
    args = parser.parse_args()
    if not engine_answers():
        print("images: skipped: no Docker engine answers (`docker info`): tools/docker-engine.sh")
        return 0
    run("bash", str(REPO_ROOT / "tools/base-image.sh"), timeout=1800)

    sources = {"checkout": None}
    if args.baseline:
        sources = {"baseline": args.baseline, **sources}
    try:
        measured = measure(sources, not args.no_start)
    finally:
        if not args.keep:
            for label in ("baseline", "checkout"):
                remove_images(label)
    names = {"baseline": args.baseline, "checkout": "this checkout"}
    runs = [(names[label], figures) for label, figures in measured.items()]

    for name, figures in runs:
        print(f"images of {name}:")
        for service in SERVICES:
            print(
                f"  image size {service:<9} {figures[service]:7.0f} MB "
                f"(target <= {TARGET_MB[service]} MB)"
            )
        each = " + ".join(f"{figures[f'build {s}']:.0f}" for s in SERVICES)
        print(
            f"  build of the three from nothing {figures['build']:5.0f} s ({each}; "
            f"target <= half of before, {BUILD_BEFORE_S / 2:.0f} s)"
        )
        if "start" in figures:
            print(f"  cold start to healthy (compose up --wait) {figures['start']:5.1f} s")
    if len(runs) == 2:
        before, after = runs[0][1], runs[1][1]
        print(f"build time after / before: {after['build'] / before['build']:.2f} (target <= 0.50)")
        if "start" in before:
            print(
                f"cold start after / before: {after['start'] / before['start']:.2f} "
                "(target <= 1.0, noise of the 10 s healthcheck probes)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
