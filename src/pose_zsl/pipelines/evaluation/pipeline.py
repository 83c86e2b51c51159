from kedro.pipeline import Pipeline, node

from pose_zsl.grid import active, per_variant, variant_key, variants

from .nodes import collect_metrics, evaluate_variant, summarise_over_splits


def create_pipeline(**kwargs) -> Pipeline:
    template = Pipeline(
        [
            node(
                evaluate_variant,
                inputs=[
                    "zsl_model",
                    "zsl_repeat_models",
                    "calibration",
                    "features",
                    "label_embeddings",
                    "split_classes",
                    "params:evaluation",
                    "params:zsl_training.seed",
                    "params:stgcn_training.seed",
                    "repeat_features",
                ],
                outputs=[
                    "metrics",
                    "per_class_accuracy",
                    "confusion_matrix",
                    "joint_space_map",
                ],
                name="evaluate",
            )
        ]
    )
    evaluated = per_variant(lambda head: template, "params:evaluation")
    # the heads' and the ST-GCN's training seeds are global parameters, not one per namespace
    evaluated = Pipeline(
        evaluated,
        parameters={
            f"params:{split}.{head}.{embedding}.{name}": f"params:{name}"
            for split, head, embedding in variants()
            for name in ("zsl_training.seed", "stgcn_training.seed")
        },
    )
    collected = {variant_key(*v): f"{v[0]}.{v[1]}.{v[2]}.metrics" for v in variants()}
    collected |= {f"{split}__features": f"{split}.features" for split in active().splits}
    collected |= {f"{split}__split_classes": f"{split}.split_classes" for split in active().splits}
    collected |= {
        f"{split}__repeat_features": f"{split}.repeat_features" for split in active().splits
    }
    collected["params"] = "params:evaluation"
    collected["stgcn_seed"] = "params:stgcn_training.seed"
    summary = node(
        collect_metrics,
        inputs=collected,
        outputs=[
            "metrics",
            "mlflow_metrics",
            "zsl_top1_table",
            "gzsl_table",
            "gzsl_seen_unseen_table",
        ],
        name="collect_metrics",
    )
    over_splits = node(
        summarise_over_splits,
        inputs="metrics",
        outputs=["metrics_over_splits", "over_splits_table"],
        name="summarise_over_splits",
    )
    return (evaluated + Pipeline([summary, over_splits])).tag("evaluation")
