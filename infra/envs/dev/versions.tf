# dev keeps its state in a local file (terraform.tfstate in this directory, ignored by git): a
# developer stands it up with init/plan/apply and nothing to create beforehand. prod keeps its
# state in a bucket (see infra/envs/prod/versions.tf).
terraform {
  required_version = "~> 1.9"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.40"
    }
  }
}
