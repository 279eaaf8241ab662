"""Pipeline components: one module per stage of the fingerspelling recipe (and `signs_*` for the
isolated-signs recipe; validate and publish serve both), each a thin
`@dsl.component` that maps its typed artifacts to paths, calls into `signpipe`, and records what
flowed (counts, the y scale, scores, sizes) as artifact metadata and `Metrics`.

Components carry no logic of their own (DESIGN.md): a stage's behaviour lives in `signpipe/`, so it
runs the same from Python, the CLI and the pipeline. They are lightweight Python components built
with `install_kfp_package=False`: locally they run in this environment
(`kfp.local.SubprocessRunner(use_venv=False)`), on Vertex AI in the project's images, which already
hold kfp and signpipe. `LOCAL_IMAGE` is only their default; the pipeline builder sets every task's
real image from `signpipe.images` when it compiles for Vertex (`pipelines.presets.TaskPlacement`).
"""

LOCAL_IMAGE = "python:3.11-slim"
"""The image a component names until the pipeline sets its step's image. Local runs never pull it
(the subprocess runner uses this interpreter); a Python image keeps that runner from warning."""
