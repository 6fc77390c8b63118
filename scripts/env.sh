# Shared environment for the scripts in this folder; source it, don't run it.
# Sets ROOT, puts the pinned Foundry binaries and the solc wrapper on PATH and
# keeps the Rust build cache outside the clone.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
export PATH="$ROOT/node_modules/.bin:$ROOT/tools:$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ecrop/target}"
export ECROP_PKCS11_MODULE="${ECROP_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}"
