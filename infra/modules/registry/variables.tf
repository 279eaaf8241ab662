variable "project_id" {
  description = "Project that owns the repositories."
  type        = string
}

variable "region" {
  description = "Region of the repositories (the Vertex AI region, so pulls stay in-region)."
  type        = string
}

variable "docker_repository_id" {
  description = "Docker repository for the step images."
  type        = string
  default     = "signpipe"
}

variable "kfp_repository_id" {
  description = "KFP repository for compiled pipeline templates."
  type        = string
  default     = "signpipe-pipelines"
}

variable "immutable_tags" {
  description = "Refuse to move an existing image tag: a tag then always names the same build."
  type        = bool
  default     = false
}

variable "untagged_retention_days" {
  description = "Days an untagged image version is kept before cleanup deletes it."
  type        = number
  default     = 14
}

variable "keep_image_versions" {
  description = "Most recent versions of each image that cleanup never deletes."
  type        = number
  default     = 20
}

variable "labels" {
  description = "Labels for cost attribution."
  type        = map(string)
  default     = {}
}
