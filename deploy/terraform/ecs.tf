# The agents: one ECS service of Fargate tasks, each running `silt agent`.
#
# Each task has two containers. "advertised-addr" runs first: it reads the
# task's private IP from the ECS task metadata endpoint and writes
# IP:9092 into a file on a volume shared with "silt", which silt reads via
# --advertised-addr-file and puts in its Metadata responses. The IP is not
# known when the task definition is written, and must be per task: see
# README.md, Advertised addresses.

resource "aws_ecs_cluster" "this" {
  name = var.name
  tags = local.tags

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "agents" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

locals {
  # Every SILT_* variable maps to one `silt agent` flag.
  agent_environment = merge({
    SILT_METASTORE            = local.metastore_url
    SILT_BUCKET               = local.bucket_url
    SILT_LISTEN               = "0.0.0.0:${local.kafka_port}"
    SILT_ADVERTISED_ADDR_FILE = local.advertised_file
    SILT_ADMIN_LISTEN         = "0.0.0.0:${local.admin_port}"
    SILT_CACHE_DIR            = "/data/cache"
    SILT_CACHE_BYTES          = tostring(var.cache_bytes)
    SILT_FLUSH_BYTES          = tostring(var.flush_bytes)
    SILT_FLUSH_INTERVAL       = var.flush_interval
    SILT_AUTO_CREATE_TOPICS   = tostring(var.auto_create_topics)
    SILT_DEFAULT_PARTITIONS   = tostring(var.default_partitions)
    SILT_LOG_FORMAT           = "json"
    SILT_LOG_LEVEL            = var.log_level
  }, local.security_environment, var.extra_environment)

  log_configuration = {
    logDriver = "awslogs"
    options = {
      awslogs-group         = aws_cloudwatch_log_group.agents.name
      awslogs-region        = data.aws_region.current.id
      awslogs-stream-prefix = "agent"
    }
  }

  # Compact the metadata JSON, then take the first IPv4 address of the
  # task's network. Written to a temporary name and renamed, so silt never
  # reads a partial file.
  address_script = join("\n", [
    "set -eu",
    "ip=$(wget -qO- \"$ECS_CONTAINER_METADATA_URI_V4\" | tr -d ' \\n\\t' | sed -n 's/.*\"IPv4Addresses\":\\[\"\\([0-9.]*\\)\".*/\\1/p')",
    "test -n \"$ip\" || { echo 'no IPv4 address in task metadata' >&2; exit 1; }",
    # With TLS, the task's private DNS name, which a certificate can name.
    local.private_dns ? "host=ip-$(echo \"$ip\" | tr . -).${local.private_dns_suffix}" : "host=$ip",
    "printf '%s:${local.kafka_port}\\n' \"$host\" > ${local.advertised_file}.tmp",
    "mv ${local.advertised_file}.tmp ${local.advertised_file}",
    "echo \"advertising $host:${local.kafka_port}\"",
    local.tls_script,
  ])
}

resource "aws_ecs_task_definition" "agent" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  tags                     = local.tags

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  ephemeral_storage {
    size_in_gib = var.ephemeral_storage_gib
  }

  # Task-local scratch shared by the two containers (Fargate bind mount).
  volume {
    name = "run"
  }

  container_definitions = jsonencode(concat(local.create_user ? [
    {
      # Creates the first SCRAM user (or resets its password) in the
      # metastore before the agent starts: `silt user create`.
      name      = local.user_container
      image     = var.image
      essential = false
      command   = ["user", "create", "--user", var.first_user]
      environment = [
        { name = "SILT_METASTORE", value = local.metastore_url },
      ]
      secrets = [
        { name = "PGPASSWORD", valueFrom = "${aws_secretsmanager_secret.metastore.arn}:password::" },
        { name = "SILT_USER_PASSWORD", valueFrom = local.first_user_arn },
      ]
      user             = "65532:65532"
      logConfiguration = local.log_configuration
    },
    ] : [], [
    {
      name      = local.helper_container
      image     = var.address_helper_image
      essential = false
      command   = ["sh", "-c", local.address_script]
      secrets   = local.tls_secrets
      mountPoints = [{
        sourceVolume  = "run"
        containerPath = local.run_dir
        readOnly      = false
      }]
      logConfiguration = local.log_configuration
    },
    {
      name      = local.agent_container
      image     = var.image
      essential = true
      command   = ["agent"]
      dependsOn = concat([{
        containerName = local.helper_container
        condition     = "SUCCESS"
        }], local.create_user ? [{
        containerName = local.user_container
        condition     = "SUCCESS"
      }] : [])
      portMappings = [
        { containerPort = local.kafka_port, protocol = "tcp", name = "kafka" },
        { containerPort = local.admin_port, protocol = "tcp", name = "admin" },
      ]
      environment = [
        for k in sort(keys(local.agent_environment)) : { name = k, value = local.agent_environment[k] }
      ]
      secrets = [{
        # pgx reads PGPASSWORD when the URL carries no password.
        name      = "PGPASSWORD"
        valueFrom = "${aws_secretsmanager_secret.metastore.arn}:password::"
      }]
      mountPoints = [{
        sourceVolume  = "run"
        containerPath = local.run_dir
        readOnly      = true
      }]
      # No container health check: the image is distroless (no shell).
      # The target group probes /readyz on the admin port instead.
      readonlyRootFilesystem = false # the fetch cache is under /data
      user                   = "65532:65532"
      # Time for silt to flush and acknowledge its open segment on SIGTERM
      # before SIGKILL (scale-in, deployments).
      stopTimeout = 60
      ulimits = [{
        name      = "nofile"
        softLimit = 65536
        hardLimit = 65536
      }]
      logConfiguration = local.log_configuration
    },
  ]))
}

resource "aws_ecs_service" "agents" {
  name            = var.name
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.agent.arn
  desired_count   = var.min_agents
  launch_type     = "FARGATE"
  propagate_tags  = "SERVICE"
  tags            = local.tags

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.agents.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.kafka.arn
    container_name   = local.agent_container
    container_port   = local.kafka_port
  }

  # Agents are stateless: a deployment starts new tasks before stopping old
  # ones, and rolls back by itself if the new ones never become ready.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  health_check_grace_period_seconds = 60

  lifecycle {
    # Autoscaling owns the task count after creation.
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.kafka]
}
