"""Extract: a folder of labelled videos -> a landmark corpus, supplemental training data.

A container component, unlike the others: it runs on the `video` image (MediaPipe 0.10.x with its
own protobuf, docs/video.md), which holds signpipe but no kfp, so a lightweight Python component
(whose executor imports kfp inside the container) cannot run there. The container runs the
`signpipe extract` command itself, the same one a user runs, so the step needs nothing beyond what
the image already ships.

`signpipe extract` takes video files, not a folder. The component's shell line lists the folder's
files with a video ending (`signpipe.video.inputs.VIDEO_SUFFIXES`, any case: the rule
`extract_folder` applies), reports the others on stderr, and hands the videos over in name order.
Every video needs a label (`labels`: a csv with columns video,label), so the output is a training
corpus that `validate` accepts; `layout` defaults to the fingerspelling layout, which a
fingerspelling pipeline's corpus can take the result as supplemental data in.

`VIDEO_IMAGE` is only the component's default: compiling for Vertex AI, the pipeline sets the
step's real image (`signpipe.images.image_uris()["video"]`) with `set_container_image`.
"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from signpipe.images import FAMILIES
from signpipe.video.inputs import VIDEO_SUFFIXES

VIDEO_IMAGE = FAMILIES["video"].image
"""The video family's image name, until the pipeline names the registry and tag."""


def _any_case(suffix: str) -> str:
    """A shell `case` pattern matching a file ending in `suffix` in any letter case."""
    return "*" + "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in suffix)


VIDEO_PATTERNS = "|".join(_any_case(s) for s in sorted(VIDEO_SUFFIXES))

# `sh -c SCRIPT extract-videos VIDEOS LABELS CORPUS LAYOUT PARTICIPANT`: the positional parameters
# are then reused to hold the video list, so names with spaces survive and no argument is split.
EXTRACT_SCRIPT = f"""set -eu
videos=$1 labels=$2 corpus=$3 layout=$4 participant=$5
set --
for path in "$videos"/*; do
  [ -f "$path" ] || continue
  case "$path" in
    {VIDEO_PATTERNS}) set -- "$@" "$path" ;;
    *) echo "warning: skipped $path: not a video file ending" >&2 ;;
  esac
done
if [ "$#" -eq 0 ]; then
  echo "error: $videos: expected video files in this folder, found none" >&2
  exit 2
fi
mkdir -p "$(dirname "$corpus")"
exec signpipe extract "$@" --out "$corpus" --layout "$layout" --labels "$labels" --participant "$participant"
"""


@dsl.container_component
def extract_videos(
    videos: Input[Dataset],
    labels: Input[Dataset],
    corpus: Output[Dataset],
    layout: str = "fingerspelling",
    participant_id: int = 0,
):
    """MediaPipe Holistic landmarks of every video in the `videos` folder, written as a new
    corpus in `layout` ("fingerspelling" or "isolated-signs"), each video one sequence labelled
    from the `labels` csv (video,label); fails, naming every bad video and label, before any
    frame is landmarked when something is wrong."""
    return dsl.ContainerSpec(
        image=VIDEO_IMAGE,
        command=["sh", "-c", EXTRACT_SCRIPT, "extract-videos"],
        args=[videos.path, labels.path, corpus.path, layout, participant_id],
    )
