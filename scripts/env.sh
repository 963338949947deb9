# Sourced by the scripts: the project-local Python and libtorch for building with tch.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIRTUAL_ENV="$ROOT/.venv"
export PATH="$ROOT/.venv/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export STYLERL_BIN="$ROOT/target/release/stylerl"
