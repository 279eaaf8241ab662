"""Orbax checkpoints of a run: round trip, what is kept (last k + best), refusing another config."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from signpipe.errors import ConfigError
from signpipe.train.checkpoint import RunCheckpoints, abstract_like
from signpipe.fingerspelling.config import preset
from signpipe.train.mesh import make_mesh, replicated_sharding

CONFIG = preset("finetune", "smoke")


def train_state(step: int) -> dict:
    return {
        "step": jnp.int32(step),
        "params": {"w": jnp.full((3, 2), float(step)), "b": jnp.arange(2.0) + step},
        "opt_state": (jnp.zeros(3), {"count": jnp.int32(step)}),
    }


def test_round_trip_onto_the_mesh(tmp_path):
    with RunCheckpoints(tmp_path, keep=2) as checkpoints:
        assert checkpoints.latest_step() is None
        checkpoints.save(5, train_state(5), {"iterator": {"epoch": 1, "position": 2, "seed": 0}}, CONFIG)
        checkpoints.wait()
    target = abstract_like(train_state(0), replicated_sharding(make_mesh()))
    with RunCheckpoints(tmp_path, keep=2) as checkpoints:
        restored = checkpoints.restore_latest(target)
    assert restored.step == 5
    assert restored.progress == {"iterator": {"epoch": 1, "position": 2, "seed": 0}}
    for want, got in zip(jax.tree.leaves(train_state(5)), jax.tree.leaves(restored.state)):
        np.testing.assert_array_equal(want, got)
        assert got.sharding.is_fully_replicated
    assert jax.tree.structure(restored.state) == jax.tree.structure(train_state(0))


def test_keeps_the_last_k_and_the_best(tmp_path):
    scores = {2: 0.9, 4: 0.3, 6: 0.5}
    with RunCheckpoints(tmp_path, keep=2) as checkpoints:
        for step in range(1, 8):
            checkpoints.save(step, train_state(step), {}, CONFIG, score=scores.get(step))
        checkpoints.wait()
        assert checkpoints.all_steps() == [2, 6, 7]


def test_refuses_a_checkpoint_of_another_config(tmp_path):
    with RunCheckpoints(tmp_path) as checkpoints:
        checkpoints.save(1, train_state(1), {}, CONFIG)
        checkpoints.wait()
        checkpoints.check_config(dataclasses.replace(CONFIG, stop_after_step=3, log_every=1))
        with pytest.raises(ConfigError, match=r"another run config \(step 1\); differing: learning_rate: 0.002 -> 0.1"):
            checkpoints.check_config(dataclasses.replace(CONFIG, learning_rate=0.1))
        with pytest.raises(ConfigError, match="holds checkpoints of a finetune run, not pretrain"):
            checkpoints.check_config(preset("pretrain", "smoke"))


def test_unstructured_restore_gives_nested_dicts(tmp_path):
    with RunCheckpoints(tmp_path) as checkpoints:
        checkpoints.save(3, train_state(3), {}, CONFIG)
        checkpoints.wait()
        step, saved = checkpoints.restore_unstructured()
    assert step == 3
    np.testing.assert_array_equal(saved["params"]["w"], np.full((3, 2), 3.0))


# --- where the checkpoints live: Cloud Storage directly, never through the FUSE mount ----------------

def test_a_workdir_on_the_vertex_mount_keeps_its_checkpoints_at_its_gs_twin(tmp_path):
    from orbax.checkpoint._src.path import atomicity_defaults

    from signpipe.train.checkpoint import checkpoint_dir, completion_marker, storage_path

    assert str(checkpoint_dir("/gcs/bucket/root/123/finetune_4/model")) == "gs://bucket/root/123/finetune_4/model/checkpoints"
    assert str(checkpoint_dir("gs://bucket/runs/ft")) == "gs://bucket/runs/ft/checkpoints"
    assert str(checkpoint_dir(tmp_path / "ft")) == str(tmp_path / "ft" / "checkpoints")
    assert str(storage_path("runs/ft")).startswith("/") and str(storage_path("/gcsx/b")) == "/gcsx/b"
    on_mount, local = checkpoint_dir("/gcs/bucket/ft"), checkpoint_dir(tmp_path)
    # on gs:// a checkpoint is finished by a commit_success.txt written last, never by renaming its
    # temporary directory (FUSE cannot rename a directory atomically, by default not at all); the
    # choice is Orbax's own default for such paths, so readers that let Orbax decide agree with it
    assert completion_marker(on_mount).__name__ == "CommitFileTemporaryPath"
    assert completion_marker(local).__name__ == "AtomicRenameTemporaryPath"
    for directory in (on_mount, local):
        assert atomicity_defaults.get_default_temporary_path_class(directory) is completion_marker(directory)


def directory_renames(monkeypatch) -> list:
    import os

    renamed, rename = [], os.rename

    def spy(source, target, *args, **kwargs):
        if os.path.isdir(source):
            renamed.append((str(source), str(target)))
        return rename(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "rename", spy)
    return renamed


def test_with_commit_files_a_run_saves_without_renaming_directories_and_resumes_only_from_committed_steps(
        tmp_path, monkeypatch):
    """The checkpoint code under the completion rule it gets on gs:// (simulated on a local folder,
    since no Cloud Storage is reachable here): saves rename no directory, every step is marked by a
    commit_success.txt, and a step left without one (a save killed midway) is neither resumed from
    nor counted."""
    import orbax.checkpoint as ocp

    import signpipe.train.checkpoint as checkpoint

    renamed = directory_renames(monkeypatch)
    with RunCheckpoints(tmp_path / "rename", keep=2) as checkpoints:  # the file-system rule, for contrast
        checkpoints.save(1, train_state(1), {}, CONFIG)
        checkpoints.wait()
    assert renamed, "the local rule renames the step's temporary directory"
    renamed.clear()

    monkeypatch.setattr(checkpoint, "completion_marker", lambda directory: ocp.path.atomicity.CommitFileTemporaryPath)
    workdir = tmp_path / "commit"
    with RunCheckpoints(workdir, keep=2) as checkpoints:
        for step in (2, 4):
            checkpoints.save(step, train_state(step), {"iterator": {"epoch": 0, "position": step, "seed": 0}}, CONFIG)
        checkpoints.wait()
        assert checkpoints.all_steps() == [2, 4]
    assert renamed == []
    assert all((workdir / "checkpoints" / str(step) / "commit_success.txt").is_file() for step in (2, 4))
    (workdir / "checkpoints" / "4" / "commit_success.txt").unlink()  # as if the save of step 4 had been killed
    target = abstract_like(train_state(0), replicated_sharding(make_mesh()))
    with RunCheckpoints(workdir, keep=2, read_only=True) as checkpoints:
        assert checkpoints.all_steps() == [2]
        restored = checkpoints.restore_latest(target)
    assert restored.step == 2 and restored.progress["iterator"]["position"] == 2
    np.testing.assert_array_equal(restored.state["params"]["w"], np.full((3, 2), 2.0))


def test_checkpoints_are_copied_between_workdirs_where_they_live(tmp_path, monkeypatch):
    """`copy_checkpoints` (a relaunched custom job whose workdir kfp moved) copies from and to
    `checkpoint_dir`, here with /gcs-like paths mapped to a local stand-in for the bucket."""
    from etils import epath

    import signpipe.train.checkpoint as checkpoint

    mount, bucket = tmp_path / "mount", tmp_path / "bucket"
    monkeypatch.setattr(checkpoint, "storage_path",
                        lambda path: epath.Path(str(path).replace(str(mount), str(bucket), 1)))
    with RunCheckpoints(mount / "attempt-1", keep=2) as checkpoints:
        checkpoints.save(3, train_state(3), {}, CONFIG)
        checkpoints.wait()
    assert (bucket / "attempt-1" / "checkpoints" / "3").is_dir() and not (mount / "attempt-1").exists()
    copied = checkpoint.copy_checkpoints(mount / "attempt-1", mount / "attempt-2")
    assert copied > 3 and not (mount / "attempt-2").exists()
    with RunCheckpoints(mount / "attempt-2", read_only=True) as checkpoints:
        step, saved = checkpoints.restore_unstructured()
    assert step == 3
    np.testing.assert_array_equal(saved["params"]["w"], np.full((3, 2), 3.0))
    assert checkpoint.copy_checkpoints(mount / "nothing-here", mount / "attempt-3") == 0
