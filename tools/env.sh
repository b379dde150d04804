# Sourced by train.sh and test.sh: the project's Python environment for this machine, built the
# first time and whenever a requirement file or the Python changes, reused as it is otherwise.
#   .venv-gpu   requirements.txt (mxnet-cu112 + NVIDIA's CUDA 11 wheels) where an NVIDIA driver is
#   .venv-cpu   requirements-cpu.txt (mxnet) elsewhere
# both with requirements-onnx.txt (ONNX export and ONNX Runtime), requirements-sweep.txt (Optuna,
# for sweep.py) and requirements-test.txt.
# CIFAR_MXNET_BUILD=cpu|gpu forces a set; PYTHON=/path/to/python3.11 chooses the Python.
# CIFAR_HOROVOD=1 also builds Horovod into it (requirements-horovod.txt; once, about 4 minutes).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# A Python that MXNet 1.9.1 runs on (3.8-3.11: its numpy<1.24 has no wheels for 3.12+).
choose_python() {
  local candidate
  for candidate in ${PYTHON:-} python3.11 python3.10 python3.9 python3.8 python3; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(not (3, 8) <= sys.version_info[:2] <= (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return
    fi
  done
  echo "error: no Python 3.8-3.11 found ($(python3 --version 2>&1 || echo 'no python3')): MXNet 1.9.1 needs" \
       "numpy<1.24, which has no wheels for Python 3.12 and newer. Install Python 3.11, or set" \
       "PYTHON=/path/to/python3.11" >&2
  exit 1
}

# gpu where the NVIDIA driver is loaded (or nvidia-smi answers), cpu otherwise.
choose_build() {
  case "${CIFAR_MXNET_BUILD:-auto}" in
    cpu|gpu) echo "$CIFAR_MXNET_BUILD" ;;
    auto) if [ -e /proc/driver/nvidia/version ] || nvidia-smi -L >/dev/null 2>&1; then echo gpu; else echo cpu; fi ;;
    *) echo "error: CIFAR_MXNET_BUILD=$CIFAR_MXNET_BUILD: use cpu, gpu or auto" >&2; exit 2 ;;
  esac
}

# Sets VENV to the environment of the chosen set, building it first if needed.
ensure_env() {
  local build python set stamp
  build=$(choose_build)
  python=$(choose_python)
  set="$ROOT/requirements-cpu.txt"
  [ "$build" = gpu ] && set="$ROOT/requirements.txt"
  VENV="$ROOT/.venv-$build"
  stamp=$({ "$python" --version 2>&1; cat "$set" "$ROOT"/requirements-{common,onnx,sweep,test}.txt; } \
          | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$VENV/.requirements-stamp" 2>/dev/null)" = "$stamp" ]; then
    return
  fi
  echo "setting up $VENV: the $build set ($(basename "$set")) with $("$python" --version 2>&1);" \
       "once, and again when a requirement file changes" >&2
  rm -rf "$VENV"
  "$python" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$set" \
    -r "$ROOT/requirements-sweep.txt" -r "$ROOT/requirements-test.txt"
  # --no-deps: see requirements-onnx.txt (onnxruntime's metadata asks for a numpy MXNet cannot run with)
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$ROOT/requirements-onnx.txt"
  echo "$stamp" > "$VENV/.requirements-stamp"  # last: an interrupted build is redone next time
}

# With CIFAR_HOROVOD=1: Horovod in the environment, built from source the first time.
HOROVOD_VERSION=0.28.1
ensure_horovod() {
  [ "${CIFAR_HOROVOD:-0}" = 1 ] || return 0
  local stamp
  stamp=$({ cat "$VENV/.requirements-stamp" "$ROOT/requirements-horovod.txt"; echo "$HOROVOD_VERSION"; } \
          | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$VENV/.horovod-stamp" 2>/dev/null)" = "$stamp" ]; then
    return
  fi
  if ! command -v c++ >/dev/null 2>&1 || ! command -v cmake >/dev/null 2>&1; then
    echo "error: CIFAR_HOROVOD=1 builds Horovod $HOROVOD_VERSION from source, which needs a C++" \
         "compiler and CMake (found: c++ $(command -v c++ || echo no), cmake $(command -v cmake || echo no)):" \
         "install them (Debian/Ubuntu: apt-get install g++ cmake) and run again" >&2
    exit 1
  fi
  echo "building Horovod $HOROVOD_VERSION into $VENV (MXNet, Gloo; once, a few minutes)" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/requirements-horovod.txt"
  # The build must find the installed MXNet: no build isolation. Gloo instead of MPI.
  HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITH_GLOO=1 \
    HOROVOD_WITHOUT_MPI=1 MAKEFLAGS="-j$(nproc)" \
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-build-isolation \
    "horovod==$HOROVOD_VERSION"
  echo "$stamp" > "$VENV/.horovod-stamp"
}
