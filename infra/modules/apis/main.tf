# The Google Cloud APIs a signpipe deployment calls. Every other module depends on this one, so a
# fresh project gets its APIs before Terraform creates anything that needs them.

resource "google_project_service" "required" {
  for_each = toset(var.services)

  project = var.project_id
  service = each.value

  # Turning an API off on destroy would break anything else in the project that uses it.
  disable_on_destroy         = false
  disable_dependent_services = false
}
