"""nn.jsonfile.parse_json: JSON values come back as json.loads gives them; everything else is the named error."""

import json

import pytest

from nn.jsonfile import parse_json


class NamedError(ValueError):
    pass


@pytest.mark.parametrize("value", [{"a": [1, 2.5, None, True, "é"]}, -12, 0.1, [], "text", 10**99])
def test_valid_json_reads_as_json_loads_reads_it(value):
    text = json.dumps(value)
    assert parse_json(text, "f", NamedError) == json.loads(text)
    assert parse_json(text.encode(), "f", NamedError) == json.loads(text)


@pytest.mark.parametrize("data, reason", [
    (b"\xff{}", "not UTF-8"),
    ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
    ("1" * 5000, "5000 digits"),
    ("1" + "0" * 100, "101 digits"),
    ("NaN", "NaN"),
    ("[-Infinity]", "Infinity"),
    ('{"x": 1e400}', "1e400"),
    ("{", "not valid JSON"),
    ('{"kind": "model", "kind": "ciphertexts"}', "'kind' appears twice"),
    ("", "not valid JSON"),
])
def test_hostile_or_non_json_input_is_the_named_error(data, reason):
    with pytest.raises(NamedError, match="model.json") as caught:
        parse_json(data, "model.json", NamedError)
    assert reason in str(caught.value)
