"""Developer tools, run from the repository's top as modules: python -m tools.benchmark, python -m tools.compare_runs."""
