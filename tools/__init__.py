"""Developer tools, run from the repository's top as modules (those that compute with MXNet
through common.runtime.start):

    python -m tools.benchmark          train_cifar10.py against another training script, side by side
    python -m tools.compare_runs       runs and seed groups from their run folders (no MXNet)
    python -m tools.compare_runtimes   an export in MXNet and in ONNX Runtime on one test set
    python -m tools.flag_reference     docs/flags.md, every flag of every command, from the parsers
    python -m tools.gpu_report         Python, numpy, the CUDA libraries, MXNet's view of the GPUs
                                       (./train.sh --gpu-report), for bug reports
    python -m tools.step_profile       a training step's time and its operators (spec-resnet,
                                       airbench94), for finding where the time goes
    env.sh                             the environment ./train.sh and ./test.sh build and use
    torch_reference.py                 the spec's reference in PyTorch (requirements-torch.txt),
                                       to compare with in tools.benchmark; run as a file
    torch_best.py                      the same as a PyTorch user would speed it up on a CPU
    torch_airbench94.py                airbench94 in PyTorch on a CPU, to compare --recipe fast94 with
"""
