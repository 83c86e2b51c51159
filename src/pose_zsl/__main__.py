"""Run the project with ``python -m pose_zsl`` (the same as ``kedro run``)."""

from pathlib import Path

from kedro.framework.cli.project import run
from kedro.framework.project import configure_project


def main(*args, **kwargs) -> None:
    configure_project(Path(__file__).parent.name)
    run(*args, **kwargs)


if __name__ == "__main__":
    main()
