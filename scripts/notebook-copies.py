#!/usr/bin/env python3
"""Small, readable copies of executed notebooks, for readers browsing the repository.

    python3 scripts/notebook-copies.py EXECUTED_DIR DEST_DIR [NAME...]

Called by `scripts/run-notebooks.sh --copies`, which executes the notebooks first. For each
notebook NAME.ipynb of EXECUTED_DIR (default: all), writes DEST_DIR/NAME.ipynb with:
- every PNG picture at most MAX_WIDTH pixels wide (Lanczos), reduced to a 256-colour
  palette: what GitHub shows inline, at a tenth of the bytes;
- no per-cell execution timestamps (nbconvert's `metadata.execution`), so that a rerun with
  the same results changes only what changed.
Text, tables and error outputs are kept as they are. Needs Pillow (notebooks/requirements.txt).
"""
import base64
import io
import json
import os
import sys

MAX_WIDTH = 800


def small_png(b64: str) -> str:
    from PIL import Image

    img = Image.open(io.BytesIO(base64.b64decode(b64)))
    img.load()
    if img.width > MAX_WIDTH:
        height = max(1, round(img.height * MAX_WIDTH / img.width))
        img = img.convert("RGBA").resize((MAX_WIDTH, height), Image.Resampling.LANCZOS)
    img = img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode("ascii")


def copy(src: str, dest: str) -> tuple[int, int]:
    nb = json.load(open(src))
    pictures = 0
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("execution", None)
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data:
                data["image/png"] = small_png(data["image/png"])
                pictures += 1
    text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    tmp = dest + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, dest)
    return pictures, len(text.encode())


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src_dir, dest_dir, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    if not names:
        names = sorted(
            n[: -len(".ipynb")]
            for n in os.listdir(src_dir)
            if n.endswith(".ipynb") and not n.startswith("precompile")
        )
    os.makedirs(dest_dir, exist_ok=True)
    for name in names:
        src = os.path.join(src_dir, name + ".ipynb")
        if not os.path.exists(src):
            print(f"notebook-copies: no executed {src}", file=sys.stderr)
            return 1
        pictures, size = copy(src, os.path.join(dest_dir, name + ".ipynb"))
        print(f"   {name}.ipynb: {pictures} picture(s), {size // 1024} KiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
