"""Who may call what: access keys (from the environment or a file that reloads), their IAM-style
policies, and their per-key rates."""
