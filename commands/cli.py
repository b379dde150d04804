"""What the commands share: argument types whose errors are plain words (argparse would
otherwise print the type function's name), and their messages on stderr."""
import argparse
import sys


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


def say(settings, message):
    """A message on stderr unless settings (the run's config, or parsed flags) say --quiet."""
    if not settings.quiet:
        print(message, file=sys.stderr, flush=True)


def report_export(settings, written, no_onnx):
    """What saved_model.export returned: the files written, and why there is no ONNX file."""
    say(settings, "exported to %s" % ", ".join(written))
    if no_onnx:
        print("warning: no ONNX file (%s); the MXNet export is written" % no_onnx, file=sys.stderr)
