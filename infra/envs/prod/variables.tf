variable "project_id" {
  description = "Google Cloud project of the prod environment."
  type        = string
}

variable "region" {
  description = "Vertex AI region (pipelines, TPUs/GPUs, bucket, registries, TensorBoard)."
  type        = string
  default     = "us-central1"
}

variable "pipeline_submitters" {
  description = "Members (user:..., group:..., serviceAccount:...) allowed to run pipelines as the pipeline service account."
  type        = list(string)
  default     = []
}

variable "registry_writers" {
  description = "Members allowed to push images and upload pipeline templates, such as the Cloud Build service account."
  type        = list(string)
  default     = []
}
