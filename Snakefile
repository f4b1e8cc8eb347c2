# STaR pipeline: a thin map of stages. Every rule calls one entry point of the `star` package (workflow/rules/),
# configuration is validated in common.smk against workflow/schemas/config.schema.yaml.
#
#   snakemake --cores 8 data                 every cache of the configured dataset
#   snakemake --cores 8 --configfile config.yaml my_experiment.yaml data
#   snakemake --cores 8 results/table1.csv   SDVC, Delta, STaR and PDVC per encoder (also table3, table4, table6)
#   snakemake --cores 8 viewer               the viewer pages of the test games (results/viewer/)
#   snakemake --report report.html           tables, figures and viewer pages of what was built
#   snakemake --cores 8 results/diagnostics.csv   side/zone/long-range agreement, diversity, spotting confusion


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/world.smk"
include: "workflow/rules/video.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/positions.smk"
include: "workflow/rules/spotting.smk"
include: "workflow/rules/captioning.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/report.smk"


report: "workflow/report/workflow.rst"


rule data:
    input:
        data_targets(),


rule table1:
    input:
        "results/table1.csv",


rule table3:
    input:
        "results/table3.csv",


rule table4:
    input:
        "results/table4.csv",


rule table6:
    input:
        "results/table6.csv",


rule viewer:
    input:
        [f for f in table_figures("table1") if f.startswith("results/viewer/")],


rule diagnostics:
    input:
        "results/diagnostics.csv",


rule all:
    default_target: True
    input:
        rules.data.input,
        built_tables(),
