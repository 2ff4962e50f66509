# The metastore: RDS for PostgreSQL. It orders every batch and holds group
# state, so it is Multi-AZ, encrypted, backed up and protected from deletion
# by default.

resource "aws_db_subnet_group" "metastore" {
  name       = "${var.name}-metastore"
  subnet_ids = var.private_subnet_ids
  tags       = local.tags
}

# A password terraform generates and keeps in Secrets Manager (and, marked
# sensitive, in the state). Not the RDS-managed secret: RDS rotates that one
# weekly, and running agents, which read it once at start, would fail to
# open new connections after each rotation. Rotate this one by replacing it
# (terraform apply -replace=random_password.metastore) and letting the ECS
# deployment roll the agents.
resource "random_password" "metastore" {
  length  = 40
  special = false # it travels in an environment variable; keep it shell- and URL-safe
}

resource "aws_secretsmanager_secret" "metastore" {
  name_prefix = "${var.name}-metastore-"
  description = "silt metastore (RDS PostgreSQL) password for user ${local.db_user}"
  tags        = local.tags
}

resource "aws_secretsmanager_secret_version" "metastore" {
  secret_id = aws_secretsmanager_secret.metastore.id
  secret_string = jsonencode({
    username = local.db_user
    password = random_password.metastore.result
    host     = aws_db_instance.metastore.address
    port     = aws_db_instance.metastore.port
    dbname   = local.db_name
  })
}

resource "aws_db_parameter_group" "metastore" {
  name_prefix = "${var.name}-metastore-"
  family      = "postgres${split(".", var.db_engine_version)[0]}"
  description = "silt metastore"
  tags        = local.tags

  # Force TLS regardless of the engine version's default.
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  # Metastore transactions are short; a session idle inside one is a bug
  # or a dead agent holding row locks on partitions.
  parameter {
    name  = "idle_in_transaction_session_timeout"
    value = "60000"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "metastore" {
  identifier     = "${var.name}-metastore"
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  db_name  = local.db_name
  username = local.db_user
  password = random_password.metastore.result
  port     = local.db_port

  allocated_storage     = var.db_allocated_storage_gib
  max_allocated_storage = var.db_max_allocated_storage_gib > 0 ? var.db_max_allocated_storage_gib : null
  storage_type          = "gp3"
  storage_encrypted     = true

  multi_az               = var.db_multi_az
  db_subnet_group_name   = aws_db_subnet_group.metastore.name
  vpc_security_group_ids = [aws_security_group.metastore.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.metastore.name

  backup_retention_period   = var.db_backup_retention_days
  copy_tags_to_snapshot     = true
  deletion_protection       = var.db_deletion_protection
  skip_final_snapshot       = var.db_skip_final_snapshot
  final_snapshot_identifier = var.db_skip_final_snapshot ? null : "${var.name}-metastore-final"

  auto_minor_version_upgrade   = true
  performance_insights_enabled = true
  # Minor upgrades and parameter changes wait for the maintenance window.
  apply_immediately = false

  tags = local.tags
}
