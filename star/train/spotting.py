"""`star spotting-train`: train one method's spotter (background + 13 caption labels per window); see
star.train.stage for the arguments and outputs."""

from star.train.common import add_data_arguments as add_arguments
from star.train.stage import train_stage


def run(args) -> int:
    return train_stage(args, "spotting")


__all__ = ["add_arguments", "run"]
