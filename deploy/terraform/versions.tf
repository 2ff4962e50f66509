terraform {
  # optional() object attributes and check blocks.
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # manage_master_user_password (RDS-managed secret) and security groups
      # on network load balancers.
      version = ">= 5.40.0, < 7.0.0"
    }
    # The metastore password (kept in Secrets Manager and the state).
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5.0, < 4.0.0"
    }
  }
}
