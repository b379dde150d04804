"""The network registry (models/zoo.py): one row per network, from which --model's help, its
error for an unknown name and the rest of the code's questions are answered; a network of a
user's own, registered here alone, trains through train_cifar10.py's main."""
import json

import mxnet as mx
import pytest
from mxnet.gluon import nn

import models
from helpers import json_lines


class TinyNet(nn.HybridBlock):
    """Two layers; its children are named as the spec's network's (features, output)."""

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.features = nn.HybridSequential()
        self.features.add(nn.Conv2D(8, 3, padding=1, activation="relu"), nn.GlobalAvgPool2D())
        self.output = nn.Dense(num_classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


TINY = models.Network("tiny", "two layers", lambda n, ctx, population_statistics, bf16_on_amx: TinyNet(n),
                      initializer=mx.init.Xavier(), aliases=("tn",))


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(models.NETWORKS, TINY.name, TINY)
    monkeypatch.setenv("COMET_DISABLE", "1")
    return TINY


def test_a_network_of_ones_own_trains_through_main(tiny, data_dir, tmp_path, capsys):
    from commands import train

    prefix = str(tmp_path / "ck")
    assert train.main(["--model", "tn", "--data-dir", data_dir, "--classes", "0,1", "--epochs", "2", "--quiet",
                       "--lr", "0.05", "--output-dir", str(tmp_path / "run"), "--model-prefix", prefix]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert [line["epoch"] for line in lines] == [0, 1] and lines[-1]["test_acc"] > 0.5  # learnt, not guessed
    with open(prefix + "-0002.json") as f:
        record = json.load(f)
    assert record["model"] == "tiny" and "bnstats" not in record["files"]  # running statistics: none to form
    assert "'tiny' or 'tn' (two layers)" in train_help()


def train_help():
    """train_cifar10.py --help on one line (argparse wraps lines at spaces and hyphens)."""
    from commands import train_flags

    return " ".join(train_flags.build_parser().format_help().split()).replace("- ", "-")


def test_the_help_and_the_error_for_an_unknown_name_list_every_network(usage):
    said = train_help()
    for row in models.NETWORKS.values():
        assert "'%s'" % row.name in said
    assert "not %s, or a GluonCV model" % ", ".join(models.names()) in usage("--model", "nonesuch")
    assert models.names()[0] == "spec-resnet (spec)"


def test_each_question_about_a_network_is_its_row():
    assert [name for name in models.NETWORKS if models.uses_batch_statistics(name)] == ["spec-resnet"]
    assert {name: models.input_size(name) for name in models.NETWORKS} == {
        "spec-resnet": 32, "sub-inception-rrelu": 28, "inception-bn-small": 28, "airbench94": 32}
    assert models.image_convolution_filters("spec-resnet") == 16 and models.image_convolution_filters("airbench94") is None
    assert models.network("cifar_resnet20_v1").input_size == 32  # a GluonCV model: the GLUONCV row


def test_zoo_models_are_built_by_name_and_the_spec_is_the_default():
    net = models.build("cifar_resnet20_v1", 3)
    models.initialize(net, "cifar_resnet20_v1", mx.cpu())
    net.hybridize()
    assert net(mx.nd.zeros((2, 3, 32, 32))).shape == (2, 3)
    assert models.canonical_name("spec") == models.canonical_name("spec-resnet") == "spec-resnet"
    assert isinstance(models.build("spec-resnet", 3), models.SpecResNet)
