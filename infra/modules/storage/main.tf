# The pipeline-root bucket: every step's artifacts (corpora, shards, checkpoints, TFLite models,
# metrics) under gs://BUCKET/pipeline-root/. Never public, one access model (IAM only), and old
# runs age out so a scheduled pipeline does not grow the bill forever.

resource "google_storage_bucket" "pipeline_root" {
  project       = var.project_id
  name          = var.bucket_name
  location      = var.location
  storage_class = "STANDARD"
  labels        = var.labels
  force_destroy = var.force_destroy

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = false
  }

  # Runs older than the retention period are deleted; published models live outside the
  # pipeline-root prefix and are kept.
  lifecycle_rule {
    condition {
      age            = var.run_retention_days
      matches_prefix = ["${var.pipeline_root_prefix}/"]
    }
    action {
      type = "Delete"
    }
  }

  # Runs past the cold-storage age move to Nearline (off when 0).
  dynamic "lifecycle_rule" {
    for_each = var.nearline_after_days > 0 ? [var.nearline_after_days] : []
    content {
      condition {
        age                   = lifecycle_rule.value
        matches_prefix        = ["${var.pipeline_root_prefix}/"]
        matches_storage_class = ["STANDARD"]
      }
      action {
        type          = "SetStorageClass"
        storage_class = "NEARLINE"
      }
    }
  }

  # Uploads interrupted by a killed step would otherwise be billed indefinitely.
  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }
}
