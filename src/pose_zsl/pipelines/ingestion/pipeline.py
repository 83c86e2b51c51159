from kedro.pipeline import Pipeline, node

from .nodes import action_table, ingest_recordings, ingestion_report


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
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
