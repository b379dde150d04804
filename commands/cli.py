"""Argument types the commands share: argparse checks each value as it reads it, and a bad one
is a usage error in plain words (argparse would otherwise print the type function's name)."""
import argparse


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
