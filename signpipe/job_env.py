"""Environment variables a Vertex AI custom job's launcher sets for the training process it starts.

The launcher (`signpipe.custom_jobs`, which must not load jax) and the training side
(`signpipe.train.mesh`, which reads the variable when it sets up the jax job) both import the name
from here, so they cannot disagree on it.
"""

TPU_HOSTS_ENV = "SIGNPIPE_TPU_HOSTS"
"""The number of VMs of the TPU slice, which a Vertex AI custom job launched by
`signpipe.custom_jobs` sets on a multi-host slice's containers, so every host joins the jax job
(`signpipe.train.mesh`) even where the environment does not describe the slice. Vertex runs such a
slice as one worker pool of one replica, and its documentation does not say what `CLUSTER_SPEC`
then lists, so jax finds its peers from the TPU metadata (as on any Cloud TPU slice); where that
metadata is missing, the job fails in `jax.distributed.initialize` instead of training as
independent hosts."""
