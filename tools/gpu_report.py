"""What this machine gives MXNet, for bug reports: the Python, numpy, OMP_NUM_THREADS, MXNet's
build, each CUDA library it links and where it was found, and MXNet's view of the GPUs.

    python -m tools.gpu_report      (./train.sh --gpu-report runs it in the project's environment)

The steps of common.runtime.prepare, each reported instead of stopping at the first failure:
it answers even where MXNet cannot load.
"""
import sys

from common import runtime
from common.cli import ArgumentParser


def main(argv=None):
    ArgumentParser(__doc__.split("\n\n")[0]).parse_args(argv)
    print("\n".join(runtime.report()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
