"""Mesh helpers and the multi-host setup read from the environment (TPU pods, Vertex, explicit)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import jax
import numpy as np
import pytest

from signpipe.errors import ConfigError
from signpipe.train.mesh import (
    DATA_AXIS,
    DistributedSetup,
    check_batch_size,
    distributed_setup_from_env,
    make_mesh,
    maybe_initialize_distributed,
    process_rows,
    replicate,
    shard_batch,
)


def test_mesh_spans_every_device_and_shards_the_batch():
    mesh = make_mesh()
    assert mesh.axis_names == (DATA_AXIS,) and mesh.devices.size == jax.device_count()
    batch = shard_batch({"x": np.arange(8.0).reshape(4, 2)}, mesh)
    np.testing.assert_array_equal(np.asarray(batch["x"]), np.arange(8.0).reshape(4, 2))
    params = replicate({"w": np.ones(3)}, mesh)
    assert params["w"].sharding.is_fully_replicated
    assert process_rows(16) == slice(0, 16)


def test_batch_size_must_split_over_devices():
    four_devices = SimpleNamespace(devices=np.empty(4, dtype=object))
    check_batch_size(32, four_devices)
    with pytest.raises(ConfigError, match=r"batch_size=30 does not split over 4 devices.*batch_size=32"):
        check_batch_size(30, four_devices)


def test_nothing_to_do_for_a_single_process():
    assert distributed_setup_from_env({}) is None
    assert distributed_setup_from_env({"CLUSTER_SPEC": json.dumps({"cluster": {"workerpool0": ["a:2222"]},
                                                                    "task": {"type": "workerpool0", "index": 0}})}) is None
    assert distributed_setup_from_env({"TPU_WORKER_HOSTNAMES": "localhost"}) is None
    called = []
    assert maybe_initialize_distributed({}, initialize=lambda **kw: called.append(kw)) is None
    assert called == []


def test_explicit_jax_variables():
    env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.2:1234", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"}
    called = []
    setup = maybe_initialize_distributed(env, initialize=lambda **kw: called.append(kw))
    assert setup == DistributedSetup("JAX_COORDINATOR_ADDRESS", 4, 3, "10.0.0.2:1234")
    assert called == [{"coordinator_address": "10.0.0.2:1234", "num_processes": 4, "process_id": 3}]
    with pytest.raises(ConfigError, match="expected integers"):
        distributed_setup_from_env({**env, "JAX_PROCESS_ID": "three"})


def test_vertex_cluster_spec_numbers_processes_pool_by_pool():
    spec = {
        "cluster": {
            "workerpool0": ["cmle-training-workerpool0-ab-0:2222"],
            "workerpool1": ["cmle-training-workerpool1-ab-0:2222", "cmle-training-workerpool1-ab-1:2222"],
        },
        "task": {"type": "workerpool1", "index": 1},
        "job": "{}",
    }
    setup = distributed_setup_from_env({"CLUSTER_SPEC": json.dumps(spec)})
    assert setup == DistributedSetup("CLUSTER_SPEC", 3, 2, "cmle-training-workerpool0-ab-0:8476")
    primary = distributed_setup_from_env(
        {"CLUSTER_SPEC": json.dumps({**spec, "task": {"type": "workerpool0", "index": 0}}), "JAX_COORDINATOR_PORT": "9999"}
    )
    assert primary.process_id == 0 and primary.coordinator_address == "cmle-training-workerpool0-ab-0:9999"
    with pytest.raises(ConfigError, match="not a Vertex cluster spec"):
        distributed_setup_from_env({"CLUSTER_SPEC": "{not json"})
    with pytest.raises(ConfigError, match="task type 'workerpool7'"):
        distributed_setup_from_env({"CLUSTER_SPEC": json.dumps({**spec, "task": {"type": "workerpool7", "index": 0}})})


def test_tpu_pod_lets_jax_detect_its_peers():
    called = []
    setup = maybe_initialize_distributed({"TPU_WORKER_HOSTNAMES": "t1k-w-0,t1k-w-1"}, initialize=lambda **kw: called.append(kw))
    assert setup.source == "Cloud TPU" and called == [{}]


def test_a_vertex_tpu_slice_joins_its_hosts_from_the_tpu_metadata_whatever_cluster_spec_says():
    """A multi-host slice runs as one worker pool of one replica (`signpipe.custom_jobs` sets the
    number of VMs in `TPU_HOSTS_ENV`): every host joins the jax job, with jax reading its peers from
    the TPU metadata rather than from a CLUSTER_SPEC the documentation does not describe for it."""
    from signpipe.custom_jobs import TPU_HOSTS_ENV as LAUNCHER_NAME
    from signpipe.train.mesh import TPU_HOSTS_ENV

    assert TPU_HOSTS_ENV == LAUNCHER_NAME
    one_replica = {"cluster": {"workerpool0": ["host-0:2222"]}, "task": {"type": "workerpool0", "index": 0}}
    called = []
    setup = maybe_initialize_distributed({TPU_HOSTS_ENV: "4", "CLUSTER_SPEC": json.dumps(one_replica)},
                                         initialize=lambda **kw: called.append(kw))
    assert setup.source == "Cloud TPU slice of 4 hosts" and called == [{}]
    four = {"cluster": {"workerpool0": ["h0:1", "h1:1", "h2:1", "h3:1"]}, "task": {"type": "workerpool0", "index": 2}}
    assert distributed_setup_from_env({TPU_HOSTS_ENV: "4", "CLUSTER_SPEC": json.dumps(four)}).source.startswith("Cloud TPU")
    assert distributed_setup_from_env({TPU_HOSTS_ENV: "1", "CLUSTER_SPEC": json.dumps(one_replica)}) is None
    with pytest.raises(ConfigError, match="number of hosts"):
        distributed_setup_from_env({TPU_HOSTS_ENV: "four"})


def test_explicit_variables_win_over_cluster_spec():
    spec = {"cluster": {"workerpool0": ["a:1", "b:1"]}, "task": {"type": "workerpool0", "index": 1}}
    setup = distributed_setup_from_env({"CLUSTER_SPEC": json.dumps(spec), "JAX_COORDINATOR_ADDRESS": "c:5"})
    assert setup.source == "JAX_COORDINATOR_ADDRESS"
