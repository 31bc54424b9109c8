"""An S3-compatible server on loopback (moto's server mode), standing in for Hetzner's Object Storage.

A real HTTP server speaking the S3 API in a process of its own: the store's
boto3 client talks to it over TCP as it would to the cloud. Any key pair is
accepted (moto does not check signatures), so the credentials the tests
pass are there to show where they go, not to be checked.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from bench.targets import free_port
from testing import procs

KEY_ID = "warmci-test-key-id"
SECRET = "warmci-test-secret-0123456789"  # never printed: the tests look for it in logs and pages


class S3Server:
    def __init__(self, workdir: Path, bucket: str = "warmci-cache") -> None:
        self.workdir, self.bucket = workdir, bucket
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self, prefix: str = "ci") -> dict[str, str]:
        """What a host worker (and so doit) gets: where the shared store is, and a key."""
        return {"WARMCI_S3_ENDPOINT": self.endpoint, "WARMCI_S3_BUCKET": self.bucket, "WARMCI_S3_PREFIX": prefix,
                "WARMCI_S3_ACCESS_KEY_ID": KEY_ID, "WARMCI_S3_SECRET_ACCESS_KEY": SECRET}

    def start(self, timeout: float = 60) -> S3Server:
        self.workdir.mkdir(parents=True, exist_ok=True)
        moto = Path(sys.executable).with_name("moto_server")
        with open(self.workdir / "moto.log", "ab") as log:
            self.proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(self.port)], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited {self.proc.returncode}: "
                                   f"{(self.workdir / 'moto.log').read_text()[-2000:]}")
            try:
                requests.get(f"{self.endpoint}/moto-api/", timeout=2)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not answer in {timeout} s") from None
                time.sleep(0.05)  # polling the port: there is nothing to wait on
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=KEY_ID,
                            aws_secret_access_key=SECRET)

    def keys(self, prefix: str = "") -> list[str]:
        out: list[str] = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return out

    def stop(self) -> None:
        procs.stop(self.proc)
