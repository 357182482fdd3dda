"""Process-wide plumbing: logging with secrets redacted, and worker threads that run below the
stream's priority."""
