"""Config loading: strict models, one line per problem naming file, line and field, env precedence, no secrets."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from os_rerank.cli import main
from os_rerank.config import load_config
from os_rerank.errors import ConfigError

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

GOOD = """\
opensearch:
  url: http://localhost:9200
sagemaker:
  region: us-west-2
  endpoint_name: my-endpoint
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env or {})
    return info.value.problems


# Each case: a config with one mistake, and the exact line the user sees for it.
MISTAKES = [
    ("missing sagemaker section", "opensearch: {url: http://x:9200}\n", "config.yaml: sagemaker: field required"),
    ("missing region", "sagemaker: {endpoint_name: e}\n", "config.yaml: sagemaker.region: field required"),
    (
        "no endpoint at all",
        "sagemaker:\n  region: us-west-2\n",
        "config.yaml:1: sagemaker: set endpoint_name (or endpoint_url, the full invocation URL)",
    ),
    (
        "unknown top-level section",
        GOOD + "extras: {}\n",
        "config.yaml:6: extras: unknown field",
    ),
    (
        "misspelled key",
        "sagemaker:\n  region: us-west-2\n  endpont_name: e\n",
        "config.yaml:3: sagemaker.endpont_name: unknown field",
    ),
    (
        "unknown contract",
        GOOD + "  contract: cohere\n",
        "config.yaml:6: sagemaker.contract: must be one of 'hf-text-classification', 'pairs-scores', "
        "'query-documents-topk' or 'tei-rerank'",
    ),
    ("bad region", GOOD.replace("us-west-2", "oregon"), "config.yaml:4: sagemaker.region: invalid value 'oregon'"),
    (
        "endpoint name with underscore",
        GOOD.replace("my-endpoint", "my_endpoint"),
        "config.yaml:5: sagemaker.endpoint_name: invalid value 'my_endpoint'",
    ),
    (
        "url without scheme",
        GOOD.replace("http://localhost:9200", "localhost:9200"),
        "config.yaml:2: opensearch.url: expected an http:// or https:// URL, got 'localhost:9200'",
    ),
    (
        "unknown auth type",
        GOOD.replace("  url: http://localhost:9200\n", "  url: http://localhost:9200\n  auth: {type: kerberos}\n"),
        "config.yaml:3: opensearch.auth: type must be one of 'none', 'basic', 'aws_sigv4'",
    ),
    (
        "auth without type",
        GOOD.replace("  url: http://localhost:9200\n", "  url: http://localhost:9200\n  auth: {username: bob}\n"),
        "config.yaml:3: opensearch.auth: needs a 'type' (none, basic or aws_sigv4)",
    ),
    (
        "password in the file",
        GOOD.replace(
            "  url: http://localhost:9200\n", "  url: http://localhost:9200\n  auth: {type: basic, password: pw}\n"
        ),
        "config.yaml:3: opensearch.auth.password: secrets are never read from the config file; "
        "set OPENSEARCH_PASSWORD in the environment",
    ),
    (
        "AWS secret key in the file",
        GOOD + "aws:\n  secret_key: abc\n",
        "config.yaml:7: aws.secret_key: secrets are never read from the config file; AWS credentials come "
        "from the boto3 chain (AWS_PROFILE, environment, instance role)",
    ),
    (
        "negative timeout",
        GOOD + "connector:\n  client_config: {read_timeout: -5}\n",
        "config.yaml:7: connector.client_config.read_timeout: input should be greater than or equal to 1",
    ),
    (
        "timeout as text",
        GOOD + "connector:\n  client_config: {read_timeout: soon}\n",
        "config.yaml:7: connector.client_config.read_timeout: input should be a valid integer, "
        "unable to parse string as an integer",
    ),
    (
        "bad retry policy",
        GOOD + "connector:\n  client_config: {retry_backoff_policy: linear}\n",
        "config.yaml:7: connector.client_config.retry_backoff_policy: must be one of 'constant', "
        "'exponential_equal_jitter' or 'exponential_full_jitter'",
    ),
    (
        "empty document_fields",
        GOOD + "pipeline:\n  document_fields: []\n",
        "config.yaml:7: pipeline.document_fields: list should have at least 1 item after validation, not 0",
    ),
    (
        "pipeline field not in the index",
        GOOD + "pipeline:\n  document_fields: [title]\n",
        "config.yaml:7: pipeline.document_fields: title not in index.fields (passage_text)",
    ),
    (
        "index name with capitals",
        GOOD + "index:\n  name: MyIndex\n",
        "config.yaml:7: index.name: invalid value 'MyIndex'",
    ),
    (
        "field mapping type",
        GOOD + "index:\n  fields: {passage_text: dense_vector}\n",
        "config.yaml:7: index.fields.passage_text: must be one of 'text' or 'keyword'",
    ),
    (
        "ignore_failure not a boolean",
        GOOD + "pipeline:\n  ignore_failure: maybe\n",
        "config.yaml:7: pipeline.ignore_failure: input should be a valid boolean, unable to interpret input",
    ),
    (
        "bad role ARN",
        GOOD + "connector:\n  role_arn: my-role\n",
        "config.yaml:7: connector.role_arn: invalid value 'my-role'",
    ),
    (
        "endpoint_url without a name in it",
        "sagemaker:\n  region: us-west-2\n  endpoint_url: http://host:8080/invocations\n",
        "config.yaml:1: sagemaker: endpoint_url must end in /endpoints/<name>/invocations, or set endpoint_name too",
    ),
    (
        "tolerance out of range",
        GOOD + "verify:\n  tolerance: 2\n",
        "config.yaml:7: verify.tolerance: input should be less than or equal to 1",
    ),
    (
        "a section that is a list",
        "sagemaker:\n  - region\n",
        "config.yaml:1: sagemaker: expected a mapping of fields, got list",
    ),
]


@pytest.mark.parametrize("text, expected", [(t, e) for _, t, e in MISTAKES], ids=[n for n, _, _ in MISTAKES])
def test_each_mistake_is_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    assert problems(tmp_path, text) == [expected]


def test_several_mistakes_are_all_reported(tmp_path: Path) -> None:
    found = problems(tmp_path, "opensearch: {url: x, colour: red}\nsagemaker: {endpoint_name: e}\n")
    assert found == [
        "config.yaml:1: opensearch.url: expected an http:// or https:// URL, got 'x'",
        "config.yaml:1: opensearch.colour: unknown field",
        "config.yaml: sagemaker.region: field required",
    ]


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    assert problems(tmp_path, "sagemaker:\n  region: [us-west-2\n  endpoint_name: e\n") == [
        "config.yaml:3: invalid YAML: expected ',' or ']', but got ':'"
    ]


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert problems(tmp_path, "- a\n- b\n") == [
        "config.yaml:1: expected a mapping of sections (opensearch, sagemaker, ...) at the top"
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml", {})
    assert info.value.problems == [f"{tmp_path / 'nope.yaml'}: file not found"]
    assert info.value.fix == "pass --config with the path of your config file"


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, GOOD + "aws: {profile: from-file}\n"),
        {
            "OPENSEARCH_URL": "https://search.example:9200/",
            "OPENSEARCH_USERNAME": "alice",
            "OPENSEARCH_PASSWORD": "s3cret-pw",
            "AWS_REGION": "eu-central-1",
            "AWS_PROFILE": "from-env",
        },
    )
    assert config.opensearch.url == "https://search.example:9200"
    assert config.opensearch.auth.type == "basic"
    assert config.opensearch.auth.username == "alice"  # type: ignore[union-attr]
    assert config.password is not None and config.password.get_secret_value() == "s3cret-pw"
    assert config.sagemaker.region == "eu-central-1"
    assert config.aws.profile == "from-env"
    # The password never shows in a dump of the config.
    assert "s3cret-pw" not in config.model_dump_json()
    assert "s3cret-pw" not in repr(config)


def test_aws_region_fills_a_missing_region(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "sagemaker: {endpoint_name: e}\n"), {"AWS_REGION": "ap-northeast-2"})
    assert config.sagemaker.region == "ap-northeast-2"


def test_connector_urls(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), {})
    assert config.sagemaker.connector_url == (
        "https://runtime.sagemaker.us-west-2.amazonaws.com/endpoints/my-endpoint/invocations"
    )
    china = load_config(write(tmp_path, GOOD.replace("us-west-2", "cn-north-1")), {})
    assert china.sagemaker.connector_url.startswith("https://runtime.sagemaker.cn-north-1.amazonaws.com.cn/")
    named = load_config(
        write(tmp_path, "sagemaker:\n  region: us-west-2\n  endpoint_url: http://ep:8080/endpoints/xyz/invocations\n"),
        {},
    )
    assert (named.sagemaker.name, named.sagemaker.connector_url) == (
        "xyz",
        "http://ep:8080/endpoints/xyz/invocations",
    )


def test_documents_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD + "index:\n  documents: docs.jsonl\n"), {})
    assert config.documents_path == tmp_path / "docs.jsonl"


def test_cli_prints_one_line_per_problem_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, "opensearch: {url: x}\nsagemaker: {endpoint_name: e}\n")
    out, err = io.StringIO(), io.StringIO()
    code = main(["validate", "--config", str(path)], environ={}, stdout=out, stderr=err)
    assert code == 2
    assert out.getvalue() == ""
    assert err.getvalue() == (
        "os-rerank: error: config.yaml:1: opensearch.url: expected an http:// or https:// URL, got 'x'\n"
        "os-rerank: error: config.yaml: sagemaker.region: field required\n"
    )
    assert "Traceback" not in err.getvalue()


def test_cli_bad_documents_file_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "docs.jsonl").write_text('{"passage_text": "ok"}\n{not json}\n', encoding="utf-8")
    path = write(tmp_path, GOOD + "index:\n  documents: docs.jsonl\n")
    err = io.StringIO()
    code = main(["validate", "--config", str(path)], environ={}, stdout=io.StringIO(), stderr=err)
    assert code == 2  # a bad input file is a usage error, like the config itself
    assert err.getvalue().startswith("os-rerank: error: docs.jsonl:2: invalid JSON: ")
