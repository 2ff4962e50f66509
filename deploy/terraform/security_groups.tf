# Three security groups: the load balancer, the agent tasks and the
# database. Clients reach the NLB (bootstrap) and then the tasks directly
# on their advertised private IPs, so both admit client_cidr_blocks.

resource "aws_security_group" "nlb" {
  name_prefix = "${var.name}-nlb-"
  description = "silt load balancer: Kafka bootstrap from clients"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-nlb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "agents" {
  name_prefix = "${var.name}-agents-"
  description = "silt agent tasks: Kafka from clients and the NLB, admin from the NLB and monitoring"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-agents" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "metastore" {
  name_prefix = "${var.name}-metastore-"
  description = "silt metastore: PostgreSQL from the agents only"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-metastore" })

  lifecycle {
    create_before_destroy = true
  }
}

# --- load balancer ---

resource "aws_vpc_security_group_ingress_rule" "nlb_kafka" {
  for_each          = toset(var.client_cidr_blocks)
  security_group_id = aws_security_group.nlb.id
  description       = "Kafka bootstrap"
  ip_protocol       = "tcp"
  from_port         = local.kafka_port
  to_port           = local.kafka_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "nlb_to_agents_kafka" {
  security_group_id            = aws_security_group.nlb.id
  description                  = "Forward Kafka to agents"
  ip_protocol                  = "tcp"
  from_port                    = local.kafka_port
  to_port                      = local.kafka_port
  referenced_security_group_id = aws_security_group.agents.id
}

resource "aws_vpc_security_group_egress_rule" "nlb_to_agents_admin" {
  security_group_id            = aws_security_group.nlb.id
  description                  = "Health checks on /readyz"
  ip_protocol                  = "tcp"
  from_port                    = local.admin_port
  to_port                      = local.admin_port
  referenced_security_group_id = aws_security_group.agents.id
}

# --- agents ---

resource "aws_vpc_security_group_ingress_rule" "agents_kafka_from_nlb" {
  security_group_id            = aws_security_group.agents.id
  description                  = "Kafka via the NLB"
  ip_protocol                  = "tcp"
  from_port                    = local.kafka_port
  to_port                      = local.kafka_port
  referenced_security_group_id = aws_security_group.nlb.id
}

resource "aws_vpc_security_group_ingress_rule" "agents_kafka_from_clients" {
  for_each          = toset(var.client_cidr_blocks)
  security_group_id = aws_security_group.agents.id
  description       = "Kafka from clients to advertised agent addresses"
  ip_protocol       = "tcp"
  from_port         = local.kafka_port
  to_port           = local.kafka_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "agents_admin_from_nlb" {
  security_group_id            = aws_security_group.agents.id
  description                  = "NLB health checks"
  ip_protocol                  = "tcp"
  from_port                    = local.admin_port
  to_port                      = local.admin_port
  referenced_security_group_id = aws_security_group.nlb.id
}

resource "aws_vpc_security_group_ingress_rule" "agents_admin_from_monitoring" {
  for_each          = toset(var.metrics_cidr_blocks)
  security_group_id = aws_security_group.agents.id
  description       = "Prometheus scrapes and pprof"
  ip_protocol       = "tcp"
  from_port         = local.admin_port
  to_port           = local.admin_port
  cidr_ipv4         = each.value
}

# Agents call S3, RDS, Secrets Manager, ECR and CloudWatch Logs, through
# gateway/interface endpoints or NAT: HTTPS and PostgreSQL only.
resource "aws_vpc_security_group_egress_rule" "agents_https" {
  security_group_id = aws_security_group.agents.id
  description       = "HTTPS to AWS APIs (S3, ECR, Secrets Manager, CloudWatch)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "agents_to_metastore" {
  security_group_id            = aws_security_group.agents.id
  description                  = "PostgreSQL metastore"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.metastore.id
}

# (The task metadata endpoint the init container reads, 169.254.170.2, is
# link-local and not subject to security groups.)

# --- metastore ---

resource "aws_vpc_security_group_ingress_rule" "metastore_from_agents" {
  security_group_id            = aws_security_group.metastore.id
  description                  = "PostgreSQL from silt agents"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.agents.id
}
