# Read by `signpipe submit --from-terraform` (signpipe/cloud_settings.py): names must not change.

output "project" {
  description = "Project id."
  value       = module.signpipe.project
}

output "region" {
  description = "Vertex AI region."
  value       = module.signpipe.region
}

output "pipeline_root" {
  description = "gs:// pipeline root for Vertex AI Pipelines runs."
  value       = module.signpipe.pipeline_root
}

output "service_account_email" {
  description = "Service account pipeline runs act as."
  value       = module.signpipe.service_account_email
}

output "docker_registry" {
  description = "REGION-docker.pkg.dev/PROJECT/REPO, the --registry of `signpipe images build`."
  value       = module.signpipe.docker_registry
}

output "kfp_registry" {
  description = "https://REGION-kfp.pkg.dev/PROJECT/REPO, where compiled pipeline templates are uploaded."
  value       = module.signpipe.kfp_registry
}

output "tensorboard" {
  description = "Full resource name of the Vertex AI TensorBoard instance."
  value       = module.signpipe.tensorboard
}

output "run_retention_days" {
  description = "Days run artifacts are kept under the pipeline root (signpipe keeps cache hits younger than that)."
  value       = module.signpipe.run_retention_days
}
