"""Video -> MediaPipe Holistic landmarks -> a corpus in either Kaggle layout (docs/video.md).

Two environments meet here. `holistic` and `worker` run only in the video environment
(mediapipe 0.10.x, protobuf < 5); `inputs`, `labels`, `environment`, `client`, `corpus_writer` and
`extract` run in the main one and reach MediaPipe only through the worker process. This package's
`__init__` imports nothing, so the worker starts without loading the main side's modules.
"""
