"""The spec's procedure: SGD with the flags' rate, weight decay and schedule in epochs, and
--augment's pad-and-crop with flip (also GluonCV's CIFAR recipes, through the flags)."""
from .base import Recipe


class SpecProcedure(Recipe):
    name = "spec"
    summary = "the spec's procedure, as these flags set it"


RECIPE = SpecProcedure()
