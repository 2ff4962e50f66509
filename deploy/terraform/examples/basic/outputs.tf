output "bootstrap_address" {
  description = "Kafka bootstrap address, reachable from inside the VPC."
  value       = module.silt.bootstrap_address
}

output "bucket" {
  description = "Segment bucket."
  value       = module.silt.bucket
}

output "db_endpoint" {
  description = "Metastore endpoint."
  value       = module.silt.db_endpoint
}

output "admin_password_secret" {
  description = "Secrets Manager secret holding the password of the SCRAM user admin."
  value       = module.silt.first_user_secret_arn
}
