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
