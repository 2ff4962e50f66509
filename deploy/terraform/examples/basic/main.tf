# A complete silt cluster in a new VPC: three availability zones, private
# subnets for agents and database, a NAT gateway for image pulls, and an S3
# gateway endpoint so segment traffic skips the NAT (and its per-GB charge).
#
#   terraform init
#   terraform apply -var image=<account>.dkr.ecr.eu-west-1.amazonaws.com/silt:v0.1.0 \
#     -var tls_certificate_arn=<secret or parameter ARN> -var tls_private_key_arn=<...>
#
# Then, from a host inside the VPC (or connected to it), as the SCRAM user
# admin whose password the module generated:
#   pass=$(aws secretsmanager get-secret-value --secret-id "$(terraform output -raw admin_password_secret)" --query SecretString --output text)
#   kcat -b "$(terraform output -raw bootstrap_address)" -X security.protocol=SASL_SSL \
#     -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=admin -X sasl.password="$pass" \
#     -X ssl.ca.location=<your CA bundle> -L

provider "aws" {
  region = var.region
}

data "aws_availability_zones" "available" {
  state = "available"
}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, 3)
}

module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 5.0"

  name = "silt-example"
  cidr = var.vpc_cidr
  azs  = local.azs

  private_subnets = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 4, i)]
  public_subnets  = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, 48 + i)]

  enable_nat_gateway = true
  single_nat_gateway = true # an example: one NAT, not one per zone
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = module.vpc.vpc_id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = module.vpc.private_route_table_ids
}

module "silt" {
  source = "../.."

  name               = "silt-example"
  image              = var.image
  vpc_id             = module.vpc.vpc_id
  private_subnet_ids = module.vpc.private_subnets
  client_cidr_blocks = [var.vpc_cidr]
  # Prometheus inside the VPC may scrape the agents' admin ports.
  metrics_cidr_blocks = [var.vpc_cidr]

  min_agents = 2
  max_agents = 6

  # TLS + SCRAM (the defaults) with the certificate from Secrets Manager
  # or SSM; the module creates the user "admin" with a generated password.
  tls_certificate_arn = var.tls_certificate_arn
  tls_private_key_arn = var.tls_private_key_arn

  # A throwaway cluster: small, single-AZ database, deletable.
  db_instance_class      = "db.t4g.medium"
  db_multi_az            = false
  db_deletion_protection = false
  db_skip_final_snapshot = true
  bucket_force_destroy   = true
  auto_create_topics     = true

  tags = { environment = "example" }
}
