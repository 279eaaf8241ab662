variable "project_id" {
  description = "Project that owns the bucket."
  type        = string
}

variable "bucket_name" {
  description = "Globally unique bucket name."
  type        = string
}

variable "location" {
  description = "Bucket location: the Vertex AI region, so steps read and write without cross-region traffic."
  type        = string
}

variable "pipeline_root_prefix" {
  description = "Folder under the bucket that Vertex AI Pipelines writes runs to."
  type        = string
  default     = "pipeline-root"
}

variable "run_retention_days" {
  description = "Age in days after which objects under the pipeline root are deleted."
  type        = number

  validation {
    condition     = var.run_retention_days >= 1
    error_message = "run_retention_days must be at least 1."
  }
}

variable "nearline_after_days" {
  description = "Age in days after which pipeline-root objects move to Nearline; 0 keeps them Standard."
  type        = number
  default     = 0

  validation {
    condition     = var.nearline_after_days >= 0
    error_message = "nearline_after_days must be 0 (off) or positive."
  }

  # Nearline bills at least 30 days of storage: deleting sooner than that after the move costs
  # more than staying in Standard.
  validation {
    condition     = var.nearline_after_days == 0 || var.nearline_after_days + 30 <= var.run_retention_days
    error_message = "nearline_after_days must be at least 30 days before run_retention_days."
  }
}

variable "force_destroy" {
  description = "Let terraform destroy delete a bucket that still holds objects (dev only)."
  type        = bool
  default     = false
}

variable "labels" {
  description = "Labels for cost attribution."
  type        = map(string)
  default     = {}
}
