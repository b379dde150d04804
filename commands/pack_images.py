"""Pack an image folder into MXNet RecordIO files for train_cifar10.py --rec-prefix.

    python pack_images.py ROOT PREFIX
    python train_cifar10.py --rec-prefix PREFIX

ROOT holds train/<class>/*.png|jpg|jpeg and test/<class>/... with the same class folders. Writes
PREFIX_train.rec/.idx, PREFIX_test.rec/.idx (each image file's bytes as they are, records in a
shuffled order) and PREFIX_classes.txt (the class folders in sorted order, one per line).
"""
from common.cli import ArgumentParser, command
from data import pack_records


def build_parser():
    parser = ArgumentParser(__doc__.split("\n\n")[0])
    parser.add_argument("root", help="the image folder (train/ and test/ with a folder per class)")
    parser.add_argument("prefix", help="where to write PREFIX_train.rec etc.")
    parser.add_argument("--seed", type=int, default=0, help="seeds the order of the records")
    return parser


@command
def main(argv=None):
    args = build_parser().parse_args(argv)
    counts = pack_records(args.root, args.prefix, seed=args.seed)
    print("packed %d training and %d test images into %s_train.rec and %s_test.rec"
          % (counts["train"], counts["test"], args.prefix, args.prefix))
    return 0
