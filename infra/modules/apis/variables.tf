variable "project_id" {
  description = "Project to enable the APIs in."
  type        = string
}

variable "services" {
  description = "APIs to enable: Vertex AI (pipelines, training, TensorBoard), Artifact Registry (images, pipeline templates), Cloud Build (image builds without local Docker), Cloud Storage (pipeline root), IAM, Logging and Monitoring (step logs and metrics)."
  type        = list(string)
  default = [
    "aiplatform.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "compute.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "storage.googleapis.com",
  ]
}
