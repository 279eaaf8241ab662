# signpipe's development environment: short retention, a bucket terraform may delete with its
# contents, movable image tags (rebuilding a `-dirty` tag is normal while iterating).

provider "google" {
  project = var.project_id
  region  = var.region
}

module "signpipe" {
  source = "../../modules/platform"

  project_id           = var.project_id
  region               = var.region
  environment          = "dev"
  run_retention_days   = 30
  force_destroy_bucket = true
  immutable_image_tags = false
  pipeline_submitters  = var.pipeline_submitters
  registry_writers     = var.registry_writers
}
