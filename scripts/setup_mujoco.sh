#!/usr/bin/env bash
# Installs the MuJoCo shared library for mbrl-envs' optional `mujoco` feature (issue 7) into a
# project-local, git-ignored folder and prints the environment the build and the tests need.
#
# Usage (from anywhere):
#
#     eval "$(scripts/setup_mujoco.sh)"
#     cargo test -p mbrl-envs --features mujoco --test mujoco_gymnasium
#
# The `mujoco-rs` crate (7.0.0+mj-3.17.0) binds MuJoCo 3.17.0 and links the shared library
# dynamically from `MUJOCO_DYNAMIC_LINK_DIR`; it checks the library's version only on some
# paths, so the version is pinned here. The library comes from the PyPI wheel
# `mujoco==3.17.0`, which ships `libmujoco.so.3.17.0`; the wheel is installed with
# `pip install --target` into `.mujoco/python/`, and `.mujoco/lib/` holds `libmujoco.so`
# (and its versioned name) linked to the wheel's copy. Running the script again re-uses an
# existing installation (idempotent). Diagnostics go to stderr, the exports to stdout.
set -euo pipefail

MUJOCO_VERSION="3.17.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${ROOT}/.mujoco"
PY_TARGET="${PREFIX}/python"
LIB_DIR="${PREFIX}/lib"
PYTHON="${PYTHON:-python3}"

installed_version() {
    [ -f "${PY_TARGET}/mujoco/libmujoco.so.${MUJOCO_VERSION}" ] && echo "${MUJOCO_VERSION}"
}

if [ "$(installed_version || true)" != "${MUJOCO_VERSION}" ]; then
    echo "setup_mujoco: installing mujoco==${MUJOCO_VERSION} into ${PY_TARGET}" >&2
    rm -rf "${PY_TARGET}"
    mkdir -p "${PY_TARGET}"
    "${PYTHON}" -m pip install --quiet --no-deps --target "${PY_TARGET}" "mujoco==${MUJOCO_VERSION}" >&2
else
    echo "setup_mujoco: mujoco==${MUJOCO_VERSION} already installed in ${PY_TARGET}" >&2
fi

SO="${PY_TARGET}/mujoco/libmujoco.so.${MUJOCO_VERSION}"
if [ ! -f "${SO}" ]; then
    echo "setup_mujoco: the wheel has no ${SO}; is this Linux x86_64/aarch64?" >&2
    exit 1
fi
mkdir -p "${LIB_DIR}"
ln -sf "${SO}" "${LIB_DIR}/libmujoco.so.${MUJOCO_VERSION}"
ln -sf "${SO}" "${LIB_DIR}/libmujoco.so"

echo "export MUJOCO_DYNAMIC_LINK_DIR=\"${LIB_DIR}\""
echo "export LD_LIBRARY_PATH=\"${LIB_DIR}\${LD_LIBRARY_PATH:+:\${LD_LIBRARY_PATH}}\""
