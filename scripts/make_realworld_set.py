"""Generate a labelled set of real-world-like digit images (a folder per label).

Kinds of images:
  font-photo    a digit printed with a font, photographed: coloured paper, uneven
                light, noise, blur, any size and position, JPEG
  font-scan     a printed digit scanned: dark on light, mild noise, JPEG or PNG
  stroke-photo  a handwriting-like drawn digit (no font), photographed
  stroke-canvas a thick drawn digit as a drawing widget gives (PNG)

Fonts are chosen by family group (mlstack.augment.FONT_GROUPS), so evaluation fonts
can be kept apart from any font used while tuning or printed into the training rows:
`--fonts eval` (Liberation, FreeFont, URW base35, the default) or `--fonts tuning`
(DejaVu, the training rows' fonts), or explicit font files.

python scripts/make_realworld_set.py --out /tmp/rw --per-label 30 --seed 1
Writes <out>/<label>/<kind>_<font>_<n>.<png|jpg> and <out>/index.csv
(file,label,kind,font). The same arguments always give the same files.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from mlstack.augment import compose, encode, find_fonts, font_ink, stroke_ink

KINDS = ("font-photo", "font-scan", "stroke-photo", "stroke-canvas")


def generate(
    out: Path,
    per_label: int,
    seed: int,
    fonts: list[Path],
    kinds: tuple[str, ...] = KINDS,
    progress: bool = True,
) -> list[dict[str, str]]:
    """Write `per_label` images of every digit, cycling through kinds and fonts."""
    font_kinds = [kind for kind in kinds if kind.startswith("font-")]
    if font_kinds and not fonts:
        raise SystemExit("no font files found for the font kinds: install fonts or use --kinds")
    rng = np.random.default_rng(seed)
    rows = []
    total = per_label * 10
    count = 0
    for n in range(per_label):
        kind = kinds[n % len(kinds)]
        for label in range(10):
            if kind.startswith("font-"):
                font = fonts[(n // len(kinds) * 10 + label) % len(fonts)] if fonts else None
                ink, font_name = font_ink(label, font, rng), font.stem
            else:
                ink, font_name = stroke_ink(label, rng), "strokes"
            style = kind.split("-", 1)[1]
            data, suffix = encode(compose(ink, rng, style), rng, style)
            folder = out / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{kind}_{font_name}_{n:04d}.{suffix}"
            path.write_bytes(data)
            file = str(path.relative_to(out))
            rows.append({"file": file, "label": str(label), "kind": kind, "font": font_name})
            count += 1
        if (progress and (n + 1) % max(1, per_label // 10) == 0) or count == total:
            print(f"\rgenerated {count}/{total} images", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    with open(out / "index.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "label", "kind", "font"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--per-label", type=int, default=40, help="images per digit")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--fonts",
        nargs="+",
        default=["eval"],
        help="font groups (eval, tuning) or font files; default: eval",
    )
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    args = parser.parse_args(argv)
    fonts = find_fonts(args.fonts)
    rows = generate(args.out, args.per_label, args.seed, fonts, tuple(args.kinds))
    used = sorted({row["font"] for row in rows} - {"strokes"})
    print(f"wrote {len(rows)} images to {args.out} ({len(used)} fonts)")


if __name__ == "__main__":
    main()
