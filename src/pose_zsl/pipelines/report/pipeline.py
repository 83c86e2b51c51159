from kedro.pipeline import Pipeline, node

from pose_zsl.grid import active, variant_key, variants

from .nodes import SEP, html_report

#: the markdown reports of the run, in page order (node keyword -> catalog entry)
MARKDOWN_INPUTS = {
    "zsl_top1": "zsl_top1_table",
    "over_splits": "over_splits_table",
    "gzsl": "gzsl_table",
    "gzsl_seen_unseen": "gzsl_seen_unseen_table",
    "splits": "split_report",
    "ingestion": "ingestion_report",
}


def create_pipeline(**kwargs) -> Pipeline:
    inputs = {"params": "params:report", "frames_histogram": "frames_histogram", **MARKDOWN_INPUTS}
    for split in active().splits:
        inputs[f"{split}{SEP}training_curve"] = f"{split}.stgcn_training_curve"
    for split, head, embedding in variants():
        key, name = variant_key(split, head, embedding), f"{split}.{head}.{embedding}"
        inputs[f"{key}{SEP}confusion"] = f"{name}.confusion_matrix"
        inputs[f"{key}{SEP}joint_space"] = f"{name}.joint_space_map"
        inputs[f"{key}{SEP}per_class"] = f"{name}.per_class_accuracy"
    return Pipeline(
        [node(html_report, inputs=inputs, outputs="html_report", name="html_report")],
        tags="report",
    )
