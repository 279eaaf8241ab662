# The Vertex AI TensorBoard instance training steps upload their scalars to, so every run's curves
# are browsable (and comparable across runs) from the Vertex AI console.

resource "google_vertex_ai_tensorboard" "runs" {
  project      = var.project_id
  region       = var.region
  display_name = var.display_name
  description  = "Training curves of signpipe pipeline runs."
  labels       = var.labels
}
