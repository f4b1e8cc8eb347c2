"""`star captioning-train`: train one method's captioner on the train split's annotations (anchor = the
annotation's second, target = its anonymized caption); see star.train.stage for the arguments and outputs."""

from star.train.common import add_data_arguments as add_arguments
from star.train.stage import train_stage


def run(args) -> int:
    return train_stage(args, "captioning")


__all__ = ["add_arguments", "run"]
