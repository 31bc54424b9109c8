"""Results kept by content: every success of a job, under the hash of everything it depended on.

api.py is the interface and the format (shared with the S3 backend to come);
local.py the directory backend used by default.
"""
