from kedro.pipeline import Pipeline, node

from pose_zsl.environments import active_generates_synthetic

from .nodes import action_table, ingest_recordings, ingestion_report, synthetic_recordings


def create_pipeline(**kwargs) -> Pipeline:
    # only an environment whose raw recordings are the synthetic source generates them; a real
    # dataset's folder is read as it is
    generate = (
        [
            node(
                synthetic_recordings,
                inputs="params:synthetic_data",
                outputs="raw_recordings",
                name="synthetic_recordings",
            )
        ]
        if active_generates_synthetic()
        else []
    )
    return Pipeline(
        [
            *generate,
            node(
                ingest_recordings,
                inputs=["raw_recordings", "params:ingestion"],
                outputs=["samples", "sequences", "skipped_samples"],
                name="ingest_recordings",
            ),
            node(action_table, inputs="raw_recordings", outputs="actions", name="action_table"),
            node(
                ingestion_report,
                inputs=["samples", "skipped_samples", "actions"],
                outputs=["ingestion_report", "frames_histogram"],
                name="ingestion_report",
            ),
        ],
        tags="ingestion",
    )
