# Sourced by scripts/serve and scripts/test: make (once) and activate the project's virtualenv.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SAGEMAKER_EMULATOR_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating virtualenv $VENV" >&2
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
stamp="$VENV/.installed-$(sha1sum "$ROOT/pyproject.toml" | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "installing sagemaker-emulator and its test tools into $VENV" >&2
  python -m pip install --quiet --upgrade pip >&2
  python -m pip install --quiet -e "$ROOT[test]" >&2
  rm -f "$VENV"/.installed-* && touch "$stamp"
fi
