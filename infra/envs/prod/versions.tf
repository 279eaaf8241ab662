# prod's state lives in a Cloud Storage bucket so a team shares it and its history is versioned.
# The bucket is created once by hand (it cannot manage itself) and named at init:
#   terraform -chdir=infra/envs/prod init -backend-config="bucket=STATE_BUCKET"
terraform {
  required_version = "~> 1.9"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.40"
    }
  }

  backend "gcs" {
    prefix = "signpipe/prod"
  }
}
