"""Every real capability file gets a verdict, and `--strict` agrees with the official schema.

The oracle is the reference Python implementation of JSON Schema (`jsonschema`), independent
of the jsonschema-rs validator the runtime uses.
"""

from __future__ import annotations

import json

import jsonschema
import yaml

from naftiko.validation import check_files, discover
from support import shared_path


def official_verdict(validator: jsonschema.Draft202012Validator, path) -> bool:
    try:
        data = yaml.load(path.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return False
    return validator.is_valid(data)


def test_corpus_verdicts_and_strict_agreement() -> None:
    corpus = shared_path("corpus", "alpha2")
    schema = json.loads(shared_path("reference", "naftiko-schema-1.0.0-alpha2.json").read_text())
    oracle = jsonschema.Draft202012Validator(schema)
    files = discover([str(corpus)])
    assert len(files) > 4000
    # Each file on its own: the corpus is not one deployment (validated together, files of one
    # repository collide on ports and routes as `naftiko run` would find them).
    default = check_files(files, together=False)
    strict = check_files(files, strict=True, together=False)
    assert len(default) == len(strict) == len(files)

    # The strict verdict of the schema level equals the official schema's on every file. Checks
    # beyond the schema (unresolvable imports: the corpus flattens folders) may fail a file more.
    def schema_valid(report) -> bool:
        return not any(e.origin in ("yaml", "schema", "official") for e in report.errors)

    disagreements = [str(p) for p, report in zip(files, strict) if schema_valid(report) != official_verdict(oracle, p)]
    assert disagreements == []
    beyond_schema = [r for r in strict if schema_valid(r) and not r.valid]
    assert all(e.origin == "semantic" for r in beyond_schema for e in r.errors)
    # Strict can only be harder than the default level.
    assert all(d.valid or not s.valid for d, s in zip(default, strict))
    valid_default = sum(r.valid for r in default)
    assert valid_default > sum(r.valid for r in strict)
    print(
        f"\ncorpus: {len(files)} files, {valid_default} valid by default, {sum(r.valid for r in strict)} valid with --strict,"
        f" {len(beyond_schema)} schema-valid but failing checks beyond the schema"
    )
