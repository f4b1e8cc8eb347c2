# STaR pipeline: a thin map of stages. Every rule calls one entry point of the `star` package (workflow/rules/),
# configuration is validated in common.smk against workflow/schemas/config.schema.yaml.
#
#   snakemake --cores 8 data                 every cache of the configured dataset
#   snakemake --cores 8 --configfile config.yaml my_experiment.yaml data

configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/world.smk"
include: "workflow/rules/video.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/positions.smk"


rule data:
    input:
        data_targets(),


rule all:
    default_target: True
    input:
        rules.data.input,
