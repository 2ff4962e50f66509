variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-west-1"
}

variable "vpc_cidr" {
  description = "CIDR of the example VPC."
  type        = string
  default     = "10.42.0.0/16"
}

variable "image" {
  description = "silt image (a tag or digest in a registry the tasks can pull from)."
  type        = string
}

variable "tls_certificate_arn" {
  description = "Secrets Manager secret or SSM parameter ARN of the agents' PEM certificate (valid for *.<region>.compute.internal, e.g. issued by AWS Private CA)."
  type        = string
}

variable "tls_private_key_arn" {
  description = "Secrets Manager secret or SSM parameter ARN of the certificate's PEM private key."
  type        = string
}
