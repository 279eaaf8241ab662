output "services" {
  description = "The APIs enabled (depend on this output to order resources after them)."
  value       = sort([for service in google_project_service.required : service.service])
}
