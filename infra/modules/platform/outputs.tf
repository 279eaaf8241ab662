# The names signpipe reads (signpipe/cloud_settings.py TERRAFORM_OUTPUTS): keep them in step.

output "project" {
  description = "Project id."
  value       = var.project_id
}

output "region" {
  description = "Vertex AI region."
  value       = var.region
}

output "pipeline_root" {
  description = "gs:// pipeline root for Vertex AI Pipelines runs."
  value       = module.storage.pipeline_root
}

output "service_account_email" {
  description = "Service account pipeline runs act as."
  value       = module.iam.service_account_email
}

output "docker_registry" {
  description = "REGION-docker.pkg.dev/PROJECT/REPO, the --registry of `signpipe images build`."
  value       = module.registry.docker_registry
}

output "kfp_registry" {
  description = "https://REGION-kfp.pkg.dev/PROJECT/REPO, where compiled pipeline templates are uploaded."
  value       = module.registry.kfp_registry
}

output "tensorboard" {
  description = "Full resource name of the Vertex AI TensorBoard instance."
  value       = module.tensorboard.resource_name
}

output "run_retention_days" {
  description = "Days run artifacts are kept under the pipeline root; a run's cached outputs are reused for less than that."
  value       = var.run_retention_days
}
