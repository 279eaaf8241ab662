"""How well does CTC forced alignment find when each character is signed? Scored on synthetic ground truth.

    .venv/bin/python benchmarks/alignment_quality.py --workdir RUN --corpus CORPUS --shards SHARDS
        [--split train] [--ctcseg-python /tmp/ctcseg/bin/python]
    .venv/bin/python benchmarks/alignment_quality.py [--workdir DIR] [--sequences 600] [--steps 1000]
        (no --workdir: makes a synthetic corpus and trains a smoke-preset model on it first)

A synthetic corpus (`signpipe.data.synth`) knows the frames in which each character's hand shape
dominates (`read_ground_truth`: start/end frame per character). The trained model's per-frame
log-probabilities of every sequence are computed once; then

- `signpipe.fingerspelling.align` (`ctc_forced_align`, Viterbi over the blank-interleaved label) gives each
  character's frames on the best path ("path spans": a CTC model fires a character on a frame or
  two, so these are narrow) and `character_segments` widens them into a tiling of the spelled
  stretch (each blank run split at its middle);
- `ctc-segmentation` (the reference library, `--ctcseg-python`: an interpreter that has it, since
  it is not a signpipe dependency) runs on the same log-probabilities, saved to a .npz; a
  character's span there is from its start to the next one's.

For each: mean absolute error of the start and end frames against the truth, the share of
characters whose span overlaps the true one, the share whose first frame lies inside the true span,
and the time spent aligning (the model's forward pass excluded). Reported over every sequence the
aligner could align and over those it did not flag as low-confidence.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BLANK = 59
N_CLASSES = 60


def ctcseg_worker(in_path: str, out_path: str) -> None:
    """Run ctc-segmentation on saved log-probabilities (this runs under the other interpreter, so it
    imports nothing of signpipe)."""
    from ctc_segmentation import CtcSegmentationParameters, ctc_segmentation, prepare_token_list

    data = np.load(in_path)
    frame_offsets = np.concatenate([[0], np.cumsum(data["frame_lengths"])])
    label_offsets = np.concatenate([[0], np.cumsum(data["label_lengths"])])
    config = CtcSegmentationParameters(char_list=[str(i) for i in range(N_CLASSES)], blank=BLANK, index_duration=1.0)
    starts = np.full(label_offsets[-1], -1, dtype=np.int64)
    ends = np.full(label_offsets[-1], -1, dtype=np.int64)
    started = time.perf_counter()
    failures = 0
    for k in range(len(data["frame_lengths"])):
        log_probs = data["log_probs"][frame_offsets[k] : frame_offsets[k + 1]]
        label = data["labels"][label_offsets[k] : label_offsets[k + 1]]
        try:
            ground_truth, _ = prepare_token_list(config, [label])
            timings, _, _ = ctc_segmentation(config, log_probs, ground_truth)
        except (AssertionError, IndexError):
            failures += 1
            continue
        # ground truth is [start symbol, blank, c1 .. cL, blank]: character i starts at timings[i + 2]
        boundaries = np.rint(timings[2 : 2 + len(label) + 1]).astype(np.int64)
        starts[label_offsets[k] : label_offsets[k + 1]] = boundaries[:-1]
        ends[label_offsets[k] : label_offsets[k + 1]] = np.maximum(boundaries[1:], boundaries[:-1] + 1)
    np.savez(out_path, starts=starts, ends=ends, seconds=time.perf_counter() - started, failures=failures)


def span_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """predicted, truth: [N, 2] start/end (exclusive) frames of the same N characters."""
    start_error = np.abs(predicted[:, 0] - truth[:, 0])
    end_error = np.abs(predicted[:, 1] - truth[:, 1])
    overlaps = (np.minimum(predicted[:, 1], truth[:, 1]) > np.maximum(predicted[:, 0], truth[:, 0]))
    start_inside = (predicted[:, 0] >= truth[:, 0]) & (predicted[:, 0] < truth[:, 1])
    return {
        "characters": int(len(truth)),
        "start_mae": float(start_error.mean()),
        "end_mae": float(end_error.mean()),
        "boundary_mae": float((start_error.mean() + end_error.mean()) / 2),
        "overlap_share": float(overlaps.mean()),
        "start_inside_share": float(start_inside.mean()),
    }


def trained_model(workdir: Path, n_sequences: int, steps: int) -> tuple[Path, Path, Path]:
    """A synthetic corpus, its shards and a smoke-preset model trained on them."""
    import dataclasses

    from signpipe.data.synth import generate_fingerspelling, planted_y_scale
    from signpipe.fingerspelling.preprocess import preprocess
    from signpipe.fingerspelling.config import resolve_config
    from signpipe.fingerspelling.finetune import train_and_evaluate

    corpus, shards, run = workdir / "corpus", workdir / "shards", workdir / "model"
    generate_fingerspelling(corpus, n_sequences, seed=0)
    preprocess(corpus, shards, y_scale=planted_y_scale(corpus), validation_fraction=0.1)
    config = resolve_config("finetune", "smoke", [f"total_steps={steps}"])
    train_and_evaluate(dataclasses.replace(config, data_dir=str(shards)), run)
    return run, corpus, shards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", dest="model", type=Path, help="Finetuning workdir of a model trained on --shards.")
    parser.add_argument("--corpus", type=Path, help="The synthetic corpus the shards were made from (its ground truth).")
    parser.add_argument("--shards", type=Path)
    parser.add_argument("--split", default="train")
    parser.add_argument("--ctcseg-python", default="/tmp/ctcseg/bin/python",
                        help="Interpreter with ctc-segmentation installed ('' to skip the comparison).")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--sequences", type=int, default=600)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()

    from signpipe.fingerspelling.align import character_segments, ctc_forced_align
    from signpipe.fingerspelling.align.run import make_log_prob_function
    from signpipe.data.synth import read_ground_truth
    from signpipe.landmarks import features
    from signpipe.fingerspelling.shards import load_split, read_manifest
    from signpipe.fingerspelling.data import FEATURES_PER_FRAME, character_map_of, encode_phrase
    from signpipe.train.batching import bucket_length
    from signpipe.fingerspelling.finetune import load_finetuned_model

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="signpipe-alignment-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.model is None:
        args.model, args.corpus, args.shards = trained_model(workdir, args.sequences, args.steps)
    model, config, step = load_finetuned_model(args.model)
    manifest = read_manifest(args.shards)
    character_map = character_map_of(args.shards, manifest)
    _, truth_table = read_ground_truth(args.corpus)
    truth_table = truth_table.sort_values(["sequence_id", "char_index"])
    truth_by_id = {int(sid): group[["start_frame", "end_frame"]].to_numpy(np.int64)
                   for sid, group in truth_table.groupby("sequence_id")}  # fmt: skip
    sequences = [s for s in load_split(args.shards, args.split) if s.sequence_id in truth_by_id]
    labels = [encode_phrase(s.label, character_map, str(s.sequence_id)) for s in sequences]
    featurized = [features.featurize(s.frames, manifest["y_scale"], xp=np) for s in sequences]
    lengths = np.array([len(f) for f in featurized])

    # the model's log-probabilities, once, in length-sorted batches
    log_prob_function = make_log_prob_function(model)
    order = np.argsort(lengths, kind="stable")
    batches = [order[k : k + 64] for k in range(0, len(order), 64)]
    log_probs: list[np.ndarray] = [None] * len(sequences)  # type: ignore[list-item]
    forward_started = time.perf_counter()
    for chosen in batches:
        n_frames = bucket_length(int(lengths[chosen].max()), 32)
        inputs = np.zeros((64, n_frames, FEATURES_PER_FRAME), np.float32)
        mask = np.zeros((64, n_frames), bool)
        mask[: len(chosen)] = np.arange(n_frames)[None, :] < lengths[chosen][:, None]
        inputs[mask] = np.concatenate([featurized[i].reshape(lengths[i], -1) for i in chosen])
        out = log_prob_function(inputs, mask)
        for row, index in enumerate(chosen):
            log_probs[index] = out[row, : lengths[index]]
    forward_seconds = time.perf_counter() - forward_started

    # signpipe's aligner on the same batches
    ours: list = [None] * len(sequences)
    aligned_started = time.perf_counter()
    for chosen in batches:
        n_frames = int(lengths[chosen].max())
        padded = np.zeros((len(chosen), n_frames, N_CLASSES), np.float32)
        for row, index in enumerate(chosen):
            padded[row, : lengths[index]] = log_probs[index]
        label_lengths = np.array([len(labels[i]) for i in chosen])
        label_matrix = np.zeros((len(chosen), label_lengths.max()), np.int64)
        for row, index in enumerate(chosen):
            label_matrix[row, : label_lengths[row]] = labels[index]
        batch = ctc_forced_align(padded, lengths[chosen], label_matrix, label_lengths)
        for row, index in enumerate(chosen):
            ours[index] = batch.sequence(row)
    ours_seconds = time.perf_counter() - aligned_started

    methods: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
    possible = np.array([not a.impossible for a in ours])
    usable = np.array([not (a.impossible or a.low_confidence) for a in ours])
    truth = [truth_by_id[s.sequence_id] for s in sequences]
    char_rows = np.repeat(np.arange(len(sequences)), [len(label) for label in labels])
    methods["signpipe, path spans"] = (np.concatenate([a.spans for a in ours]), char_rows, ours_seconds)
    segments = [character_segments(a.spans, len(a.frame_classes)) for a in ours]
    methods["signpipe, segments"] = (np.concatenate(segments), char_rows, ours_seconds)

    ctcseg_note = "ctc-segmentation: skipped (no --ctcseg-python)"
    if args.ctcseg_python:
        with tempfile.TemporaryDirectory() as tmp:
            in_path, out_path = Path(tmp) / "log_probs.npz", Path(tmp) / "ctcseg.npz"
            np.savez(in_path, log_probs=np.concatenate(log_probs), frame_lengths=lengths,
                     labels=np.concatenate(labels), label_lengths=np.array([len(label) for label in labels]))  # fmt: skip
            result = subprocess.run([args.ctcseg_python, __file__, "--ctcseg-worker", str(in_path), str(out_path)],
                                    capture_output=True, text=True)  # fmt: skip
            if result.returncode == 0:
                seg = np.load(out_path)
                methods["ctc-segmentation"] = (np.stack([seg["starts"], seg["ends"]], axis=1), char_rows, float(seg["seconds"]))
                ctcseg_note = f"ctc-segmentation: {int(seg['failures'])} sequences failed"
                starts_ours = methods["signpipe, path spans"][0][:, 0]
                both = possible[char_rows] & (seg["starts"] >= 0)
                ctcseg_note += (f"; |start(signpipe) - start(ctc-segmentation)| = "
                                f"{np.abs(starts_ours[both] - seg['starts'][both]).mean():.2f} frames mean, "
                                f"{(starts_ours[both] == seg['starts'][both]).mean():.1%} identical")  # fmt: skip
            else:
                ctcseg_note = f"ctc-segmentation: failed to run ({result.stderr.strip().splitlines()[-1:]})"

    true_spans = np.concatenate(truth)
    print(f"model {args.model} (step {step}, {config.model_config().name}); {len(sequences)} {args.split} sequences, "
          f"{possible.sum()} alignable, {usable.sum()} not flagged; forward pass {forward_seconds:.1f} s")  # fmt: skip
    header = f"{'method':24} {'subset':10} {'chars':>6} {'start MAE':>9} {'end MAE':>8} {'bound. MAE':>10} {'overlap':>8} {'start in':>8} {'align s':>8}"
    print(header)
    print("-" * len(header))
    results = {}
    for name, (spans, rows, seconds) in methods.items():
        for subset, keep_rows in (("alignable", possible), ("unflagged", usable)):
            keep = keep_rows[rows] & (spans[:, 0] >= 0)
            if not keep.any():
                continue
            scores = span_scores(spans[keep], true_spans[keep])
            results[f"{name} / {subset}"] = {**scores, "seconds": seconds}
            print(f"{name:24} {subset:10} {scores['characters']:>6} {scores['start_mae']:>9.2f} {scores['end_mae']:>8.2f} "
                  f"{scores['boundary_mae']:>10.2f} {scores['overlap_share']:>8.1%} {scores['start_inside_share']:>8.1%} "
                  f"{seconds:>8.2f}")  # fmt: skip
    true_lengths = true_spans[:, 1] - true_spans[:, 0]
    print(f"true character spans: {true_lengths.mean():.1f} frames on average; {ctcseg_note}")
    (workdir / "alignment_quality.json").write_text(json.dumps({"model": str(args.model), "results": results}, indent=2))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--ctcseg-worker"]:
        ctcseg_worker(sys.argv[2], sys.argv[3])
    else:
        main()
