"""Pipeline components: one module per stage, each a thin `@dsl.component` that maps its typed
artifacts to paths, calls into `signpipe`, and records what flowed (counts, the y scale, scores,
sizes) as artifact metadata and `Metrics`. The steps follow the recipes: `components.fingerspelling`
holds the fingerspelling recipe's steps, `components.signs` the isolated-signs recipe's; the steps
both pipelines share stay here at the top (`corpus`, `validate`, `aspect`, `publish`,
`extract_videos`), with the helpers every step uses (`html_report`).

Components carry no logic of their own (DESIGN.md): a stage's behaviour lives in `signpipe/`, so it
runs the same from Python, the CLI and the pipeline. They are lightweight Python components built
with `install_kfp_package=False`: locally they run in this environment
(`kfp.local.SubprocessRunner(use_venv=False)`), on Vertex AI in the project's images, which already
hold kfp and signpipe. `LOCAL_IMAGE` is only their default; the pipeline builder sets every task's
real image from `signpipe.images` when it compiles for Vertex (`pipelines.placement.TaskPlacement`).
"""

LOCAL_IMAGE = "python:3.11-slim"
"""The image a component names until the pipeline sets its step's image. Local runs never pull it
(the subprocess runner uses this interpreter); a Python image keeps that runner from warning."""

HTML_SUFFIX = ".html"


def html_report(report, page: str) -> str:
    """Write `page` to the `Output[HTML]` artifact `report` under a name ending in `.html`.

    kfp hands an output artifact a URI with no extension (`.../gate/report`); a browser opens such
    a file as plain text. The artifact's local path follows its URI (`kfp.dsl.Artifact.path`), and
    the executor writes the URI back into the task's executor output, from which the local runner
    and Vertex AI both take the artifact's address; so the suffix is set on the URI before the page
    is written. Called from inside a component's function (imported there: lightweight components
    carry only their function's body). Returns the path written."""
    from pathlib import Path

    if not report.uri.endswith(HTML_SUFFIX):
        report.uri = report.uri + HTML_SUFFIX
    path = Path(report.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return str(path)
