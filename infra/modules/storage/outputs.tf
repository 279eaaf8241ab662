output "bucket_name" {
  description = "The pipeline-root bucket."
  value       = google_storage_bucket.pipeline_root.name
}

output "pipeline_root" {
  description = "gs:// URI that pipeline runs write to."
  value       = "gs://${google_storage_bucket.pipeline_root.name}/${var.pipeline_root_prefix}"
}
