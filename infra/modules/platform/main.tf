# Everything one signpipe environment needs on Google Cloud, composed from the single-purpose
# modules beside this one. infra/envs/<env> calls this with that environment's settings, so dev
# and prod differ only in values, never in structure.

locals {
  labels = merge({ app = "signpipe", environment = var.environment }, var.labels)
  # Bucket names are global: the project id makes the default unique.
  bucket_name = coalesce(var.bucket_name, "${var.project_id}-signpipe-${var.environment}")
}

module "apis" {
  source = "../apis"

  project_id = var.project_id
}

module "storage" {
  source     = "../storage"
  depends_on = [module.apis]

  project_id          = var.project_id
  bucket_name         = local.bucket_name
  location            = var.region
  run_retention_days  = var.run_retention_days
  nearline_after_days = var.nearline_after_days
  force_destroy       = var.force_destroy_bucket
  labels              = local.labels
}

module "registry" {
  source     = "../registry"
  depends_on = [module.apis]

  project_id           = var.project_id
  region               = var.region
  docker_repository_id = var.docker_repository_id
  kfp_repository_id    = var.kfp_repository_id
  immutable_tags       = var.immutable_image_tags
  labels               = local.labels
}

module "iam" {
  source     = "../iam"
  depends_on = [module.apis]

  project_id           = var.project_id
  region               = var.region
  environment          = var.environment
  account_id           = var.service_account_id
  bucket_name          = module.storage.bucket_name
  docker_repository_id = module.registry.docker_repository_id
  kfp_repository_id    = module.registry.kfp_repository_id
  pipeline_submitters  = var.pipeline_submitters
  registry_writers     = var.registry_writers
}

module "tensorboard" {
  source     = "../tensorboard"
  depends_on = [module.apis]

  project_id   = var.project_id
  region       = var.region
  display_name = "signpipe-${var.environment}"
  labels       = local.labels
}
