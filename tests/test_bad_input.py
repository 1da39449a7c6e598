"""Bad input, as a careless or hostile user gives it: each case asserts the one-line message and the exit status.

- CONFIG_CASES: config files (and environment overrides) that `validate` must refuse, naming file, line and field,
  or the variable. Bounds hold: alias bombs, duplicate keys, deep nesting, huge or special files.
- CLI_CASES: arguments refused before anything runs.
- DOCUMENT_CASES: sample-documents files refused with file and line, and the valid JSON that must be accepted.
- A property test: `validate` never raises, and finishes, whatever YAML it is given.
Messages are compared from after ""; `{file}` is the config file's name.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from os_rerank.cli import main

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

BASE = "sagemaker:\n  region: us-west-2\n  endpoint_name: ep\n"
BOMB = ("a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e]\n")
PREFIX = "os-rerank: error: "


def run(argv: list[str], environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, environ=environ or {}, stdout=out, stderr=err)
    return int(code), out.getvalue(), err.getvalue()


# --- config files ---------------------------------------------------------------------------------------------------

CONFIG_CASES: list[tuple[str, str, dict[str, str], str]] = [
    ('empty file', '', {}, '{file}: sagemaker: field required'),
    ('top level list', '- a\n- b\n', {}, '{file}:1: expected a mapping of sections (opensearch, sagemaker, ...) at the top'),
    ('top level scalar', 'hello\n', {}, '{file}:1: expected a mapping of sections (opensearch, sagemaker, ...) at the top'),
    ('missing sagemaker', 'opensearch:\n  url: http://localhost:9200\n', {}, '{file}: sagemaker: field required'),
    ('unknown section', BASE + 'nonsense: 1\n', {}, '{file}:4: nonsense: unknown field'),
    ('unknown field', BASE + 'opensearch:\n  uri: http://x\n', {}, '{file}:5: opensearch.uri: unknown field'),
    ('section not a mapping', BASE + 'opensearch: 5\n', {}, '{file}:4: opensearch: expected a mapping of fields, got int'),
    ('region bad', 'sagemaker:\n  region: mars\n  endpoint_name: ep\n', {}, "{file}:2: sagemaker.region: invalid value 'mars'"),
    ('endpoint name bad', "sagemaker:\n  region: us-west-2\n  endpoint_name: 'a b'\n", {}, "{file}:3: sagemaker.endpoint_name: invalid value 'a b'"),
    ('no endpoint', 'sagemaker:\n  region: us-west-2\n', {}, '{file}:1: sagemaker: set endpoint_name (or endpoint_url, the full invocation URL)'),
    ('endpoint_url no name', 'sagemaker:\n  region: us-west-2\n  endpoint_url: https://x.example/foo\n', {}, '{file}:1: sagemaker: endpoint_url must end in /endpoints/<name>/invocations, or set endpoint_name too'),
    ('contract bad', BASE + '  contract: magic\n', {}, "{file}:4: sagemaker.contract: must be one of 'hf-text-classification', 'pairs-scores', 'query-documents-topk' or 'tei-rerank'"),
    ('max_batch 0', BASE + '  max_batch: 0\n', {}, '{file}:4: sagemaker.max_batch: input should be greater than or equal to 1'),
    ('max_batch huge', BASE + '  max_batch: 100000\n', {}, '{file}:4: sagemaker.max_batch: input should be less than or equal to 1000'),
    ('max_batch string', BASE + '  max_batch: many\n', {}, '{file}:4: sagemaker.max_batch: input should be a valid integer, unable to parse string as an integer'),
    ('url no scheme', BASE + 'opensearch:\n  url: localhost:9200\n', {}, "{file}:5: opensearch.url: expected an http:// or https:// URL, got 'localhost:9200'"),
    ('url ftp', BASE + 'opensearch:\n  url: ftp://host\n', {}, "{file}:5: opensearch.url: expected an http:// or https:// URL, got 'ftp://host'"),
    ('url junk port', BASE + 'opensearch:\n  url: http://host:92x00\n', {}, "{file}:5: opensearch.url: the port of 'http://host:92x00' is not a number from 1 to 65535"),
    ('url port 0', BASE + 'opensearch:\n  url: http://host:0\n', {}, "{file}:5: opensearch.url: the port of 'http://host:0' is not a number from 1 to 65535"),
    ('url port too big', BASE + 'opensearch:\n  url: http://host:70000\n', {}, "{file}:5: opensearch.url: the port of 'http://host:70000' is not a number from 1 to 65535"),
    ('url query', BASE + 'opensearch:\n  url: http://host:9200/?a=1\n', {}, "{file}:5: opensearch.url: expected a URL without ?query or #fragment, got 'http://host:9200/?a=1'"),
    ('url space', BASE + "opensearch:\n  url: 'http://ho st:9200'\n", {}, "{file}:5: opensearch.url: a URL has no spaces or control characters, got 'http://ho st:9200'"),
    ('url empty', BASE + "opensearch:\n  url: ''\n", {}, '{file}:5: opensearch.url: string should have at least 1 character'),
    ('endpoint_url bad', 'sagemaker:\n  region: us-west-2\n  endpoint_url: not-a-url\n', {}, "{file}:3: sagemaker.endpoint_url: expected an http:// or https:// URL, got 'not-a-url'"),
    ('local_endpoint_url bad', BASE + "  local_endpoint_url: 'http://x:port'\n", {}, "{file}:4: sagemaker.local_endpoint_url: the port of 'http://x:port' is not a number from 1 to 65535"),
    ('auth type bad', BASE + 'opensearch:\n  auth:\n    type: kerberos\n', {}, "{file}:5: opensearch.auth: type must be one of 'none', 'basic', 'aws_sigv4'"),
    ('auth no type', BASE + 'opensearch:\n  auth:\n    username: bob\n', {}, "{file}:5: opensearch.auth: needs a 'type' (none, basic or aws_sigv4)"),
    ('auth basic extra', BASE + 'opensearch:\n  auth:\n    type: basic\n    token: x\n', {}, '{file}:7: opensearch.auth.token: unknown field'),
    ('sigv4 region bad', BASE + 'opensearch:\n  auth:\n    type: aws_sigv4\n    region: nowhere\n', {}, "{file}:7: opensearch.auth.region: invalid value 'nowhere'"),
    ('sigv4 service bad', BASE + 'opensearch:\n  auth:\n    type: aws_sigv4\n    service: s3\n', {}, "{file}:7: opensearch.auth.service: must be one of 'es' or 'aoss'"),
    ('verify_certs not bool', BASE + 'opensearch:\n  verify_certs: maybe\n', {}, '{file}:5: opensearch.verify_certs: input should be a valid boolean, unable to interpret input'),
    ('timeout zero', BASE + 'opensearch:\n  timeout: 0\n', {}, '{file}:5: opensearch.timeout: input should be greater than 0'),
    ('timeout nan', BASE + 'opensearch:\n  timeout: .nan\n', {}, '{file}:5: opensearch.timeout: must be a finite number'),
    ('timeout inf', BASE + 'opensearch:\n  timeout: .inf\n', {}, '{file}:5: opensearch.timeout: must be a finite number'),
    ('timeout negative', BASE + 'opensearch:\n  timeout: -3\n', {}, '{file}:5: opensearch.timeout: input should be greater than 0'),
    ('password in file', BASE + 'opensearch:\n  auth:\n    type: basic\n    password: hunter2\n', {}, '{file}:7: opensearch.auth.password: secrets are never read from the config file; set OPENSEARCH_PASSWORD in the environment'),
    ('secret_key in file', BASE + 'connector:\n  secret_key: abc\n', {}, '{file}:5: connector.secret_key: secrets are never read from the config file; AWS credentials come from the boto3 chain (AWS_PROFILE, environment, instance role)'),
    ('session_token in file', BASE + 'aws:\n  session_token: abc\n', {}, '{file}:5: aws.session_token: secrets are never read from the config file; AWS credentials come from the boto3 chain (AWS_PROFILE, environment, instance role)'),
    ('read_timeout 0', BASE + 'connector:\n  client_config:\n    read_timeout: 0\n', {}, '{file}:6: connector.client_config.read_timeout: input should be greater than or equal to 1'),
    ('read_timeout float', BASE + 'connector:\n  client_config:\n    read_timeout: 1.5\n', {}, '{file}:6: connector.client_config.read_timeout: input should be a valid integer, got a number with a fractional part'),
    ('retry policy bad', BASE + 'connector:\n  client_config:\n    retry_backoff_policy: random\n', {}, "{file}:6: connector.client_config.retry_backoff_policy: must be one of 'constant', 'exponential_equal_jitter' or 'exponential_full_jitter'"),
    ('max_retry_times big', BASE + 'connector:\n  client_config:\n    max_retry_times: 1000\n', {}, '{file}:6: connector.client_config.max_retry_times: input should be less than or equal to 100'),
    ('role_arn bad', BASE + 'connector:\n  role_arn: arn:aws:iam::12:role/x\n', {}, "{file}:5: connector.role_arn: invalid value 'arn:aws:iam::12:role/x'"),
    ('connector name empty', BASE + "connector:\n  name: ''\n", {}, '{file}:5: connector.name: string should have at least 1 character'),
    ('model group empty', BASE + "model:\n  group: ''\n", {}, '{file}:5: model.group: string should have at least 1 character'),
    ('index name upper', BASE + 'index:\n  name: MyIndex\n', {}, "{file}:5: index.name: invalid value 'MyIndex'"),
    ('index name long', BASE + "index:\n  name: " + "a" * 300 + "\n", {}, '{file}:5: index.name: string should have at most 255 characters'),
    ('index fields empty', BASE + 'index:\n  fields: {}\n', {}, '{file}:5: index.fields: needs at least one field'),
    ('index field type bad', BASE + 'index:\n  fields:\n    passage_text: integer\n', {}, "{file}:6: index.fields.passage_text: must be one of 'text' or 'keyword'"),
    ('pipeline name bad', BASE + "pipeline:\n  name: 'a/b'\n", {}, "{file}:5: pipeline.name: invalid value 'a/b'"),
    ('document_fields empty', BASE + 'pipeline:\n  document_fields: []\n', {}, '{file}:5: pipeline.document_fields: list should have at least 1 item after validation, not 0'),
    ('document_fields not in index', BASE + 'pipeline:\n  document_fields: [title]\n', {}, '{file}:5: pipeline.document_fields: title not in index.fields (passage_text)'),
    ('ignore_failure string', BASE + 'pipeline:\n  ignore_failure: sometimes\n', {}, '{file}:5: pipeline.ignore_failure: input should be a valid boolean, unable to interpret input'),
    ('verify tolerance 0', BASE + 'verify:\n  tolerance: 0\n', {}, '{file}:5: verify.tolerance: input should be greater than 0'),
    ('verify tolerance 5', BASE + 'verify:\n  tolerance: 5\n', {}, '{file}:5: verify.tolerance: input should be less than or equal to 1'),
    ('verify query empty', BASE + "verify:\n  query: ''\n", {}, '{file}:5: verify.query: string should have at least 1 character'),
    ('deploy both preset and id', BASE + 'deploy:\n  preset: ms-marco-minilm-l6\n  hf_model_id: a/b\n', {}, '{file}:4: deploy: set exactly one of preset (ms-marco-minilm-l6, bge-reranker-base, bge-reranker-large, ko-reranker), hf_model_id or model_dir'),
    ('deploy neither', BASE + 'deploy:\n  instance_count: 1\n', {}, '{file}:4: deploy: set exactly one of preset (ms-marco-minilm-l6, bge-reranker-base, bge-reranker-large, ko-reranker), hf_model_id or model_dir'),
    ('deploy model_dir and stock', BASE + 'deploy:\n  model_dir: ./model\n  handler: stock\n', {}, '{file}:4: deploy: model_dir is packaged with os-rerank\'s handler; set handler: os-rerank (or auto)'),
    ('deploy handler bad', BASE + 'deploy:\n  preset: ms-marco-minilm-l6\n  handler: custom\n', {}, "{file}:6: deploy.handler: must be one of 'auto', 'stock' or 'os-rerank'"),
    ('deploy s3 bucket bad', BASE + 'deploy:\n  preset: ms-marco-minilm-l6\n  s3_bucket: My_Bucket\n', {}, "{file}:6: deploy.s3_bucket: invalid value 'My_Bucket'"),
    ('deploy s3 prefix slash', BASE + 'deploy:\n  preset: ms-marco-minilm-l6\n  s3_prefix: models/\n', {}, "{file}:4: deploy: s3_prefix: 'models/' must not start or end with / or hold //"),
    ('deploy preset bad', BASE + 'deploy:\n  preset: gpt\n', {}, "{file}:5: deploy.preset: must be one of 'ms-marco-minilm-l6', 'bge-reranker-base', 'bge-reranker-large' or 'ko-reranker'"),
    ('deploy instance type bad', BASE + 'deploy:\n  preset: ms-marco-minilm-l6\n  instance_type: big\n', {}, "{file}:6: deploy.instance_type: invalid value 'big'"),
    ('deploy role bad', BASE + 'deploy:\n  preset: ms-marco-minilm-l6\n  execution_role_arn: me\n', {}, "{file}:6: deploy.execution_role_arn: expected an IAM role ARN like arn:aws:iam::123456789012:role/NAME, got 'me'"),
    ('autoscaling min>max', BASE + 'deploy:\n  preset: ms-marco-minilm-l6\n  autoscaling:\n    min: 3\n    max: 2\n', {}, '{file}:6: deploy.autoscaling: min (3) is larger than max (2)'),
    ('yaml syntax', 'sagemaker: [\n', {}, "{file}:2: invalid YAML: expected the node content, but found '<stream end>'"),
    ('yaml tab', 'sagemaker:\n\tregion: us-west-2\n', {}, "{file}:2: invalid YAML: found character '\\t' that cannot start any token"),
    ('duplicate section', 'opensearch:\n  url: http://a:9200\nsagemaker:\n  region: us-west-2\n  endpoint_name: ep\nopensearch:\n  timeout: 5\n', {}, '{file}:6: opensearch: duplicate key (first at line 1); YAML would silently keep only the last one'),
    ('duplicate field', 'sagemaker:\n  region: us-west-2\n  region: eu-west-1\n  endpoint_name: ep\n', {}, '{file}:3: sagemaker.region: duplicate key (first at line 2); YAML would silently keep only the last one'),
    ('alias bomb', BOMB + BASE, {}, '{file}: expands to more than 100000 values once its aliases are followed (an alias bomb?); a config file needs a few dozen'),
    ('deep nesting', "a: " + "[" * 3000 + "]" * 3000 + "\n" + BASE, {}, '{file}: nested too deeply to be a config file'),
    ('nesting 40', "a:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(40)) + BASE, {}, '{file}:34: a.k0.k1.k2.k3.k4.k5.k6.k7.k8.k9.k10.k11.k12.k13.k14.k15.k16.k17.k18.k19.k20.k21.k22.k23.k24.k25.k26.k27.k28.k29.k30.k31: nested deeper than 32 levels'),
    ('env url bad', BASE, {'OPENSEARCH_URL': 'not-a-url'}, "OPENSEARCH_URL (environment): opensearch.url: expected an http:// or https:// URL, got 'not-a-url'"),
    ('env url junk', BASE, {'OPENSEARCH_URL': 'http://h:9x'}, "OPENSEARCH_URL (environment): opensearch.url: the port of 'http://h:9x' is not a number from 1 to 65535"),
    ('env region bad', BASE, {'AWS_REGION': 'moon-1'}, "AWS_REGION (environment): sagemaker.region: invalid value 'moon-1'"),
    ('documents missing', BASE + 'index:\n  documents: nope.jsonl\n', {}, 'nope.jsonl: documents file not found'),
    ('ca_certs dir', BASE + 'opensearch:\n  ca_certs: 5\n', {}, '{file}:5: opensearch.ca_certs: expected a file path, got int'),
]


@pytest.mark.parametrize(("text", "environ", "expected"), [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_config_mistakes_are_one_line_naming_where_and_exit_2(tmp_path: Path, text: str, environ: dict[str, str],
                                                              expected: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err = run(["validate", "--config", str(path)], environ)
    assert (code, out) == (2, "")
    assert err.splitlines()[0] == PREFIX + expected.format(file=path.name)


def test_special_config_files(tmp_path: Path) -> None:
    for argv, expected in ((["--config", "/dev/zero"], "/dev/zero: not a regular file"),
                           (["--config", str(tmp_path)], f"{tmp_path}: not a regular file"),
                           (["--config", str(tmp_path / "nope.yaml")], f"{tmp_path / 'nope.yaml'}: file not found")):
        code, _, err = run(["validate", *argv])
        assert (code, err.splitlines()[0]) == (2, PREFIX + expected)
    big = tmp_path / "big.yaml"
    big.write_text(BASE + "# " + "x" * (1 << 20) + "\n", encoding="utf-8")
    code, _, err = run(["validate", "--config", str(big)])
    assert (code, err.splitlines()[0]) == (2, PREFIX + f"{big}: larger than 1024 KiB; a config file is a few dozen lines")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(BASE.encode() + b"verify:\n  query: caf\xe9\n")
    code, _, err = run(["validate", "--config", str(bad)])
    assert (code, err.splitlines()[0]) == (2, PREFIX + "latin1.yaml:5: not UTF-8 (byte 0xe9)")


def test_a_password_in_the_url_is_never_printed(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(BASE, encoding="utf-8")
    code, out, err = run(["validate", "--config", str(path)], {"OPENSEARCH_URL": "http://user:s3cr3t-pw@host:9200"})
    assert code == 0 and "s3cr3t-pw" not in out + err
    assert "  opensearch  http://user:***@host:9200 (auth: none)" in out.splitlines()


# --- command-line arguments -----------------------------------------------------------------------------------------

CLI_CASES: list[tuple[list[str], str]] = [
    ([], "os-rerank: the following arguments are required: COMMAND"),
    (["setup", "--timeout", "nan"], "os-rerank setup: argument --timeout: expected a number of seconds, got 'nan'"),
    (["setup", "--timeout", "inf"], "os-rerank setup: argument --timeout: expected a number of seconds, got 'inf'"),
    (["setup", "--timeout", "-5"],
     "os-rerank setup: argument --timeout: expected a number of seconds from 0.1 to 86400, got '-5'"),
    (["endpoint", "deploy", "--timeout", "0"],
     "os-rerank endpoint deploy: argument --timeout: expected a number of seconds from 0.1 to 86400, got '0'"),
    (["local", "up", "--timeout", "nan"], "os-rerank local up: argument --timeout: expected a number of seconds, got 'nan'"),
    (["search", "q", "--size", "0"], "os-rerank search: argument --size/-n: expected a number of hits from 1 to 10000, got '0'"),
    (["search", "q", "--window", "-3"],
     "os-rerank search: argument --window/-k: expected a number of hits from 1 to 10000, got '-3'"),
    (["search", "q", "--min-score", "nan"], "os-rerank search: argument --min-score: expected a score, got 'nan'"),
    (["search", "q", "--min-score", "lots"], "os-rerank search: argument --min-score: expected a score, got 'lots'"),
    (["serve", "--port", "70000"], "os-rerank serve: argument --port: expected a port from 0 to 65535, got '70000'"),
    (["serve", "--port", "-1"], "os-rerank serve: argument --port: expected a port from 0 to 65535, got '-1'"),
    (["serve", "--max-body-bytes", "-5"],
     "os-rerank serve: argument --max-body-bytes: expected a size in bytes from 1 to 1073741824, got '-5'"),
    (["serve", "--batch-size", "0"], "os-rerank serve: argument --batch-size: expected a batch size from 1 to 4096, got '0'"),
    (["serve", "--threads", "0"], "os-rerank serve: argument --threads: expected a number of threads from 1 to 1024, got '0'"),
    (["serve", "--max-length", "2"],
     "os-rerank serve: argument --max-length: expected a number of tokens from 8 to 8192, got '2'"),
    (["serve", "--port", "0", "--access-key-id", "AKIDONLY"], "SigV4 needs both an access key id and its secret"),
    (["local", "up", "--port", "80"], "os-rerank local up: argument --port: expected a port from 1024 to 65535, got '80'"),
    (["local", "logs", "-n", "0"],
     "os-rerank local logs: argument -n/--lines: expected a whole number from 1 to 1000000, got '0'"),
    (["local", "up", "--name", "../x", "--dir", "{tmp}"], "--name: '../x' is not a node name"),
    (["local", "up", "--heap", "lots", "--dir", "{tmp}"], "--heap: expected a size like 1g or 512m, got 'lots'"),
    (["local", "up", "--version", "2.11.0", "--dir", "{tmp}"],
     "--version 2.11.0: os-rerank needs OpenSearch 2.12 or newer (remote text_similarity models and the rerank "
     "processor start there)"),
    (["render", "--config", "{config}", "--opensearch-version", "2.11"],
     "--opensearch-version 2.11: os-rerank needs OpenSearch 2.12.0 or newer (remote text_similarity models and the "
     "rerank processor start there)"),
    (["render", "--config", "{config}", "--opensearch-version", "two"], "--opensearch-version: not a version: 'two'"),
    (["eval", "--config", "{config}", "--queries", "q", "--qrels", "r", "--depths", "a"],
     "--depths must be comma-separated integers like 10,20,50, not 'a'"),
    (["eval", "--config", "{config}", "--queries", "{tmp}/nope.jsonl", "--qrels", "r"],
     "{tmp}/nope.jsonl: queries file not found"),
    (["eval", "--config", "{config}", "--qrels", "r"], "os-rerank eval: the following arguments are required: --queries"),
    (["endpoint"], "os-rerank endpoint: the following arguments are required: ACTION"),
    (["serve", "--host", "192.0.2.1", "--port", "0"],  # TEST-NET-1: never an address of this machine
     "cannot listen on 192.0.2.1:0: Cannot assign requested address"),
]


@pytest.mark.parametrize(("argv", "expected"), CLI_CASES, ids=[" ".join(c[0]) or "(nothing)" for c in CLI_CASES])
def test_bad_arguments_are_one_line_and_exit_2_before_anything_runs(tmp_path: Path, argv: list[str],
                                                                   expected: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(BASE, encoding="utf-8")
    filled = [a.format(tmp=tmp_path, config=config) for a in argv]
    code, out, err = run(filled)
    assert (code, out) == (2, "")
    assert err.splitlines()[0] == PREFIX + expected.format(tmp=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]  # nothing was made


# --- documents files ------------------------------------------------------------------------------------------------

DOCUMENT_CASES: list[tuple[str, str | bytes, str]] = [
    ("not JSON", '{"passage_text": "a"}\n{nope}\n',
     "docs.jsonl:2: invalid JSON: Expecting property name enclosed in double quotes (column 2)"),
    ("not an object", '["a"]\n', "docs.jsonl:1: expected a JSON object"),
    ("lone surrogate", '{"passage_text": "x \\ud800 y"}\n',
     "docs.jsonl:1: holds a lone surrogate (\\ud800), which UTF-8 cannot carry"),
    ("NaN", '{"passage_text": "a", "score": NaN}\n', "docs.jsonl:1: NaN is not JSON (OpenSearch refuses it)"),
    ("Infinity", '{"passage_text": "a", "score": -Infinity}\n',
     "docs.jsonl:1: -Infinity is not JSON (OpenSearch refuses it)"),
    ("duplicate key", '{"passage_text": "a", "passage_text": "b"}\n', "docs.jsonl:1: duplicate key 'passage_text'"),
    ("duplicate id", '{"id": 1, "passage_text": "a"}\n{"id": "1", "passage_text": "b"}\n',
     "docs.jsonl:2: duplicate id '1'"),
    ("reserved field", '{"passage_text": "a", "_source": "x"}\n',
     "docs.jsonl:1: field name '_source' is reserved by OpenSearch (or empty)"),
    ("number in a text field", '{"passage_text": 42}\n',
     "docs.jsonl:1: document '1': passage_text must be a string (index.fields maps it as text), got a number"),
    ("list in a text field", '{"passage_text": ["a", "b"]}\n',
     "docs.jsonl:1: document '1': passage_text must be a string (index.fields maps it as text), got a list"),
    ("boolean id", '{"id": true, "passage_text": "a"}\n',
     "docs.jsonl:1: the id must be a string or an integer, got a boolean"),
    ("id too long", json.dumps({"id": "x" * 600, "passage_text": "a"}) + "\n",
     "docs.jsonl:1: the id must be 1 to 512 bytes long"),
    ("missing document field", '{"title": "a"}\n', "docs.jsonl:1: document '1' lacks passage_text"),
    ("no documents", "\n\n", "docs.jsonl: no documents"),
    ("not UTF-8", b'{"passage_text": "\xff"}\n', "docs.jsonl:1: not UTF-8 (byte 0xff)"),
    ("keyword too long", json.dumps({"passage_text": "a", "tag": "k" * 40000}) + "\n",
     "docs.jsonl:1: document '1': tag is a keyword of more than 32766 bytes, which Lucene refuses"),
]

DOCS_CONFIG = BASE + "index:\n  documents: docs.jsonl\n  fields:\n    passage_text: text\n    tag: keyword\n"


@pytest.mark.parametrize(("content", "expected"), [c[1:] for c in DOCUMENT_CASES], ids=[c[0] for c in DOCUMENT_CASES])
def test_documents_that_opensearch_could_not_take_are_refused_with_file_and_line(tmp_path: Path, content: str | bytes,
                                                                                expected: str) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    config = tmp_path / "config.yaml"
    config.write_text(DOCS_CONFIG, encoding="utf-8")
    code, out, err = run(["validate", "--config", str(config)])
    assert (code, out) == (2, "")
    assert err.splitlines()[0] == PREFIX + expected


@pytest.mark.parametrize(("content", "count"), [
    ('{"passage_text": "line\u2028separator\u2029paragraph\u0085next"}\n', 1),  # raw, inside a JSON string
    ('\ufeff{"passage_text": "a"}\r\n{"passage_text": "b"}\r\n', 2),  # a BOM and CRLF
    ('{"id": "🙂", "passage_text": "한국어 हिन्दी \\ud83d\\ude42 ${parameters.body}"}\n', 1),  # a surrogate pair is fine
], ids=["unicode line breaks", "bom and crlf", "pairs and placeholders"])
def test_valid_json_lines_are_accepted(tmp_path: Path, content: str, count: int) -> None:
    (tmp_path / "docs.jsonl").write_text(content, encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(DOCS_CONFIG, encoding="utf-8")
    code, out, err = run(["validate", "--config", str(config)])
    assert (code, err) == (0, "")
    assert f"  index       my-test-data ({count} sample documents)" in out.splitlines()


# --- whatever YAML ----------------------------------------------------------------------------------------------------

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                       max_leaves=30)
_SECTIONS = st.dictionaries(st.sampled_from(["opensearch", "sagemaker", "connector", "model", "index", "pipeline",
                                             "verify", "aws", "deploy", "other"]), _VALUES, max_size=6)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(_SECTIONS.map(lambda d: yaml.safe_dump(d, allow_unicode=True)), st.text(max_size=300)))
def test_validate_never_raises_and_always_ends(tmp_path: Path, text: Any) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    code, out, err = run(["validate", "--config", str(path)])
    assert code in (0, 2), err
    assert "this is a bug" not in err
