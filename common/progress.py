"""The progress bar: on stderr, and only where a person watches it (a terminal)."""
import sys


def progress_bar(total, desc, enabled, **kwargs):
    """A tqdm bar on stderr, shown only when enabled and stderr is a terminal. tqdm is imported
    here, when a bar is made."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr,
                disable=not (enabled and sys.stderr.isatty()), **kwargs)
