# The bucket of segment objects. Objects are written once under unique keys
# and never overwritten, so versioning would only keep garbage: it is off.
resource "aws_s3_bucket" "segments" {
  bucket        = var.bucket_name != "" ? var.bucket_name : null
  bucket_prefix = var.bucket_name == "" ? "${var.name}-segments-" : null
  force_destroy = var.bucket_force_destroy
  tags          = local.tags
}

resource "aws_s3_bucket_ownership_controls" "segments" {
  bucket = aws_s3_bucket.segments.id
  rule {
    object_ownership = "BucketOwnerEnforced" # no ACLs
  }
}

resource "aws_s3_bucket_public_access_block" "segments" {
  bucket                  = aws_s3_bucket.segments.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "segments" {
  bucket = aws_s3_bucket.segments.id
  versioning_configuration {
    status = "Disabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "segments" {
  bucket = aws_s3_bucket.segments.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.bucket_kms_key_arn != "" ? "aws:kms" : "AES256"
      kms_master_key_id = var.bucket_kms_key_arn != "" ? var.bucket_kms_key_arn : null
    }
    # One KMS call per bucket key rather than per object.
    bucket_key_enabled = var.bucket_kms_key_arn != ""
  }
}

# Orphans (objects uploaded but never committed, after a crash between the
# two) are found and deleted by silt's garbage collection, which knows from
# the metastore which objects are live; a lifecycle rule cannot tell them
# apart. Incomplete multipart uploads are invisible to silt, so S3 removes
# them.
resource "aws_s3_bucket_lifecycle_configuration" "segments" {
  bucket = aws_s3_bucket.segments.id
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {
      prefix = "${var.bucket_prefix}/"
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# TLS only.
data "aws_iam_policy_document" "segments_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.segments.arn,
      "${aws_s3_bucket.segments.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "segments" {
  bucket = aws_s3_bucket.segments.id
  policy = data.aws_iam_policy_document.segments_bucket.json
  # The public access block must exist first or the policy call can race it.
  depends_on = [aws_s3_bucket_public_access_block.segments]
}
