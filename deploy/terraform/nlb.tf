# A network load balancer for the bootstrap connection: clients list it as
# their only seed broker, send Metadata through it, and from then on talk to
# the agents at the addresses Metadata names (their private IPs). The NLB
# also gives a stable DNS name across task replacements and scaling.

resource "aws_lb" "kafka" {
  name               = "${var.name}-kafka"
  load_balancer_type = "network"
  internal           = var.nlb_internal
  subnets            = local.nlb_subnet_ids
  security_groups    = [aws_security_group.nlb.id]

  enable_cross_zone_load_balancing = true
  tags                             = local.tags
}

resource "aws_lb_target_group" "kafka" {
  name        = "${var.name}-kafka"
  port        = local.kafka_port
  protocol    = "TCP"
  target_type = "ip" # Fargate tasks (awsvpc)
  vpc_id      = var.vpc_id
  tags        = local.tags

  # Kafka connections are long-lived: after deregistration (scale-in,
  # deployment) give clients 30s, then close what is left so they
  # reconnect to a live agent rather than hang on a stopped one.
  deregistration_delay   = 30
  connection_termination = true

  # In rotation only while silt reports ready (its metastore answers, and
  # it is not shutting down), not merely while the port accepts
  # connections.
  health_check {
    protocol            = "HTTP"
    port                = tostring(local.admin_port)
    path                = "/readyz"
    matcher             = "200"
    interval            = 10
    timeout             = 6
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_listener" "kafka" {
  load_balancer_arn = aws_lb.kafka.arn
  port              = local.kafka_port
  protocol          = "TCP"
  tags              = local.tags

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.kafka.arn
  }
}
