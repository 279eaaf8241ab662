output "docker_repository_id" {
  description = "Docker repository id."
  value       = google_artifact_registry_repository.docker.repository_id
}

output "kfp_repository_id" {
  description = "KFP repository id."
  value       = google_artifact_registry_repository.kfp.repository_id
}

output "docker_registry" {
  description = "Image prefix for `signpipe images build --registry`: REGION-docker.pkg.dev/PROJECT/REPO."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.docker.repository_id}"
}

output "kfp_registry" {
  description = "Template host for kfp.registry.RegistryClient: https://REGION-kfp.pkg.dev/PROJECT/REPO."
  value       = "https://${var.region}-kfp.pkg.dev/${var.project_id}/${google_artifact_registry_repository.kfp.repository_id}"
}
