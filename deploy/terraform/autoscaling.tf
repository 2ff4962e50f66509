# Target tracking on average CPU: agents are stateless, so adding one adds
# capacity at once (it serves any partition as soon as it holds a lease and
# appears in Metadata). Scale-out reacts quickly; scale-in waits, because
# it disconnects that agent's clients (they reconnect via Metadata).

resource "aws_appautoscaling_target" "agents" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.agents.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_agents
  max_capacity       = var.max_agents
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${var.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.agents.service_namespace
  resource_id        = aws_appautoscaling_target.agents.resource_id
  scalable_dimension = aws_appautoscaling_target.agents.scalable_dimension

  target_tracking_scaling_policy_configuration {
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
    target_value       = var.cpu_target_percent
    scale_out_cooldown = 60
    scale_in_cooldown  = 300
  }
}
