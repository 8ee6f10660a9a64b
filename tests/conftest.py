"""Shared fixtures: an offline AWS environment and a real S3 endpoint on loopback.

Every test runs with fake credentials, no AWS profile or config file, and
``AWS_ENDPOINT_URL`` pointing at a closed loopback port, so nothing can reach real AWS.
Tests that use S3 ask for ``s3_env``: a moto server (started once per session, stopped at
the end) becomes the endpoint, for in-process calls and for subprocesses alike.
``flaky_s3`` puts a small proxy in front of it that can fail chosen requests once.
Tests that need another endpoint (LocalStack in e2e tests) set it with ``monkeypatch``.

Property tests run hypothesis's "dev" profile (100 examples each, which keeps
``scripts/test --fast`` to seconds) unless ``CI`` is set or ``HYPOTHESIS_PROFILE=ci``:
then 500 examples each. Neither has a deadline: a loaded machine is not a failure."""

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import settings

from message_adapter.jsonio import dumps
from tests.helpers import DEAD_ENDPOINT, FlakyProxy, MotoServer, free_port

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("ci", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# Settings that could lead boto3 to real AWS or to the developer's own credentials.
_AWS_UNSET = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_REGION",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "CUMULUS_ENV",
    "LOCALSTACK_HOST",
)


_AWS_SET = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ENDPOINT_URL": DEAD_ENDPOINT,
}


@pytest.fixture(scope="session", autouse=True)
def offline_aws() -> Iterator[None]:
    """No test, and no subprocess a test starts, can reach real AWS."""
    with pytest.MonkeyPatch.context() as patch:
        for name in _AWS_UNSET:
            patch.delenv(name, raising=False)
        for name in [name for name in os.environ if name.startswith("AWS_ENDPOINT_URL_")]:
            patch.delenv(name)
        for name, value in _AWS_SET.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(autouse=True)
def fresh_shared_s3_store() -> Iterator[None]:
    """Adapters share one S3 client per process; tests change the AWS settings it reads."""
    from message_adapter.stores import reset_shared_s3_store

    reset_shared_s3_store()
    yield
    reset_shared_s3_store()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """The session's S3 endpoint: a moto server on a free loopback port."""
    server = MotoServer(free_port())
    yield server
    server.stop()


@pytest.fixture
def s3_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point this test (and its subprocesses) at the moto server; returns the environment."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    return dict(os.environ)


@pytest.fixture(scope="session")
def s3(moto_server: MotoServer) -> Any:
    """A boto3 S3 client on the moto server, for setting up and inspecting buckets."""
    import boto3

    assert boto3.client("s3").meta.endpoint_url == os.environ["AWS_ENDPOINT_URL"], (
        "this botocore ignores AWS_ENDPOINT_URL, so tests could reach real AWS"
    )
    return boto3.client(
        "s3",
        endpoint_url=moto_server.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def bucket(s3: Any) -> str:
    """A new, empty bucket for this test only."""
    name = f"cma-test-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def flaky_s3(
    moto_server: MotoServer, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[FlakyProxy]:
    """The test's S3 endpoint is a proxy to moto that fails the requests it is told to."""
    proxy = FlakyProxy(moto_server.port)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    yield proxy
    proxy.stop()


@pytest.fixture
def restricted_credentials(
    moto_server: MotoServer, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., None]]:
    """``use(allow=[...])``: switch to a new IAM user allowed only those S3 statements.

    Creates the user while moto lets anyone in, then turns moto's IAM checks on for the
    rest of the test, so S3 answers with a real ``AccessDenied`` to whatever is not allowed.
    """
    import boto3

    iam = boto3.session.Session().client(
        "iam", endpoint_url=moto_server.endpoint, region_name="us-east-1"
    )

    def use(allow: list[dict[str, Any]] = ()) -> None:
        user = f"cma-{uuid.uuid4().hex[:12]}"
        iam.create_user(UserName=user)
        if allow:
            policy = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", **statement} for statement in allow],
            }
            document = dumps(policy).decode()
            iam.put_user_policy(UserName=user, PolicyName="only", PolicyDocument=document)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        # boto3's default session keeps the credentials it first found: start a new one.
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
        moto_server.require_auth(True)

    try:
        yield use
    finally:
        moto_server.require_auth(False)
