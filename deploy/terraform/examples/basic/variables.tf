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
