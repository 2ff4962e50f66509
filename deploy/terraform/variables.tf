# ---------------------------------------------------------------------------
# Naming and placement
# ---------------------------------------------------------------------------

variable "name" {
  description = "Name prefix for every resource (ECS cluster and service, RDS instance, IAM roles, NLB, log group). Lowercase letters, digits and hyphens; at most 24 characters so derived names stay within AWS limits (NLB and target group names: 32)."
  type        = string
  default     = "silt"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,23}$", var.name))
    error_message = "name must start with a letter and use only lowercase letters, digits and hyphens, at most 24 characters."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

variable "vpc_id" {
  description = "VPC to run in. The module creates no networking: bring a VPC with private subnets that reach S3 (a gateway endpoint is cheapest) and ECR/CloudWatch (NAT or interface endpoints)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets, in at least two availability zones, for the agents, the database and (when internal) the load balancer."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "Give at least two subnets (two availability zones): RDS subnet groups require it, and one zone is a single point of failure."
  }
}

variable "client_cidr_blocks" {
  description = "CIDR blocks of Kafka clients. They may connect to port 9092 on the load balancer (bootstrap) and on every agent task directly (after Metadata, clients talk to the agents' own addresses). Typically the VPC's CIDR and peered networks."
  type        = list(string)
}

variable "metrics_cidr_blocks" {
  description = "CIDR blocks allowed to reach the agents' admin port 9644 (Prometheus /metrics, /healthz, /readyz, /debug/pprof). Empty: only the load balancer's health checks. pprof is served there too, so keep this to your monitoring network."
  type        = list(string)
  default     = []
}

# ---------------------------------------------------------------------------
# Agents (ECS Fargate)
# ---------------------------------------------------------------------------

variable "image" {
  description = "silt container image, e.g. <account>.dkr.ecr.<region>.amazonaws.com/silt:v0.1.0 (built from the repository's Dockerfile). Pin a tag or digest: a moving tag makes deployments unreproducible."
  type        = string
}

variable "task_cpu" {
  description = "CPU units per agent task (1024 = 1 vCPU). Agents are CPU-bound on CRC checks, compression and TLS; autoscaling tracks this."
  type        = number
  default     = 1024
}

variable "task_memory" {
  description = "Memory (MiB) per agent task. Must hold the produce buffer (flush_bytes, default 8 MiB, times the segments in flight) plus the in-memory part of the fetch cache."
  type        = number
  default     = 2048
}

variable "ephemeral_storage_gib" {
  description = "Fargate ephemeral storage per task (21-200 GiB); the fetch cache lives there. Nothing on it survives the task and nothing needs to."
  type        = number
  default     = 30
}

variable "cache_bytes" {
  description = "Fetch cache size on the task's disk (SILT_CACHE_BYTES). Keep it below ephemeral_storage_gib with room to spare."
  type        = number
  default     = 17179869184 # 16 GiB
}

variable "min_agents" {
  description = "Minimum number of agent tasks. Two or more keeps the cluster serving through a task replacement."
  type        = number
  default     = 2
}

variable "max_agents" {
  description = "Maximum number of agent tasks autoscaling may run."
  type        = number
  default     = 12
}

variable "cpu_target_percent" {
  description = "Average CPU utilisation autoscaling keeps the service at. Lower reacts to bursts earlier and costs more."
  type        = number
  default     = 60
}

variable "flush_bytes" {
  description = "Segment size that triggers an upload (SILT_FLUSH_BYTES). Larger segments mean fewer PUTs (cheaper) and more memory."
  type        = number
  default     = 8388608 # 8 MiB
}

variable "flush_interval" {
  description = "Longest time a record waits in the buffer before upload (SILT_FLUSH_INTERVAL, Go duration). It is the floor of produce latency; lower means more PUTs."
  type        = string
  default     = "250ms"
}

variable "auto_create_topics" {
  description = "Create unknown topics on Metadata/Produce, like Kafka's auto.create.topics.enable. Off in production: a typo should be an error, not a topic."
  type        = bool
  default     = false
}

variable "default_partitions" {
  description = "Partition count of auto-created topics and of CreateTopics requests that pass -1."
  type        = number
  default     = 6
}

variable "log_level" {
  description = "silt log level: debug, info, warn or error. Logs are JSON, in CloudWatch."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "CloudWatch log retention for the agents."
  type        = number
  default     = 30
}

variable "extra_environment" {
  description = "More environment for the agent container (any SILT_* setting not covered by a variable here)."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------
# Load balancer
# ---------------------------------------------------------------------------

variable "nlb_internal" {
  description = "Internal load balancer (true) or internet-facing. The agents advertise their private IPs, so clients must be inside the VPC (or a peered/connected network) either way; see README.md, Advertised addresses."
  type        = bool
  default     = true
}

variable "nlb_subnet_ids" {
  description = "Subnets of the load balancer. Empty: private_subnet_ids."
  type        = list(string)
  default     = []
}

# ---------------------------------------------------------------------------
# Bucket
# ---------------------------------------------------------------------------

variable "bucket_name" {
  description = "S3 bucket for segment objects. Empty: a unique name starting with the name prefix."
  type        = string
  default     = ""
}

variable "bucket_prefix" {
  description = "Key prefix inside the bucket for this cluster's objects (several clusters can share a bucket). No leading or trailing slash."
  type        = string
  default     = "silt"
}

variable "bucket_kms_key_arn" {
  description = "KMS key for bucket encryption (SSE-KMS). Empty: SSE-S3 (AES-256, no KMS cost or request quota)."
  type        = string
  default     = ""
}

variable "bucket_force_destroy" {
  description = "Let terraform destroy delete a non-empty bucket. Only for throwaway clusters: the bucket holds all record data."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------
# Metastore (RDS PostgreSQL)
# ---------------------------------------------------------------------------

variable "db_instance_class" {
  description = "RDS instance class. Every produced segment is one transaction and every fetch miss an index lookup: size for commit rate, not storage."
  type        = string
  default     = "db.m7g.large"
}

variable "db_engine_version" {
  description = "PostgreSQL major (or major.minor) version."
  type        = string
  default     = "16"
}

variable "db_allocated_storage_gib" {
  description = "Initial gp3 storage. The metastore holds indexes, not data: tens of GiB go a long way."
  type        = number
  default     = 50
}

variable "db_max_allocated_storage_gib" {
  description = "Storage autoscaling ceiling (0 disables it)."
  type        = number
  default     = 500
}

variable "db_multi_az" {
  description = "Standby in a second zone. The metastore is the cluster's single source of order: without Multi-AZ a zone outage stops all produce."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Automated backup retention (1-35 days)."
  type        = number
  default     = 7
}

variable "db_deletion_protection" {
  description = "Refuse to delete the database (terraform destroy fails until this is false)."
  type        = bool
  default     = true
}

variable "db_skip_final_snapshot" {
  description = "Skip the final snapshot on deletion. Only for throwaway clusters."
  type        = bool
  default     = false
}

variable "cpu_architecture" {
  description = "Fargate CPU architecture, X86_64 or ARM64 (Graviton: cheaper per vCPU). The image must be built for it (the Dockerfile cross-compiles: docker buildx build --platform linux/arm64)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "address_helper_image" {
  description = "Small image with sh, wget, tr and sed for the init container that writes each task's private IP into the file silt advertises (see README.md, Advertised addresses)."
  type        = string
  default     = "public.ecr.aws/docker/library/busybox:1.36"
}
