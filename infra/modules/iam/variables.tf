variable "project_id" {
  description = "Project of the service account and the project-level grants."
  type        = string
}

variable "region" {
  description = "Region of the Artifact Registry repositories."
  type        = string
}

variable "environment" {
  description = "Environment name, shown in the service account's display name."
  type        = string
}

variable "account_id" {
  description = "Service account id (the part before @)."
  type        = string
  default     = "signpipe-pipeline"
}

variable "bucket_name" {
  description = "The pipeline-root bucket the service account reads and writes."
  type        = string
}

variable "docker_repository_id" {
  description = "Docker repository the service account pulls step images from."
  type        = string
}

variable "kfp_repository_id" {
  description = "KFP repository that registry writers upload templates to."
  type        = string
}

variable "pipeline_submitters" {
  description = "Members (user:..., group:..., serviceAccount:...) allowed to run pipelines as the pipeline service account."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.pipeline_submitters : can(regex("^(user|group|serviceAccount|domain):", member))])
    error_message = "pipeline_submitters entries must be IAM members such as user:alice@example.com; public members are not allowed."
  }
}

variable "registry_writers" {
  description = "Members allowed to push images and upload pipeline templates (for example the Cloud Build service account)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.registry_writers : can(regex("^(user|group|serviceAccount|domain):", member))])
    error_message = "registry_writers entries must be IAM members such as serviceAccount:123-compute@developer.gserviceaccount.com; public members are not allowed."
  }
}
