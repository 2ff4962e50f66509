# Two roles. The execution role is ECS's (pull the image, write logs, read
# the database password at task start); the task role is silt's own and can
# touch only its prefix of its bucket.

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    # Confused-deputy guard: only tasks of this account.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

# --- execution role ---

resource "aws_iam_role" "execution" {
  name_prefix        = "${var.name}-exec-"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    sid       = "ReadMetastorePassword"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.metastore.arn]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "metastore-secret"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

# --- task role (silt itself) ---

resource "aws_iam_role" "task" {
  name_prefix        = "${var.name}-task-"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "task_bucket" {
  # Garbage collection lists the cluster's prefix to find orphans.
  statement {
    sid       = "ListClusterPrefix"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.segments.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.bucket_prefix, "${var.bucket_prefix}/*"]
    }
  }
  # Upload segments, range-read them, delete them after retention or as
  # orphans. Nothing else: no bucket configuration, no other prefixes.
  statement {
    sid = "ReadWriteClusterObjects"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
    ]
    resources = ["${aws_s3_bucket.segments.arn}/${var.bucket_prefix}/*"]
  }
  dynamic "statement" {
    for_each = var.bucket_kms_key_arn != "" ? [1] : []
    content {
      sid       = "UseBucketKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.bucket_kms_key_arn]
    }
  }
}

resource "aws_iam_role_policy" "task_bucket" {
  name   = "segments-bucket"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task_bucket.json
}
