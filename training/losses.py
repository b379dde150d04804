"""Losses beyond Gluon's own: cross-entropy against labels smoothed as airbench94 trains with
(PyTorch's CrossEntropyLoss(label_smoothing=s)): the target is 1 - s + s/K on the true class
and s/K on each of the others, K classes."""
from mxnet import gluon


class SmoothedCrossEntropy(gluon.loss.Loss):
    """Per-image cross-entropy of softmax(pred) against the smoothed one-hot label."""

    def __init__(self, num_classes, smoothing=0.2, **kwargs):
        super().__init__(weight=None, batch_axis=0, **kwargs)
        self.num_classes, self.smoothing = num_classes, smoothing

    def hybrid_forward(self, F, pred, label):
        target = F.one_hot(label, self.num_classes, on_value=1 - self.smoothing + self.smoothing / self.num_classes,
                           off_value=self.smoothing / self.num_classes)
        return -F.sum(target * F.log_softmax(pred, axis=-1), axis=-1)


def loss_function(config, num_classes):
    """The run's loss: label-smoothed where --label-smoothing asks for it."""
    if config.label_smoothing:
        return SmoothedCrossEntropy(num_classes, config.label_smoothing)
    return gluon.loss.SoftmaxCrossEntropyLoss()
