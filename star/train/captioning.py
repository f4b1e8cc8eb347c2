"""`star captioning-train`: train one method's captioner on the train split's annotations (anchor = the
annotation's second, target = its anonymized caption); see star.train.stage for the arguments and outputs.
For an end-to-end method (kind `dense`: PDVC) it trains the whole model on clips instead (star.train.dense)."""

from star import registry
from star.train.common import add_data_arguments as add_arguments
from star.train.stage import stage_code, train_stage


def run(args) -> int:
    if registry.method(args.method).kind == "dense":
        from star.train.dense import train_dense

        return train_dense(args, stage_code("captioning", args.method))
    return train_stage(args, "captioning")


__all__ = ["add_arguments", "run"]
