# signpipe's production environment: runs kept half a year (Nearline after a month), a bucket
# terraform refuses to delete while it holds objects, and immutable image tags so a revision tag
# always names the image that was tested.

provider "google" {
  project = var.project_id
  region  = var.region
}

module "signpipe" {
  source = "../../modules/platform"

  project_id           = var.project_id
  region               = var.region
  environment          = "prod"
  run_retention_days   = 180
  nearline_after_days  = 30
  force_destroy_bucket = false
  immutable_image_tags = true
  pipeline_submitters  = var.pipeline_submitters
  registry_writers     = var.registry_writers
}
