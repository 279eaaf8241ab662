variable "project_id" {
  description = "Project of the TensorBoard instance."
  type        = string
}

variable "region" {
  description = "Vertex AI region."
  type        = string
}

variable "display_name" {
  description = "Name shown in the Vertex AI console."
  type        = string
}

variable "labels" {
  description = "Labels for cost attribution."
  type        = map(string)
  default     = {}
}
