# Security of the Kafka listener: TLS + SASL/SCRAM and ACLs by default.
#
# Certificates and the first user's password come from AWS Secrets Manager
# or SSM Parameter Store (any ARN ECS can inject); ECS injects them into
# the task's init containers, which write the PEM files to the task-local
# volume silt reads and create the first SCRAM user in the metastore.
# See README.md, Security.

variable "security_protocol" {
  description = "Kafka listener protocol: SASL_SSL (TLS + SASL, the default), SSL (TLS, principals from client certificates), SASL_PLAINTEXT or PLAINTEXT (no TLS: only on a network you trust)."
  type        = string
  default     = "SASL_SSL"

  validation {
    condition     = contains(["SASL_SSL", "SSL", "SASL_PLAINTEXT", "PLAINTEXT"], var.security_protocol)
    error_message = "security_protocol must be SASL_SSL, SSL, SASL_PLAINTEXT or PLAINTEXT."
  }
}

variable "tls_certificate_arn" {
  description = "ARN of the PEM server certificate (with its chain): a Secrets Manager secret (arn:...:secret:NAME, or NAME:JSON_KEY:: for a key of a JSON secret) or an SSM parameter (arn:...:parameter/NAME, SecureString). Required with SSL and SASL_SSL. It must be valid for the names clients connect to: see advertise_private_dns."
  type        = string
  default     = ""
}

variable "tls_private_key_arn" {
  description = "ARN of the PEM private key of tls_certificate_arn (Secrets Manager or SSM, as tls_certificate_arn)."
  type        = string
  default     = ""
}

variable "tls_client_ca_arn" {
  description = "ARN of a PEM bundle of CAs that sign client certificates (Secrets Manager or SSM). Empty: no client certificates. With it, clients presenting a certificate are verified; on SSL the principal is User:<subject DN>."
  type        = string
  default     = ""
}

variable "sasl_mechanisms" {
  description = "Enabled SASL mechanisms (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN; OAUTHBEARER needs oauth settings in extra_environment). PLAIN sends the password to the agent and is off by default."
  type        = list(string)
  default     = ["SCRAM-SHA-256", "SCRAM-SHA-512"]
}

variable "first_user" {
  description = "SCRAM user created (or its password reset) at every task start, a super user. Manage further users with any Kafka admin client (AlterUserScramCredentials) as this user."
  type        = string
  default     = "admin"
}

variable "first_user_password_arn" {
  description = "ARN of first_user's password (Secrets Manager or SSM). Empty: the module generates one into a Secrets Manager secret (output first_user_secret_arn)."
  type        = string
  default     = ""
}

variable "authorizer" {
  description = "Check ACLs on every request (Kafka's authorizer). Without it any authenticated client may do everything."
  type        = bool
  default     = true
}

variable "super_users" {
  description = "More principals allowed everything besides User:<first_user>, e.g. [\"User:ops\"]."
  type        = list(string)
  default     = []
}

variable "allow_everyone_if_no_acl_found" {
  description = "Allow operations on resources no ACL names (allow.everyone.if.no.acl.found). Off: every user needs ACLs."
  type        = bool
  default     = false
}

variable "advertise_private_dns" {
  description = "Advertise each task's private DNS name (ip-10-0-1-5.<region>.compute.internal) instead of its IP, so TLS clients can verify the certificate by name (issue it for *.<region>.compute.internal, e.g. from AWS Private CA; us-east-1 uses *.ec2.internal). Needs enableDnsHostnames on the VPC. Default: on with TLS."
  type        = bool
  default     = null
}

locals {
  tls_enabled  = contains(["SSL", "SASL_SSL"], var.security_protocol)
  sasl_enabled = contains(["SASL_PLAINTEXT", "SASL_SSL"], var.security_protocol)
  private_dns  = coalesce(var.advertise_private_dns, local.tls_enabled)
  # Fargate's private DNS names: ip-a-b-c-d.ec2.internal in us-east-1,
  # ip-a-b-c-d.<region>.compute.internal elsewhere.
  private_dns_suffix = data.aws_region.current.id == "us-east-1" ? "ec2.internal" : "${data.aws_region.current.id}.compute.internal"

  tls_dir          = "${local.run_dir}/tls"
  user_container   = "first-user"
  first_user_arn   = var.first_user_password_arn != "" ? var.first_user_password_arn : try(aws_secretsmanager_secret.first_user[0].arn, "")
  create_user      = local.sasl_enabled && var.first_user != ""
  all_super_users  = concat(local.create_user ? ["User:${var.first_user}"] : [], var.super_users)
  injected_secrets = compact([var.tls_certificate_arn, var.tls_private_key_arn, var.tls_client_ca_arn, local.create_user ? local.first_user_arn : ""])
  # The ARN of the secret or parameter itself (a Secrets Manager valueFrom
  # may carry :JSON_KEY:VERSION_STAGE:VERSION_ID after the secret's ARN).
  secret_resources = distinct([for a in local.injected_secrets : can(regex(":secretsmanager:", a)) ? join(":", slice(split(":", a), 0, 7)) : a])

  security_environment = merge(
    {
      SILT_LISTENERS    = "${var.security_protocol}://0.0.0.0:${local.kafka_port}"
      SILT_AUTHORIZER   = tostring(var.authorizer)
      SILT_SUPER_USERS  = join(";", local.all_super_users)
      SILT_IDLE_TIMEOUT = "10m"
      # Kafka's connections.max.reauth.ms is off by default; one hour
      # bounds how long a deleted user's open connections keep working.
      SILT_REAUTH_INTERVAL = "1h"
    },
    var.allow_everyone_if_no_acl_found ? { SILT_ALLOW_EVERYONE_IF_NO_ACL_FOUND = "true" } : {},
    local.sasl_enabled ? { SILT_SASL_MECHANISMS = join(",", var.sasl_mechanisms) } : {},
    local.tls_enabled ? {
      SILT_TLS_CERT_FILE = "${local.tls_dir}/cert.pem"
      SILT_TLS_KEY_FILE  = "${local.tls_dir}/key.pem"
    } : {},
    local.tls_enabled && var.tls_client_ca_arn != "" ? {
      SILT_TLS_CLIENT_CA_FILE = "${local.tls_dir}/client-ca.pem"
      SILT_TLS_CLIENT_AUTH    = "requested"
    } : {},
  )

  # Secrets the init container writes to files (name = env var).
  tls_secrets = local.tls_enabled ? concat(
    [{ name = "TLS_CERT_PEM", valueFrom = var.tls_certificate_arn }, { name = "TLS_KEY_PEM", valueFrom = var.tls_private_key_arn }],
    var.tls_client_ca_arn != "" ? [{ name = "TLS_CLIENT_CA_PEM", valueFrom = var.tls_client_ca_arn }] : [],
  ) : []
  tls_script = local.tls_enabled ? join("\n", [
    "umask 077",
    "mkdir -p ${local.tls_dir}",
    "printf '%s\\n' \"$TLS_CERT_PEM\" > ${local.tls_dir}/cert.pem",
    "printf '%s\\n' \"$TLS_KEY_PEM\" > ${local.tls_dir}/key.pem",
    var.tls_client_ca_arn != "" ? "printf '%s\\n' \"$TLS_CLIENT_CA_PEM\" > ${local.tls_dir}/client-ca.pem" : "true",
    # silt runs as 65532 and reads the files; nobody else in the task does.
    "chown -R 65532:65532 ${local.tls_dir}",
  ]) : "true"
}

check "tls_files" {
  assert {
    condition     = !local.tls_enabled || (var.tls_certificate_arn != "" && var.tls_private_key_arn != "")
    error_message = "security_protocol ${var.security_protocol} needs tls_certificate_arn and tls_private_key_arn (Secrets Manager or SSM ARNs of the PEM certificate and key)."
  }
}

# The first user's password, when the module makes it.
resource "random_password" "first_user" {
  count   = local.create_user && var.first_user_password_arn == "" ? 1 : 0
  length  = 32
  special = false
}

resource "aws_secretsmanager_secret" "first_user" {
  count                   = local.create_user && var.first_user_password_arn == "" ? 1 : 0
  name_prefix             = "${var.name}-kafka-${var.first_user}-"
  description             = "Password of the silt SCRAM user ${var.first_user} (set at every agent start)."
  recovery_window_in_days = 7
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "first_user" {
  count         = local.create_user && var.first_user_password_arn == "" ? 1 : 0
  secret_id     = aws_secretsmanager_secret.first_user[0].id
  secret_string = random_password.first_user[0].result
}

# The execution role injects the secrets and parameters.
data "aws_iam_policy_document" "execution_security" {
  count = length(local.secret_resources) > 0 ? 1 : 0

  dynamic "statement" {
    for_each = [for a in local.secret_resources : a if can(regex(":secretsmanager:", a))]
    content {
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [statement.value]
    }
  }
  dynamic "statement" {
    for_each = [for a in local.secret_resources : a if can(regex(":ssm:", a))]
    content {
      # SecureString parameters under the account's default key decrypt
      # with this; a customer key also needs kms:Decrypt on it.
      actions   = ["ssm:GetParameters"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "execution_security" {
  count  = length(local.secret_resources) > 0 ? 1 : 0
  name   = "kafka-security-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_security[0].json
}

output "first_user_secret_arn" {
  description = "Secrets Manager secret holding the first SCRAM user's password, when the module generated it."
  value       = try(aws_secretsmanager_secret.first_user[0].arn, null)
}

output "security_protocol" {
  description = "The Kafka listener's protocol; clients set security.protocol to it."
  value       = var.security_protocol
}
