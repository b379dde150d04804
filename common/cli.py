"""What every command and tool shares: its parser, the one way a user error ends it, argument
types whose errors are plain words, and messages on stderr.

    ArgumentParser   argparse's, with every default in --help and a usage error in one line
                     (exit code 2; the usage block only on --help)
    UserError        the base of every error a user can mend (missing or damaged data,
                     checkpoint or model, a GPU this MXNet cannot run on); its message says what
                     to do
    command(main)    main(argv) with a UserError, or a file that cannot be read or written, as
                     one `error:` line and exit code 1
"""
import argparse
import functools
import sys

# Every exit code of the commands and tools, besides 0:
EXIT_ERROR = 1  # a user error: data, checkpoint, model, GPU or file
EXIT_USAGE = 2  # flags that cannot be run (argparse's code)
EXIT_DIVERGED = 3  # train_cifar10.py: the training loss became NaN or infinite
EXIT_TIMEOUT = 124  # launch.py: the job ran longer than --timeout (as timeout(1) exits)
EXIT_INTERRUPTED = 130  # stopped by Ctrl-C, SIGTERM (or a sweep's pruning): what a shell reports for Ctrl-C


class UserError(Exception):
    """An error the user can mend; the message names the file or setting and what to do."""


USER_ERRORS = (UserError, OSError)


class ArgumentParser(argparse.ArgumentParser):
    """A command's parser: --help shows each flag's default; a usage error is one line naming the
    problem and --help, with exit code 2."""

    def __init__(self, description, **kwargs):
        super().__init__(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                         **kwargs)

    def error(self, message):
        self.exit(EXIT_USAGE, "%s: error: %s (%s --help lists the flags)\n" % (self.prog, message, self.prog))


def command(main):
    """main(argv) -> exit code, with a user error (USER_ERRORS) said in one `error:` line and
    exit code 1 instead of a traceback."""
    @functools.wraps(main)
    def run(argv=None):
        try:
            return main(argv)
        except USER_ERRORS as e:
            print("error: %s" % e, file=sys.stderr)
            return EXIT_ERROR
    return run


def _whole_number(text, least):
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < least:
        raise argparse.ArgumentTypeError("expected a whole number of %d or more, got %r" % (least, text))
    return value


def positive_int(text):
    return _whole_number(text, 1)


def non_negative_int(text):
    return _whole_number(text, 0)


def positive_number(text):
    """A number above 0: an int when whole (5), else a float (9.9)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("expected a number above 0 (e.g. 5 or 9.9), got %r" % text)
    return int(value) if value.is_integer() else value


def say(settings, message):
    """A message on stderr unless settings (the run's config, or parsed flags) say --quiet."""
    if not settings.quiet:
        print(message, file=sys.stderr, flush=True)


def report_export(settings, written, no_onnx):
    """What training.export.export returned: the files written, and why there is no ONNX file."""
    say(settings, "exported to %s" % ", ".join(written))
    if no_onnx:
        print("warning: no ONNX file (%s); the MXNet export is written" % no_onnx, file=sys.stderr)
