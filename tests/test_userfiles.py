"""The one loader for user files: size, nesting and alias limits, one-line errors naming the file."""

from __future__ import annotations

import argparse
import json
import time

import pytest
import yaml

from synthgap.envs.userfiles import (
    MAX_BYTES,
    MAX_DEPTH,
    UserFileError,
    UserFileNotFound,
    float_arg,
    int_arg,
    load_user_file,
    one_line,
    parse_json,
    parse_yaml,
    short,
)


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A YAML list whose expansion has width**levels strings: 9 levels of 9 give 387 million."""
    rows = [f"&a{i} [" + ",".join(["lol"] * width if i == 0 else [f"*a{i - 1}"] * width) + "]"
            for i in range(levels)]
    return "[" + ", ".join(rows) + "]"


def refusal(tmp_path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(UserFileError) as info:
        load_user_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


def test_alias_bomb_is_refused_in_milliseconds_before_anything_is_built(tmp_path):
    t0 = time.perf_counter()
    message = refusal(tmp_path, "bomb.yaml", f"limits: {alias_bomb()}\n")
    assert time.perf_counter() - t0 < 0.5  # plain yaml.safe_load then repr() of the value: MemoryError
    assert "100,000 values once its aliases" in message and "line 1, column" in message
    assert len(message) < 200


def test_merge_key_bomb_and_recursive_alias_are_refused(tmp_path):
    merges = "a0: &a0 {x: 1, y: 2}\n" + "".join(f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}]}}\n" for i in range(1, 40))
    assert "aliases" in refusal(tmp_path, "merge.yaml", merges)
    assert "refers to its own anchor" in refusal(tmp_path, "loop.yaml", "a: &x [1, *x]\n")


def test_small_aliases_and_merges_still_work():
    assert parse_yaml("base: &b {x: 1, y: 2}\nc: {<<: *b, y: 3}\nd: [*b, *b]\n") == {
        "base": {"x": 1, "y": 2}, "c": {"x": 1, "y": 3}, "d": [{"x": 1, "y": 2}] * 2}


@pytest.mark.parametrize("text", ["[" * 100_000, "".join(" " * i + "a:\n" for i in range(100))], ids=["flow", "block"])
def test_deep_yaml_is_refused_not_a_recursion_error(tmp_path, text):
    assert f"nested deeper than {MAX_DEPTH} levels" in refusal(tmp_path, "deep.yaml", text)


def test_depth_counts_alias_expansion():
    chain = "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 70))
    with pytest.raises(UserFileError, match="nested deeper than 64 levels once its aliases"):
        parse_yaml(chain, "chain.yaml")
    assert parse_yaml(chain.split("a60:")[0], "chain.yaml")["a59"] is not None


def test_json_by_suffix_with_the_same_limits(tmp_path):
    assert "nested deeper" in refusal(tmp_path, "deep.json", "[" * 100_000)  # json.loads: RecursionError
    assert "nested deeper" in refusal(tmp_path, "deep70.json", "[" * 70 + "]" * 70)
    assert "line 1, column 6: not valid JSON" in refusal(tmp_path, "bad.json", '{"a" 1}')
    assert "NaN is not JSON" in refusal(tmp_path, "nan.json", '{"a": NaN}')
    path = tmp_path / "ok.json"
    path.write_text('{"a": [1, 2.5, null]}')
    assert load_user_file(path) == {"a": [1, 2.5, None]}
    assert parse_json('{"yes": true}', "x.json") == {"yes": True}


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("bin.yaml", b"\x89PNG\r\n\x1a\n\x00\x00", "binary file (NUL byte at offset 8)"),
    ("latin1.yaml", "a: caf\xe9".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 6)"),
    ("ctrl.yaml", b"a: \x01", "unacceptable character #x0001"),
    ("bad.yaml", b"limits: {a: [\n", "line 2, column 1: not valid YAML"),
    ("dup.yaml", b"max_temperature_K: 1000\nmax_temperature_K: 2000\n", "line 2, column 1: duplicate key"),
    ("bigint.yaml", b"a: " + b"9" * 5000, "not valid YAML"),
])
def test_bad_content_gives_one_line_naming_the_file(tmp_path, name, content, problem):
    assert problem in refusal(tmp_path, name, content)


def test_malformed_yaml_message_is_one_short_line(tmp_path):
    message = refusal(tmp_path, "bad.yaml", "gamma: [1\nalgo: ppo\n")
    assert len(message) < 160
    with pytest.raises(yaml.YAMLError) as info:  # what the project printed before: several lines
        yaml.safe_load("gamma: [1\nalgo: ppo\n")
    assert str(info.value).count("\n") >= 3


def test_paths_that_are_not_readable_files(tmp_path):
    with pytest.raises(UserFileError, match="is a directory, expected a file"):
        load_user_file(tmp_path)
    with pytest.raises(UserFileNotFound, match="no such file") as info:
        load_user_file(tmp_path / "absent.yaml")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)
    with pytest.raises(UserFileError, match="larger than the 1,048,576-byte limit"):
        load_user_file("/dev/zero")
    big = tmp_path / "big.yaml"
    big.write_text("a" * (MAX_BYTES + 1))
    with pytest.raises(UserFileError, match="byte limit"):
        load_user_file(big)
    with pytest.raises(UserFileError) as info:
        load_user_file("x" * 100_000 + ".yaml")
    assert len(str(info.value)) < 300
    with pytest.raises(UserFileError, match=r"a\\x00b: cannot read"):
        load_user_file("a\x00b")


def test_bom_and_empty_files(tmp_path):
    (tmp_path / "bom.json").write_bytes(b'\xef\xbb\xbf{"a": 1}')
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    assert load_user_file(tmp_path / "bom.json") == {"a": 1}
    assert load_user_file(tmp_path / "empty.yaml") is None


def test_short_quotes_a_bounded_prefix_in_bounded_time():
    expanded = yaml.safe_load(alias_bomb(levels=8))  # about 48 million references, built lazily by PyYAML
    t0 = time.perf_counter()
    text = short(expanded)
    assert time.perf_counter() - t0 < 0.1 and len(text) <= 60
    long = short("x" * 10_000)
    assert len(long) <= 60 and long.startswith("'xxx") and "..." in long
    assert short(10**5000) == "<integer of about 5001 digits>"
    assert short(1.5) == "1.5" and short("BaTiO3") == "'BaTiO3'"
    assert one_line("a\n\n  b\n", 400) == "a; b" and len(one_line("z" * 10_000)) == 400


def test_argparse_number_types_refuse_nan_inf_and_out_of_range():
    slave = int_arg(1, 247)
    assert slave("17") == 17
    for bad in ("0", "300", "1.5", "nan", "9" * 100, ""):
        with pytest.raises(argparse.ArgumentTypeError):
            slave(bad)
    seconds = float_arg(0.0, 600.0, "s", lo_open=True)
    assert seconds("2.5") == 2.5
    for bad in ("nan", "inf", "-inf", "0", "-1", "601", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="finite number in \\(0, 600\\] s"):
            seconds(bad)


def test_every_bundled_data_file_loads_as_before():
    from importlib import resources

    root = resources.files("synthgap.envs.chemistry").joinpath("data")
    files = [p for p in root.iterdir() if p.name.endswith(".yaml")]
    files += [p for p in root.joinpath("systems").iterdir() if p.name.endswith(".yaml")]
    assert len(files) >= 5
    for p in files:
        assert load_user_file(str(p)) == yaml.safe_load(p.read_text()), p.name
    lab = resources.files("synthgap.hardware").joinpath("examples/lab.yaml")
    assert load_user_file(str(lab)) == yaml.safe_load(lab.read_text())
    assert json.loads(json.dumps(load_user_file(str(lab)))) is not None
