"""What every part of the project shares, below all of it: it imports nothing of the project and
never loads MXNet.

    runtime    the process MXNet runs in, made ready before MXNet loads: every entry point's way in
    interrupts Ctrl-C and SIGTERM from a command's first line to its last; the stage reached
    cli        the commands' parser, UserError, and the one way an error ends a command
    cuda       the CUDA 11 libraries of MXNet's GPU build, loaded before it; the GPU report
    cpu        the CPU: its model and flags, and whether oneDNN may run its AMX units
    engine     MXNet's execution engine, and the moment it and oneDNN start
    files      the one atomic write, JSON files, checksums
    progress   the progress bar on stderr
    memory     freed memory given back to the system after an epoch's evaluation

Importing any of them changes nothing in the process; `runtime.start` does, when an entry point
calls it.
"""
