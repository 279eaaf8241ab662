# Two Artifact Registry repositories: Docker for the step images (docker/, one per family) and KFP
# for compiled pipeline templates, which Vertex AI can run and schedule by name and version.

resource "google_artifact_registry_repository" "docker" {
  project       = var.project_id
  location      = var.region
  repository_id = var.docker_repository_id
  format        = "DOCKER"
  description   = "signpipe step images (cpu, jax-tpu, jax-cuda, video), tagged by git revision"
  labels        = var.labels

  docker_config {
    immutable_tags = var.immutable_tags
  }

  cleanup_policy_dry_run = false

  # Untagged layers left behind by re-pushed tags go after the grace period...
  cleanup_policies {
    id     = "delete-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "${var.untagged_retention_days * 86400}s"
    }
  }

  # ...while the most recent versions of each image are always kept.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.keep_image_versions
    }
  }
}

resource "google_artifact_registry_repository" "kfp" {
  project       = var.project_id
  location      = var.region
  repository_id = var.kfp_repository_id
  format        = "KFP"
  description   = "signpipe compiled pipeline templates"
  labels        = var.labels
}
