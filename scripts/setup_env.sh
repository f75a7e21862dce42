#!/usr/bin/env bash
# Create (if needed) the virtual environment VENV and install gnndyn into it.
# An installed torch is kept; when none is importable, torch==2.13.0 (CPU) is installed.
set -euo pipefail
VENV="${1:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    if "$PYTHON" -c "import torch" >/dev/null 2>&1; then
        echo "gnndyn setup: keeping the torch already installed for $PYTHON"
        "$PYTHON" -m venv --system-site-packages "$VENV"
    else
        "$PYTHON" -m venv "$VENV"
    fi
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
    echo "gnndyn setup: no torch found, installing torch==2.13.0"
    "$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
fi
"$VENV/bin/python" -m pip install --quiet -e ".[test]"
"$VENV/bin/python" -c "import torch, gnndyn; print(f'gnndyn setup: torch {torch.__version__}, gnndyn {gnndyn.__version__}')"
