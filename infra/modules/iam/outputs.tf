output "service_account_email" {
  description = "Email of the service account pipeline runs act as."
  value       = google_service_account.pipeline.email
}

output "service_account_name" {
  description = "Full resource name of the pipeline service account."
  value       = google_service_account.pipeline.name
}
