# silt on AWS: segment objects in S3, the metastore in RDS PostgreSQL,
# stateless agents on ECS Fargate behind a network load balancer, scaled on
# CPU. See README.md for the design and its trade-offs.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  tags = merge({ "app" = "silt", "silt-cluster" = var.name }, var.tags)

  kafka_port = 9092
  admin_port = 9644
  db_port    = 5432
  db_name    = "silt"
  db_user    = "silt"

  nlb_subnet_ids = length(var.nlb_subnet_ids) > 0 ? var.nlb_subnet_ids : var.private_subnet_ids

  # What silt's --bucket takes. Credentials come from the task role.
  bucket_url = "s3://${aws_s3_bucket.segments.bucket}/${var.bucket_prefix}?region=${data.aws_region.current.id}"

  # No password in the URL: pgx reads PGPASSWORD, which ECS injects from
  # Secrets Manager. RDS for PostgreSQL 15+ forces TLS (rds.force_ssl).
  metastore_url = "postgres://${local.db_user}@${aws_db_instance.metastore.address}:${aws_db_instance.metastore.port}/${local.db_name}?sslmode=require"

  # Shared between the init container (writes) and silt (reads).
  run_dir          = "/run/silt"
  advertised_file  = "${local.run_dir}/advertised-addr"
  agent_container  = "silt"
  helper_container = "advertised-addr"
}
