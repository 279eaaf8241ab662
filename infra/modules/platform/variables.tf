variable "project_id" {
  description = "Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Vertex AI region for pipelines, registries, the bucket and TensorBoard."
  type        = string
}

variable "environment" {
  description = "Environment name (dev, prod): part of resource names and labels."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}$", var.environment))
    error_message = "environment must be 1-15 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "bucket_name" {
  description = "Pipeline-root bucket name; null for PROJECT-signpipe-ENVIRONMENT."
  type        = string
  default     = null
}

variable "run_retention_days" {
  description = "Days pipeline runs are kept under the pipeline root."
  type        = number
}

variable "nearline_after_days" {
  description = "Days after which pipeline-root objects move to Nearline; 0 keeps them Standard."
  type        = number
  default     = 0
}

variable "force_destroy_bucket" {
  description = "Let terraform destroy delete the bucket with its objects."
  type        = bool
  default     = false
}

variable "docker_repository_id" {
  description = "Artifact Registry Docker repository for the step images."
  type        = string
  default     = "signpipe"
}

variable "kfp_repository_id" {
  description = "Artifact Registry KFP repository for pipeline templates."
  type        = string
  default     = "signpipe-pipelines"
}

variable "immutable_image_tags" {
  description = "Refuse to move an existing image tag."
  type        = bool
  default     = false
}

variable "service_account_id" {
  description = "Id of the pipeline service account."
  type        = string
  default     = "signpipe-pipeline"
}

variable "pipeline_submitters" {
  description = "Members allowed to run pipelines as the pipeline service account."
  type        = list(string)
  default     = []
}

variable "registry_writers" {
  description = "Members allowed to push images and upload pipeline templates."
  type        = list(string)
  default     = []
}

variable "labels" {
  description = "Extra labels on every labelled resource."
  type        = map(string)
  default     = {}
}
