# The identity pipeline runs act as, with only what a run needs: run Vertex AI jobs and write to
# TensorBoard, pull the step images, write logs and metrics, and read/write objects in the
# pipeline-root bucket (granted on that bucket, never project-wide). Bindings are additive
# (`_member`), so applying this never removes access that others granted outside Terraform.

locals {
  pipeline_member = "serviceAccount:${google_service_account.pipeline.email}"

  # Project-level roles: the ones that have no narrower resource to be granted on.
  project_roles = [
    "roles/aiplatform.user",
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
  ]
}

resource "google_service_account" "pipeline" {
  project      = var.project_id
  account_id   = var.account_id
  display_name = "signpipe pipeline runs (${var.environment})"
  description  = "Identity of signpipe's Vertex AI pipeline runs and their steps."
}

resource "google_project_iam_member" "pipeline" {
  for_each = toset(local.project_roles)

  project = var.project_id
  role    = each.value
  member  = local.pipeline_member
}

# Objects: every step reads its inputs and writes its artifacts under the pipeline root.
resource "google_storage_bucket_iam_member" "pipeline_objects" {
  bucket = var.bucket_name
  role   = "roles/storage.objectAdmin"
  member = local.pipeline_member
}

# The bucket itself: Cloud Storage FUSE (the /gcs/ paths steps see) reads the bucket's metadata
# before mounting it, which objectAdmin does not include.
resource "google_storage_bucket_iam_member" "pipeline_bucket_metadata" {
  bucket = var.bucket_name
  role   = "roles/storage.legacyBucketReader"
  member = local.pipeline_member
}

# Step images are pulled from the Docker repository only.
resource "google_artifact_registry_repository_iam_member" "pipeline_pulls_images" {
  project    = var.project_id
  location   = var.region
  repository = var.docker_repository_id
  role       = "roles/artifactregistry.reader"
  member     = local.pipeline_member
}

# Vertex AI launches a run's custom jobs as the run's service account, which needs leave to act
# as itself.
resource "google_service_account_iam_member" "pipeline_acts_as_itself" {
  service_account_id = google_service_account.pipeline.name
  role               = "roles/iam.serviceAccountUser"
  member             = local.pipeline_member
}

# People and automation that submit or schedule runs as the pipeline service account.
resource "google_service_account_iam_member" "submitters_act_as_pipeline" {
  for_each = toset(var.pipeline_submitters)

  service_account_id = google_service_account.pipeline.name
  role               = "roles/iam.serviceAccountUser"
  member             = each.value
}

# Who may push images (a person, or the Cloud Build service account) and upload pipeline
# templates: writer on the two repositories, nothing project-wide.
resource "google_artifact_registry_repository_iam_member" "writers_push_images" {
  for_each = toset(var.registry_writers)

  project    = var.project_id
  location   = var.region
  repository = var.docker_repository_id
  role       = "roles/artifactregistry.writer"
  member     = each.value
}

resource "google_artifact_registry_repository_iam_member" "writers_upload_templates" {
  for_each = toset(var.registry_writers)

  project    = var.project_id
  location   = var.region
  repository = var.kfp_repository_id
  role       = "roles/artifactregistry.writer"
  member     = each.value
}
