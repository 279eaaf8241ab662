output "resource_name" {
  description = "projects/PROJECT/locations/REGION/tensorboards/ID, as aiplatform.init(experiment_tensorboard=...) takes it."
  value       = google_vertex_ai_tensorboard.runs.id
}
