#!/usr/bin/env bash
# Executes every evcxr notebook in notebooks/ headlessly, as CI does (called from .ci/run).
#
#   bash scripts/run-notebooks.sh [--demo] [--copies] [NAME...]  # NAME: e.g. biomass (default: all)
#   bash scripts/run-notebooks.sh --prepare-only                  # steps 1 and 2 only
#
# 1. Installs what is missing: the evcxr Jupyter kernel (`cargo install evcxr_jupyter
#    --locked`, then `evcxr_jupyter --install`) and the pinned Python packages of
#    notebooks/requirements.txt (nbconvert, nbclient, ...).
# 2. Builds the notebooks' dependencies once: every notebook starts with the same `:dep`
#    cell, so one evcxr build directory (EVCXR_TMPDIR, seeded with the workspace's Cargo.lock
#    for the same crate versions as the workspace) serves all of them.
# 3. Runs `jupyter nbconvert --to notebook --execute` with the Rust kernel on each notebook,
#    writing the executed copies under $OUT/executed (never into the repository), and fails
#    when a cell errors or a notebook shows no picture.
#
# 4. With --copies, and when every notebook passed: the small executed copies a reader browses
#    in the repository, notebooks/executed/NAME.ipynb (scripts/notebook-copies.py: pictures
#    at most 800 pixels wide in 256 colours, no execution timestamps). Commit them.
#
# --demo runs the notebooks without the fixtures (they fall back to `geobutton demo` data).
# Environment: GEOBUTTON_NOTEBOOKS_DIR (default ${TMPDIR:-/tmp}/geobutton-notebooks) holds the
# build directory, the executed notebooks and the notebooks' outputs; it is kept between runs
# so a second run reuses the compiled dependencies. NOTEBOOK_TIMEOUT: seconds per cell (1800);
# NOTEBOOK_STARTUP_TIMEOUT: seconds for the kernel to start (120).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
nbdir="$root/notebooks"
EVCXR_VERSION=0.22.0
out="${GEOBUTTON_NOTEBOOKS_DIR:-${TMPDIR:-/tmp}/geobutton-notebooks}"
timeout="${NOTEBOOK_TIMEOUT:-1800}"
start=$(date +%s)
stamp() { echo "== notebooks: $(( $(date +%s) - start )) s: $*" >&2; }

demo=0
prepare_only=0
copies=0
names=()
for a in "$@"; do
    case "$a" in
        --demo) demo=1 ;;
        --prepare-only) prepare_only=1 ;;
        --copies) copies=1 ;;
        -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}"; exit 0 ;;
        -*) echo "unknown option $a" >&2; exit 2 ;;
        *) names+=("${a%.ipynb}") ;;
    esac
done
if ((${#names[@]} == 0)); then
    names=(lidar-partitioning terrain-models ndvi-difference water-consumption biomass serverless)
fi
for n in "${names[@]}"; do
    [ -f "$nbdir/$n.ipynb" ] || { echo "no notebook $nbdir/$n.ipynb" >&2; exit 2; }
done

# --- 1. what is missing ---------------------------------------------------------------
stamp "checking the kernel and Python packages"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! cargo install --list | grep -q "^evcxr_jupyter v$EVCXR_VERSION:"; then
    stamp "installing evcxr_jupyter $EVCXR_VERSION (cargo install --locked; several minutes)"
    cargo install evcxr_jupyter --version "$EVCXR_VERSION" --locked
fi
if ! python3 -m pip install -q --disable-pip-version-check -r "$nbdir/requirements.txt" \
        --dry-run --report - 2>/dev/null | python3 -c 'import json,sys; sys.exit(1 if json.load(sys.stdin).get("install") else 0)'; then
    stamp "installing notebooks/requirements.txt"
    python3 -m pip install -q --disable-pip-version-check -r "$nbdir/requirements.txt"
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
fi
if ! jupyter kernelspec list 2>/dev/null | grep -q '^ *rust '; then
    evcxr_jupyter --install >/dev/null
fi

# --- 2. one build directory for every notebook ------------------------------------------
mkdir -p "$out/executed" "$out/work"
export EVCXR_TMPDIR="$out/evcxr"
mkdir -p "$EVCXR_TMPDIR"
# Same crate versions as the workspace (cargo keeps the lock's versions and adds what the
# notebook crate needs).
cp "$root/Cargo.lock" "$EVCXR_TMPDIR/Cargo.lock"
export GEOBUTTON_NOTEBOOK_OUT="$out/work"   # where the notebooks write their products
export GEOBUTTON_NOTEBOOK_CI=1              # never call AWS from here
export CARGO_TERM_COLOR=never
if ((demo)); then
    export GEOBUTTON_DATA="$out/no-fixtures"  # absent: the notebooks use `geobutton demo` data
    rm -rf "$GEOBUTTON_DATA" "$out/work/demo"
fi

execute() { # notebook-path output-name
    jupyter nbconvert --to notebook --execute \
        --ExecutePreprocessor.kernel_name=rust \
        --ExecutePreprocessor.timeout="$timeout" \
        --ExecutePreprocessor.startup_timeout="${NOTEBOOK_STARTUP_TIMEOUT:-120}" \
        --output-dir "$out/executed" --output "$2" "$1"
}

# The dependency cell (the first code cell) must be the same in every notebook, else each
# notebook would rebuild part of the dependency graph; a notebook of just that cell builds it.
python3 - "$nbdir" "$out/precompile.ipynb" "${names[@]}" <<'EOF'
import json, os, sys
nbdir, dest, names = sys.argv[1], sys.argv[2], sys.argv[3:]
first = {}
for n in names:
    nb = json.load(open(f"{nbdir}/{n}.ipynb"))
    first[n] = next("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
cells = set(first.values())
if len(cells) != 1:
    sys.exit("notebooks: the first code cells (the :dep cells) differ; keep them identical so "
             "the notebooks share one build: " + ", ".join(first))
# The same dependencies with absolute paths (evcxr makes them absolute anyway), so the
# notebook can run from the output folder.
cell = cells.pop().replace('path = "../', 'path = "' + os.path.dirname(os.path.abspath(nbdir)) + '/')
nb = json.load(open(f"{nbdir}/{names[0]}.ipynb"))
nb["cells"] = [
    {"cell_type": "code", "id": "deps", "metadata": {}, "execution_count": None, "outputs": [],
     "source": cell},
    {"cell_type": "code", "id": "ready", "metadata": {}, "execution_count": None, "outputs": [],
     "source": 'println!("dependencies built");'},
]
json.dump(nb, open(dest, "w"))
EOF
stamp "building the notebooks' dependencies (first run: the whole workspace and the AWS SDK)"
( cd "$out" && execute precompile.ipynb precompile-executed.ipynb )
stamp "dependencies built"
if ((prepare_only)); then
    exit 0
fi

# --- 3. the notebooks -------------------------------------------------------------------
failed=()
times=()
for n in "${names[@]}"; do
    t0=$(date +%s)
    stamp "executing $n.ipynb"
    if ( cd "$nbdir" && execute "$n.ipynb" "$n.ipynb" ); then
        # Executed without a cell error; it must also show at least one picture.
        if ! python3 - "$out/executed/$n.ipynb" <<'EOF'
import json, sys
nb = json.load(open(sys.argv[1]))
outs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
errors = [o for o in outs if o.get("output_type") == "error"]
pngs = [o for o in outs if "image/png" in o.get("data", {})]
print(f"   {len(pngs)} PNG picture(s), {len(errors)} error output(s)", file=sys.stderr)
sys.exit(1 if errors or not pngs else 0)
EOF
        then
            echo "notebooks: $n.ipynb shows no picture or has an error output" >&2
            failed+=("$n")
        fi
    else
        echo "notebooks: $n.ipynb failed (see the cell error above; executed copy: $out/executed/)" >&2
        failed+=("$n")
    fi
    times+=("$n $(( $(date +%s) - t0 )) s")
done

stamp "done"
printf '   %s\n' "${times[@]}" >&2
if ((${#failed[@]})); then
    echo "notebooks failed: ${failed[*]}" >&2
    exit 1
fi
echo "all ${#names[@]} notebooks executed; executed copies in $out/executed" >&2
if ((copies)); then
    stamp "small copies for the repository: notebooks/executed/"
    python3 "$here/notebook-copies.py" "$out/executed" "$nbdir/executed" "${names[@]}"
fi
