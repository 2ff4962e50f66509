output "bootstrap_address" {
  description = "Kafka bootstrap address (host:port) for clients: the load balancer. After Metadata, clients connect to the agents' private IPs, so they must be able to reach the agent subnets."
  value       = "${aws_lb.kafka.dns_name}:${local.kafka_port}"
}

output "bucket" {
  description = "Name of the S3 bucket holding segment objects."
  value       = aws_s3_bucket.segments.bucket
}

output "bucket_url" {
  description = "The --bucket / SILT_BUCKET value the agents use."
  value       = local.bucket_url
}

output "db_endpoint" {
  description = "Metastore endpoint (host:port)."
  value       = aws_db_instance.metastore.endpoint
}

output "metastore_url" {
  description = "The --metastore / SILT_METASTORE value the agents use (no password: it is in db_secret_arn, injected as PGPASSWORD)."
  value       = local.metastore_url
}

output "db_secret_arn" {
  description = "Secrets Manager secret holding the metastore credentials (JSON: username, password, host, port, dbname)."
  value       = aws_secretsmanager_secret.metastore.arn
}

output "ecs_cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "ecs_service_name" {
  description = "ECS service running the agents."
  value       = aws_ecs_service.agents.name
}

output "agents_security_group_id" {
  description = "Security group of the agent tasks; add rules to it to admit more clients or scrapers."
  value       = aws_security_group.agents.id
}

output "log_group_name" {
  description = "CloudWatch log group of the agents."
  value       = aws_cloudwatch_log_group.agents.name
}

output "task_role_arn" {
  description = "IAM role the agents run as (S3 access to the cluster's prefix)."
  value       = aws_iam_role.task.arn
}
